import fs from 'node:fs'
import path from 'node:path'
import {ROOT, runCli, tmpDir} from '../support/harness'

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

async function loadedBy(args: string[]): Promise<{stdout: string; modules: string[]}> {
  const file = path.join(tmpDir(), 'modules.txt')
  const r = await runCli(args, {env: {NODE_OPTIONS: `--require ${TRACE}`, WARDROBE_TEST_MODULE_TRACE: file}})
  expect(r.code).toBe(0)
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
