import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {resolveSettings} from '../src/lib/config'
import {generateItems, writeItems} from '../src/lib/seed-data'
import {countDocs, emulatorHost, ledgerRuns, runCli, testDb, tmpDir, uniqueProject} from './support/harness'

/**
 * The child gets no FIRESTORE_EMULATOR_HOST: only the config file (or flags) can point it at the
 * emulator. NODE_ENV is dropped: jest's NODE_ENV=test makes oclif print a ts-source warning.
 */
const NO_EMULATOR_ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined, NODE_ENV: undefined}

function writeConfig(dir: string, content: unknown, name = 'wardrobe.config.json'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return file
}

/** stderr without blank lines; oclif prefixes error lines with " ›   ". */
const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')
const flat = (text: string) => text.replace(/\s*\n\s*(›\s*)?/g, ' ')

describe('config file (wardrobe.config.json)', () => {
  let project: string
  let db: Firestore
  let cwd: string

  beforeEach(async () => {
    project = uniqueProject('config')
    db = testDb(project)
    cwd = tmpDir()
    await writeItems(db, 'wardrobe_items', generateItems(5, {seed: 3, malformedRate: 0}))
  })
  afterEach(async () => {
    await db.terminate()
  })

  const run = (args: string[], env: NodeJS.ProcessEnv = NO_EMULATOR_ENV) =>
    runCli(['backfill', '--project', project, '--emulator-host', emulatorHost(), '--output-dir', cwd, ...args], {cwd, env})

  const bad: [string, unknown, string][] = [
    ['an unknown key', {collection: 'wardrobe_items', batchsize: 5}, 'batchsize'],
    ['a wrong type', {batchSize: '500'}, 'batchSize'],
    ['a wrong nested type', {environments: {development: {emulatorHost: 8080}}}, 'environments.development.emulatorHost'],
    ['an unknown environment', {environments: {prod: {projectId: 'x'}}}, 'prod'],
  ]

  it.each(bad)('%s: exit 2, the message names the key and the fix, nothing written', async (_what, content, key) => {
    writeConfig(cwd, content)
    const res = await run([])
    expect(res.code).toBe(2)
    const text = flat(res.stderr)
    expect(text).toContain(key)
    expect(text).toMatch(/fix|remove|rename/i)
    expect(res.stdout).toBe('')
    expect(await ledgerRuns(db)).toEqual([])
  })

  it.each(bad)('%s: the error is ONE line naming the key and the fix', async (_what, content, key) => {
    writeConfig(cwd, content)
    const res = await run([])
    expect(res.code).toBe(2)
    const errorLines = lines(res.stderr)
    expect(errorLines).toHaveLength(1)
    expect(errorLines[0]).toContain(key)
    expect(errorLines[0]).toMatch(/fix|remove|rename/i)
  })

  it('an unknown key: the suggested fix names that key, not "(top level)"', async () => {
    writeConfig(cwd, {collection: 'wardrobe_items', batchsize: 5})
    const res = await run([])
    expect(res.code).toBe(2)
    const suggestion = flat(res.stderr).split(/Try this:/i)[1] ?? flat(res.stderr)
    expect(suggestion).toContain('batchsize')
    expect(flat(res.stderr)).not.toContain('(top level)')
  })

  it('invalid JSON: exit 2 naming the file and the fix', async () => {
    const file = writeConfig(cwd, '{"batchSize": 5,')
    const res = await run([])
    expect(res.code).toBe(2)
    const text = flat(res.stderr)
    expect(text).toContain(file)
    expect(text).toMatch(/JSON/)
    expect(text).toMatch(/fix/i)
    expect(await ledgerRuns(db)).toEqual([])
  })

  it('--config pointing at a missing file: exit 2', async () => {
    const res = await run(['--config', 'missing.json'])
    expect(res.code).toBe(2)
    expect(flat(res.stderr)).toContain('missing.json')
    expect(await ledgerRuns(db)).toEqual([])
  })

  it('WARDROBE_CONFIG pointing at a missing file: exit 2', async () => {
    const res = await run([], {...NO_EMULATOR_ENV, WARDROBE_CONFIG: path.join(cwd, 'nope.json')})
    expect(res.code).toBe(2)
    expect(flat(res.stderr)).toContain('nope.json')
  })

  it('a valid config supplying projectId, emulatorHost and collection is honoured', async () => {
    const other = uniqueProject('config-target')
    const target = testDb(other)
    try {
      await writeItems(target, 'my_items', generateItems(12, {seed: 5, malformedRate: 0}))
      writeConfig(cwd, {collection: 'my_items', environments: {development: {projectId: other, emulatorHost: emulatorHost()}}})
      // No --project, no --emulator-host, no FIRESTORE_EMULATOR_HOST: all from the file.
      const res = await runCli(['backfill', '--json', '--output-dir', cwd], {cwd, env: NO_EMULATOR_ENV})
      expect(res.code).toBe(0)
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({projectId: other, collection: 'my_items', scanned: 12, updated: 12})
      const docs = await target.collection('my_items').get()
      expect(docs.docs.every((d) => d.get('normalized') !== undefined)).toBe(true)
      // The flag's project and the default collection were left alone.
      expect(await ledgerRuns(db)).toEqual([])
      expect((await db.collection('wardrobe_items').get()).docs.some((d) => d.get('normalized') !== undefined)).toBe(false)
    } finally {
      await target.terminate()
    }
  })

  it('--config and WARDROBE_CONFIG name a config file outside the cwd; flags override it', async () => {
    const elsewhere = tmpDir()
    const file = writeConfig(elsewhere, {collection: 'nowhere', environments: {development: {projectId: project, emulatorHost: emulatorHost()}}}, 'custom.json')
    await writeItems(db, 'nowhere', generateItems(3, {seed: 8, malformedRate: 0}))

    const viaFlag = await runCli(['backfill', '--json', '--config', file, '--output-dir', cwd], {cwd, env: NO_EMULATOR_ENV})
    expect(viaFlag.code).toBe(0)
    expect(JSON.parse(viaFlag.stdout)).toMatchObject({projectId: project, collection: 'nowhere', updated: 3})

    const viaEnv = await runCli(['backfill', '--json', '--collection', 'wardrobe_items', '--output-dir', cwd], {cwd, env: {...NO_EMULATOR_ENV, WARDROBE_CONFIG: file}})
    expect(viaEnv.code).toBe(0)
    expect(JSON.parse(viaEnv.stdout)).toMatchObject({projectId: project, collection: 'wardrobe_items', updated: 5})
    expect(await countDocs(db, 'wardrobe_items')).toBe(5)
  })
})

describe('the outage budget (outageAfterSeconds, --outage-after)', () => {
  const env = {FIRESTORE_EMULATOR_HOST: '127.0.0.1:1'}
  const settings = (config: unknown, flags: {'outage-after'?: number} = {}) =>
    resolveSettings({environment: 'development', config: writeConfig(tmpDir(), config), ...flags}, env)

  it('defaults to 90 s; the config file sets it; the flag wins', () => {
    expect(settings({}).outageAfterMs).toBe(90_000)
    expect(settings({outageAfterSeconds: 20}).outageAfterMs).toBe(20_000)
    expect(settings({outageAfterSeconds: 20}, {'outage-after': 7}).outageAfterMs).toBe(7000)
  })

  it('below 5 s is a config error naming the key', () => {
    expect(() => settings({outageAfterSeconds: 2})).toThrow(/outageAfterSeconds/)
  })
})
