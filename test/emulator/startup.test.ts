import fs from 'node:fs'
import path from 'node:path'
import {LOG_FILE} from '../../src/cli/logger'
import {COMMANDS} from '../../src/commands'
import {DEFAULT_TAXONOMY_FILE} from '../../src/domain/vocabulary'
import {devArgs, ROOT, runCli, tmpDir, uniqueProject} from '../support/harness'

/**
 * What start-up loads (its speed is in `npm run bench -- --only startup`, as ratios): help and the
 * version come from oclif.manifest.json without loading any command, so none of them pays for the
 * commands' bundle (firebase-admin and the gRPC stack inside), nor for the log file's library.
 */
// The commands' bundle runs through V8's code cache, not require(): its loader is what shows.
const BUNDLE = '/dist/cli/command-table.js'
const HEAVY = [
  BUNDLE,
  '/firebase-admin/',
  '/@google-cloud/',
  '/google-gax/',
  '/@grpc/',
  '/winston/',
  '/dist/engine/',
  '/dist/services/',
  '/dist/firestore/',
]
const TRACE = path.join(ROOT, 'test', 'support', 'module-trace.js')

async function loadedBy(args: string[], code = 0): Promise<{stdout: string; modules: string[]}> {
  const file = path.join(tmpDir(), 'modules.txt')
  const r = await runCli(args, {env: {NODE_OPTIONS: `--require ${TRACE}`, WARDROBE_TEST_MODULE_TRACE: file}})
  expect(r.code).toBe(code)
  return {stdout: r.stdout, modules: fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)}
}

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, unknown>
}

describe('start-up', () => {
  const cases: string[][] = [
    ['--help'],
    ['--version'],
    ['help', 'backfill'],
    ...Object.keys(manifest.commands).map((id) => [...id.split(':'), '--help']),
  ]
  test.each(cases.map((args) => [args.join(' '), args]))('wardrobe %s loads no heavy module', async (_name, args) => {
    const {stdout, modules} = await loadedBy(args)
    // The output proves the command was found and its help (or the version) printed.
    expect(stdout).toMatch(args[0] === '--version' ? /^wardrobe-backfill\/\d/ : /USAGE/)
    expect(modules.filter((m) => HEAVY.some((h) => m.includes(h)))).toEqual([])
  })

  test('the bundle and the manifest list every command file', () => {
    const ids = fs
      .readdirSync(path.join(ROOT, 'src', 'commands'), {recursive: true, encoding: 'utf8'})
      .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
      .map((f) => f.replace(/\.ts$/, '').split(path.sep).join(':'))
      .sort()
    expect(Object.keys(COMMANDS).sort()).toEqual(ids)
    expect(Object.keys(manifest.commands).sort()).toEqual(ids)
  })
})

describe('the log file opens at its first line', () => {
  const logLines = (dir: string) =>
    fs
      .readFileSync(path.join(dir, LOG_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)

  test('a one-shot monitor loads no winston and leaves no log file; at --log-level debug it logs its result', async () => {
    const project = uniqueProject('startup-log')
    const out = tmpDir()
    const plain = await loadedBy(['monitor', ...devArgs(project, out), '--json'])
    expect(JSON.parse(plain.stdout)).toMatchObject({kind: 'monitor', counts: {total: 0}})
    // It ran from the bundle and read Firestore (the count above), yet loaded not the log file's library.
    expect(plain.modules.filter((m) => m.includes(BUNDLE))).toHaveLength(1)
    expect(plain.modules.filter((m) => m.includes('/winston/'))).toEqual([])
    expect(fs.existsSync(path.join(out, LOG_FILE))).toBe(false)

    const debug = await runCli(['monitor', ...devArgs(project, out), '--log-level', 'debug'])
    expect(debug.code).toBe(0)
    expect(logLines(out)).toEqual([
      expect.objectContaining({level: 'debug', message: 'monitor', command: 'monitor', health: 'idle'}),
    ])
  })

  test('an error after the connection opened is logged (runs show of an unknown run, exit 2)', async () => {
    const out = tmpDir()
    const r = await loadedBy(['runs', 'show', 'no-such-run', ...devArgs(uniqueProject('startup-log'), out)], 2)
    expect(r.modules.some((m) => m.includes('/winston/'))).toBe(true)
    expect(logLines(out)).toEqual([
      expect.objectContaining({
        level: 'error',
        command: 'runs:show',
        exit: 2,
        message: expect.stringMatching(/no run no-such-run/),
      }),
    ])
  })
})

describe("the commands' code cache (NODE_COMPILE_CACHE, NODE_DISABLE_COMPILE_CACHE)", () => {
  // A command that loads the bundle and needs no emulator; its output shows the command ran.
  const check = (env: NodeJS.ProcessEnv) =>
    runCli(['vocabulary', 'check', DEFAULT_TAXONOMY_FILE, '--no-scan', '--json'], {env})
  const cacheFiles = (root: string) => {
    const dir = path.join(root, 'wardrobe-backfill')
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []
  }
  const ran = async (env: NodeJS.ProcessEnv) => {
    const r = await check(env)
    expect({code: r.code, stderr: r.stderr}).toEqual({code: 0, stderr: ''})
    expect(JSON.parse(r.stdout)).toMatchObject({impact: null})
  }

  test('written by the first run, kept by the next, written anew when damaged', async () => {
    const root = tmpDir()
    await ran({NODE_COMPILE_CACHE: root})
    const [file] = cacheFiles(root)
    expect(cacheFiles(root)).toEqual([expect.stringMatching(/commands-[0-9a-f]{16}\.v8$/)])
    const written = fs.readFileSync(file)
    expect(written.length).toBeGreaterThan(100_000)

    // V8 accepted it: nothing is written again.
    await ran({NODE_COMPILE_CACHE: root})
    expect(fs.readFileSync(file).equals(written)).toBe(true)

    // Damaged in the middle (V8 would run it: release builds skip its checksum): the digest refuses
    // it, the command runs from source and writes it anew.
    const damaged = Buffer.from(written)
    damaged.fill(7, damaged.length >> 1, (damaged.length >> 1) + 64)
    fs.writeFileSync(file, damaged)
    await ran({NODE_COMPILE_CACHE: root})
    expect(cacheFiles(root)).toEqual([file])
    const rewritten = fs.readFileSync(file)
    expect(rewritten.equals(damaged)).toBe(false)
    // ...and the next run accepts what was written.
    await ran({NODE_COMPILE_CACHE: root})
    expect(fs.readFileSync(file).equals(rewritten)).toBe(true)
  })

  test('none in a directory that cannot be made or that others may write to; none with NODE_DISABLE_COMPILE_CACHE=1', async () => {
    const blocked = path.join(tmpDir(), 'a-file')
    fs.writeFileSync(blocked, '')
    await ran({NODE_COMPILE_CACHE: blocked})
    expect(fs.readFileSync(blocked, 'utf8')).toBe('')

    // Whoever can write there could plant code that V8 would run.
    const shared = tmpDir()
    fs.mkdirSync(path.join(shared, 'wardrobe-backfill'), {mode: 0o777})
    fs.chmodSync(path.join(shared, 'wardrobe-backfill'), 0o777)
    await ran({NODE_COMPILE_CACHE: shared})
    expect(cacheFiles(shared)).toEqual([])

    const root = tmpDir()
    await ran({NODE_COMPILE_CACHE: root, NODE_DISABLE_COMPILE_CACHE: '1'})
    expect(cacheFiles(root)).toEqual([])
  })
})
