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
const DIGEST_BYTES = 32
/** Caches of other builds, Node versions or flags that nothing has written for this long go. */
const STALE_MS = 7 * 24 * 3600 * 1000

const sha256 = (...parts: (Buffer | string)[]): Buffer => {
  const hash = crypto.createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/**
 * Where the cache lives, or undefined for none: an absolute directory that only this user can
 * write to (V8 runs what it finds there as code), made if missing.
 */
function cacheDirectory(env: NodeJS.ProcessEnv): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE === '1') return undefined
  const root = env.NODE_COMPILE_CACHE || env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  const dir = path.join(root, 'wardrobe-backfill')
  if (!path.isAbsolute(dir)) return undefined
  try {
    fs.mkdirSync(dir, {recursive: true, mode: 0o700})
    const stat = fs.statSync(dir)
    if (process.getuid && (stat.uid !== process.getuid() || (stat.mode & 0o022) !== 0)) return undefined
    fs.accessSync(dir, fs.constants.W_OK)
    return dir
  } catch {
    return undefined
  }
}

/** The cache's content after its digest, when the digest matches (V8 does not check its checksum). */
function readCache(file: string): Buffer | undefined {
  try {
    const stored = fs.readFileSync(file)
    const data = stored.subarray(DIGEST_BYTES)
    return sha256(data).equals(stored.subarray(0, DIGEST_BYTES)) ? data : undefined
  } catch {
    return undefined
  }
}

/**
 * Written beside, then renamed: concurrent processes (a sharded run's workers) never read half a
 * file. A read-only or full disk leaves the next run compiling from source again.
 */
function writeCache(file: string, compiled: () => Buffer): void {
  const dir = path.dirname(file)
  const partial = `${file}.${process.pid}.tmp`
  try {
    const data = compiled()
    fs.writeFileSync(partial, Buffer.concat([sha256(data), data]), {mode: 0o600})
    fs.renameSync(partial, file)
    for (const name of fs.readdirSync(dir)) {
      const other = path.join(dir, name)
      if (other !== file && Date.now() - fs.statSync(other).mtimeMs > STALE_MS) fs.rmSync(other, {force: true})
    }
  } catch {
    try {
      fs.rmSync(partial, {force: true})
    } catch {
      // Nothing may throw from an exit handler: the command's own exit code stands.
    }
  }
}

/**
 * Runs the bundle as CommonJS, as require() would, with V8's code from an earlier run when there
 * is some for exactly these bytes, this Node and these flags (V8 itself checks only the source's
 * length, its own version and some flags). A missing, damaged or refused cache is written anew as
 * the process exits, with the functions this run compiled.
 */
function loadBundle(): {COMMANDS: Record<string, Command.Class>} {
  const bytes = fs.readFileSync(BUNDLE)
  const dir = cacheDirectory(process.env)
  const key = sha256(bytes, process.version, process.arch, process.execArgv.join(' '), process.env.NODE_OPTIONS ?? '')
  const cacheFile = dir && path.join(dir, `commands-${key.toString('hex').slice(0, 16)}.v8`)
  const cachedData = cacheFile ? readCache(cacheFile) : undefined
  const script = new vm.Script(Module.wrap(bytes.toString('utf8')), {
    filename: BUNDLE,
    cachedData,
    // Node 20.12 and later: an import() in the bundle loads as it would in a module.
    importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
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

export const {COMMANDS} = loadBundle()
