import fs from 'node:fs'
import path from 'node:path'
import {LOG_FILE} from '../../src/cli/logger'
import {devArgs, ROOT, runCli, tmpDir, uniqueProject} from '../support/harness'

/**
 * What start-up loads (its speed is in `npm run bench -- --only startup`, as ratios): help and the
 * version come from oclif.manifest.json without loading any command, so none of them pays for
 * firebase-admin, the gRPC stack or the log file's library.
 */
const HEAVY = [
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

  test('the manifest lists every command file', () => {
    const files = fs
      .readdirSync(path.join(ROOT, 'src', 'commands'), {recursive: true, encoding: 'utf8'})
      .filter((f) => f.endsWith('.ts'))
    const ids = files.map((f) =>
      f
        .replace(/\.ts$/, '')
        .split(path.sep)
        .join(':')
        .replace(/:index$/, ''),
    )
    expect(Object.keys(manifest.commands)).toEqual(expect.arrayContaining(ids))
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
    // It did reach Firestore (the gRPC stack is loaded), yet not the log file's library.
    expect(plain.modules.some((m) => m.includes('/@grpc/grpc-js/'))).toBe(true)
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
