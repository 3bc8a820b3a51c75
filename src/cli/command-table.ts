import crypto from 'node:crypto'
import fs from 'node:fs'
import Module from 'node:module'
import os from 'node:os'
import path from 'node:path'
import vm from 'node:vm'
import type {Command} from '@oclif/core'

/**
 * oclif's command table (package.json oclif.commands, explicit discovery): the commands' bundle
 * (scripts/bundle.js), compiled through a V8 code cache. Compiling the 6 MB bundle was most of
 * what a command paid before it ran; with the code V8 compiled in an earlier run, monitor starts
 * about as fast as a bare firebase-admin script (`npm run bench -- --only startup`). Node 22's
 * module.enableCompileCache() does the same for every module; Node 20 has no such switch, so this
 * honours its variables: NODE_COMPILE_CACHE names the directory, NODE_DISABLE_COMPILE_CACHE=1
 * turns the cache off.
 */
const BUNDLE = path.join(__dirname, '..', 'commands.bundle.js')

function cacheDirectory(env: NodeJS.ProcessEnv): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE === '1') return undefined
  if (env.NODE_COMPILE_CACHE) return path.join(env.NODE_COMPILE_CACHE, 'wardrobe-backfill')
  const home = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(home, 'wardrobe-backfill')
}

/**
 * Runs the bundle as CommonJS, as require() would, with V8's code from an earlier run when it has
 * some for exactly these bytes. The file is named by the bundle's hash (V8 itself checks only the
 * source's length) and by Node's version and architecture; V8 refuses code from another V8 or
 * other flags, and a refused, missing or damaged cache is written anew when the process exits,
 * with the functions this run compiled. A cache that cannot be read or written is skipped.
 */
function loadBundle(): {COMMANDS: Record<string, Command.Class>} {
  const bytes = fs.readFileSync(BUNDLE)
  const dir = cacheDirectory(process.env)
  const hash = crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const cacheFile = dir && path.join(dir, `commands-${hash}-${process.version}-${process.arch}.v8`)
  let cachedData: Buffer | undefined
  try {
    if (cacheFile) cachedData = fs.readFileSync(cacheFile)
  } catch {
    // none yet, or unreadable: compile from source
  }
  const script = new vm.Script(Module.wrap(bytes.toString('utf8')), {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  const module = {exports: {}}
  ;(script.runInThisContext() as (...args: unknown[]) => void).call(
    module.exports,
    module.exports,
    Module.createRequire(BUNDLE),
    module,
    BUNDLE,
    path.dirname(BUNDLE),
  )
  if (cacheFile && (!cachedData || script.cachedDataRejected))
    process.once('exit', () => writeCache(cacheFile, () => script.createCachedData()))
  return module.exports as {COMMANDS: Record<string, Command.Class>}
}

/** Written beside, then renamed: concurrent processes (a sharded run's workers) never read half a file. */
function writeCache(file: string, data: () => Buffer): void {
  const partial = `${file}.${process.pid}.tmp`
  try {
    fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})
    fs.writeFileSync(partial, data(), {mode: 0o600})
    fs.renameSync(partial, file)
    // One bundle per directory: caches of earlier builds or other Node versions go.
    for (const name of fs.readdirSync(path.dirname(file)))
      if (name.startsWith('commands-') && name !== path.basename(file) && !name.endsWith('.tmp'))
        fs.rmSync(path.join(path.dirname(file), name), {force: true})
  } catch {
    // A read-only or full disk: the next run compiles from source again.
    fs.rm(partial, {force: true}, () => {})
  }
}

export const {COMMANDS} = loadBundle()
