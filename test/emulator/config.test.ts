import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {resolveSettings, Settings, SettingsFlags} from '../../src/config'
import {UsageError} from '../../src/errors'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {countDocs, emulatorHost, ledgerRuns, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

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
    runCli(['backfill', '--project', project, '--emulator-host', emulatorHost(), '--output-dir', cwd, ...args], {
      cwd,
      env,
    })

  /** [what, file content, the key the error names, the fix it gives] */
  const bad: [string, unknown, string, string][] = [
    ['an unknown key', {collection: 'wardrobe_items', batchsize: 5}, 'batchsize', 'rename "batchsize" to "batchSize"'],
    ['a wrong type', {batchSize: '500'}, 'batchSize', 'set "batchSize" to an integer from 1 to 10000'],
    [
      'a wrong nested type',
      {environments: {development: {emulatorHost: 8080}}},
      'environments.development.emulatorHost',
      'set "environments.development.emulatorHost" to host:port',
    ],
    [
      'an unknown environment',
      {environments: {prod: {projectId: 'x'}}},
      'prod',
      'remove "environments.prod" (known here: development, staging, production)',
    ],
    [
      'a per-environment key at the top level',
      {projectId: 'my-app'},
      'projectId',
      'move "projectId" under "environments.<development|staging|production>"',
    ],
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

  it.each(bad)('%s: the error is ONE line naming the file, the key and the fix', async (_what, content, key, fix) => {
    const file = writeConfig(cwd, content)
    const res = await run([])
    expect(res.code).toBe(2)
    const errorLines = lines(res.stderr)
    expect(errorLines).toHaveLength(1)
    expect(errorLines[0]).toContain(file)
    expect(errorLines[0]).toContain(key)
    expect(errorLines[0]).toContain(`(fix: ${fix}`)
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
      writeConfig(cwd, {
        collection: 'my_items',
        environments: {development: {projectId: other, emulatorHost: emulatorHost()}},
      })
      // No --project, no --emulator-host, no FIRESTORE_EMULATOR_HOST: all from the file.
      const res = await runCli(['backfill', '--json', '--output-dir', cwd], {cwd, env: NO_EMULATOR_ENV})
      expect(res.code).toBe(0)
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({projectId: other, collection: 'my_items', scanned: 12, updated: 12})
      const docs = await target.collection('my_items').get()
      expect(docs.docs.every((d) => d.get('normalized') !== undefined)).toBe(true)
      // The flag's project and the default collection were left alone.
      expect(await ledgerRuns(db)).toEqual([])
      expect((await db.collection('wardrobe_items').get()).docs.some((d) => d.get('normalized') !== undefined)).toBe(
        false,
      )
    } finally {
      await target.terminate()
    }
  })

  it('--config and WARDROBE_CONFIG name a config file outside the cwd; flags override it', async () => {
    const elsewhere = tmpDir()
    const file = writeConfig(
      elsewhere,
      {collection: 'nowhere', environments: {development: {projectId: project, emulatorHost: emulatorHost()}}},
      'custom.json',
    )
    await writeItems(db, 'nowhere', generateItems(3, {seed: 8, malformedRate: 0}))

    const viaFlag = await runCli(['backfill', '--json', '--config', file, '--output-dir', cwd], {
      cwd,
      env: NO_EMULATOR_ENV,
    })
    expect(viaFlag.code).toBe(0)
    expect(JSON.parse(viaFlag.stdout)).toMatchObject({projectId: project, collection: 'nowhere', updated: 3})

    const viaEnv = await runCli(['backfill', '--json', '--collection', 'wardrobe_items', '--output-dir', cwd], {
      cwd,
      env: {...NO_EMULATOR_ENV, WARDROBE_CONFIG: file},
    })
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

describe('settings: flag given > environment section > top level > default', () => {
  /** Resolves with a config file in its own folder, from another working directory. */
  function resolve(
    config: Record<string, unknown> | null,
    flags: Partial<SettingsFlags> = {},
    environment: SettingsFlags['environment'] = 'development',
  ) {
    const configDir = tmpDir('wardrobe-config-')
    const cwd = tmpDir('wardrobe-cwd-')
    const file = config ? writeConfig(configDir, config, 'custom.json') : undefined
    const settings = resolveSettings({environment, project: 'p', config: file, ...flags}, {}, cwd)
    return {settings, configDir, cwd, file}
  }

  /** [config key, its flag, top-level value, environment value, flag value, what the settings hold for a value, the default] */
  type Row = [
    string,
    keyof SettingsFlags,
    unknown,
    unknown,
    unknown,
    (s: Settings, dirs: {configDir: string; cwd: string}) => unknown,
    (dirs: {configDir: string; cwd: string}) => unknown,
  ]
  const rows: Row[] = [
    ['batchSize', 'batch-size', 7, 9, 3, (s) => s.batchSize, () => 500],
    ['maxRate', 'max-rate', 100, 200, 50, (s) => s.maxRate, () => undefined],
    ['outageAfterSeconds', 'outage-after', 20, 30, 7, (s) => s.outageAfterMs / 1000, () => 90],
    ['collection', 'collection', 'top_items', 'env_items', 'flag_items', (s) => s.collection, () => 'wardrobe_items'],
    [
      'ledgerCollection',
      'ledger-collection',
      'top_runs',
      'env_runs',
      'flag_runs',
      (s) => s.ledgerCollection,
      () => '_backfill_runs',
    ],
    ['outputDir', 'output-dir', 'top-out', 'env-out', 'flag-out', (s) => s.outputDir, ({cwd}) => cwd],
  ]
  /** A relative path is the config file's folder when it came from the file, the cwd when from a flag. */
  const expected = (key: string, value: unknown, base: string) =>
    key === 'outputDir' ? path.join(base, value as string) : value

  it.each(rows)('%s', (key, flag, top, envValue, flagValue, read, fallback) => {
    const none = resolve(null)
    expect(read(none.settings, none)).toEqual(fallback(none))
    const empty = resolve({})
    expect(read(empty.settings, empty)).toEqual(fallback(empty))

    const topOnly = resolve({[key]: top})
    expect(read(topOnly.settings, topOnly)).toEqual(expected(key, top, topOnly.configDir))

    const withEnv = resolve({
      [key]: top,
      environments: {development: {[key]: envValue}, staging: {projectId: 'x', [key]: flagValue}},
    })
    expect(read(withEnv.settings, withEnv)).toEqual(expected(key, envValue, withEnv.configDir))

    const withFlag = resolve({[key]: top, environments: {development: {[key]: envValue}}}, {[flag]: flagValue})
    expect(read(withFlag.settings, withFlag)).toEqual(expected(key, flagValue, withFlag.cwd))

    // Another environment's section applies to that environment only.
    const staging = resolve(
      {[key]: top, environments: {development: {[key]: envValue}, staging: {projectId: 'x'}}},
      {},
      'staging',
    )
    expect(read(staging.settings, staging)).toEqual(expected(key, top, staging.configDir))
  })

  it('staleAfterSeconds (config only): environment section > top level > 60', () => {
    expect(resolve({}).settings.staleAfterMs).toBe(60_000)
    expect(resolve({staleAfterSeconds: 30}).settings.staleAfterMs).toBe(30_000)
    expect(
      resolve({staleAfterSeconds: 30, environments: {development: {staleAfterSeconds: 45}}}).settings.staleAfterMs,
    ).toBe(45_000)
  })

  it("taxonomy and credentials paths in the config mean the config file's folder; absolute ones stay", () => {
    const top = resolve({taxonomy: './tax.json', environments: {development: {credentials: 'keys/sa.json'}}})
    expect(top.settings.taxonomy).toBe(path.join(top.configDir, 'tax.json'))
    expect(top.settings.credentials).toBe(path.join(top.configDir, 'keys', 'sa.json'))
    const env = resolve({taxonomy: './tax.json', environments: {development: {taxonomy: '../other/tax-1.1.json'}}})
    expect(env.settings.taxonomy).toBe(path.resolve(env.configDir, '..', 'other', 'tax-1.1.json'))
    expect(resolve({taxonomy: '/abs/tax.json'}).settings.taxonomy).toBe('/abs/tax.json')
    expect(resolve({}).settings.taxonomy).toBeUndefined()
  })

  it('./wardrobe.config.json found in the cwd: its paths mean the cwd', () => {
    const cwd = tmpDir()
    writeConfig(cwd, {taxonomy: 'tax.json', outputDir: 'out'})
    const settings = resolveSettings({environment: 'development'}, {}, cwd)
    expect(settings.taxonomy).toBe(path.join(cwd, 'tax.json'))
    expect(settings.outputDir).toBe(path.join(cwd, 'out'))
  })
})

describe('a ledger that would overlap the items is refused (exit 2)', () => {
  const resolveIn = (flags: Partial<SettingsFlags>, config?: unknown) => () =>
    resolveSettings(
      {environment: 'development', config: config === undefined ? undefined : writeConfig(tmpDir(), config), ...flags},
      {},
      tmpDir(),
    )
  const refusal = (fn: () => unknown): UsageError => {
    try {
      fn()
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError)
      expect((err as UsageError).exitCode).toBe(2)
      return err as UsageError
    }
    throw new Error('not refused')
  }

  it.each([
    [
      'the ledger is the collection',
      {collection: 'wardrobe_items', 'ledger-collection': 'wardrobe_items'},
      /wardrobe_items \(--collection\) is the ledger wardrobe_items \(--ledger-collection\)/,
      /pass a --ledger-collection of its own/,
    ],
    [
      'the default ledger named as the collection',
      {collection: '_backfill_runs'},
      /is the ledger _backfill_runs \(the default\)/,
      /pass --ledger-collection/,
    ],
    [
      'the collection is the lock collection',
      {collection: '_backfill_locks', 'ledger-collection': 'runs'},
      /is the lock collection of every ledger, including the ledger runs/,
      /--collection/,
    ],
    [
      'a collection group named as the ledger',
      {'collection-group': '_backfill_runs'},
      /collection group _backfill_runs .* is the ledger/,
      /--ledger-collection/,
    ],
    [
      "a collection group named as the runs' errors",
      {'collection-group': 'errors'},
      /takes in the errors records of every run \(_backfill_runs\/\{runId\}\/errors\)/,
      /--collection or by a collection group of another name/,
    ],
    [
      "a collection group named as the runs' partitions",
      {'collection-group': 'partitions', 'ledger-collection': 'elsewhere'},
      /partitions records of every run \(elsewhere\//,
      /--collection/,
    ],
  ] as const)('%s', (_what, flags, message, fix) => {
    const err = refusal(resolveIn(flags))
    expect(err.message).toMatch(message)
    expect(err.suggestion).toMatch(fix)
  })

  it('names the config file and key when the value came from there', () => {
    const top = refusal(resolveIn({}, {collection: 'items', ledgerCollection: 'items'}))
    expect(top.message).toMatch(
      /items \("collection" in \/\S+wardrobe\.config\.json\) is the ledger items \("ledgerCollection" in /,
    )
    expect(top.suggestion).toMatch(/^set "ledgerCollection" in \/\S+\.json to a collection of its own/)
    const env = refusal(resolveIn({collection: 'items'}, {environments: {development: {ledgerCollection: 'items'}}}))
    expect(env.message).toContain('(--collection)')
    expect(env.suggestion).toMatch(
      /^set "environments\.development\.ledgerCollection" in \S+ to a collection of its own/,
    )
  })

  it('what does not overlap is accepted: a top-level collection named errors, a group named as a top-level collection', () => {
    expect(resolveIn({collection: 'errors'})().collection).toBe('errors')
    expect(resolveIn({collection: 'partitions', 'ledger-collection': 'runs'})().ledgerCollection).toBe('runs')
    expect(resolveIn({'collection-group': 'wardrobe_items'})().group).toBe(true)
  })
})
