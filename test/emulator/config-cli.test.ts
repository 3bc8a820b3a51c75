import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {countDocs, emulatorHost, ledgerRuns, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

/**
 * What an operator sees of the config file through the real CLI: its values reach the run
 * (the run record's options, the items written), flags beat it, its relative paths mean its
 * own folder, and a ledger that would share the items' collection is refused before any write.
 */
const ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '')

function writeJson(dir: string, name: string, content: unknown): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, JSON.stringify(content, null, 2))
  return file
}

/** A vocabulary file of the shipped shape whose version tells which file a run loaded. */
function taxonomy(version: string): unknown {
  return {version, fields: {style: {casual: []}, occasion: {work: []}, mood: {calm: []}, season: {fall: ['autumn']}}}
}

describe('config file values through the CLI', () => {
  let project: string
  let db: Firestore
  let cwd: string

  beforeEach(async () => {
    project = uniqueProject('config-cli')
    db = testDb(project)
    cwd = tmpDir()
    await writeItems(db, 'wardrobe_items', generateItems(6, {seed: 4, malformedRate: 0}))
  })
  afterEach(async () => {
    await db.terminate()
  })

  const target = (more: Record<string, unknown> = {}) => ({
    environments: {development: {projectId: project, emulatorHost: emulatorHost(), ...more}},
  })
  const backfill = (args: string[] = []) =>
    runCli(['backfill', '--json', '--output-dir', cwd, ...args], {cwd, env: ENV})
  const recordedBatchSize = async () => {
    const runs = await ledgerRuns(db)
    expect(runs).toHaveLength(1)
    return runs[0].options.batchSize
  }

  it('batchSize from the config file is what the run uses', async () => {
    writeJson(cwd, 'wardrobe.config.json', {batchSize: 7, ...target()})
    const res = await backfill()
    expect(res.code).toBe(0)
    expect(await recordedBatchSize()).toBe(7)
  })

  it('--batch-size given on the command line beats the config file', async () => {
    writeJson(cwd, 'wardrobe.config.json', {batchSize: 7, ...target()})
    const res = await backfill(['--batch-size', '3'])
    expect(res.code).toBe(0)
    expect(await recordedBatchSize()).toBe(3)
  })

  it("the environment's own batchSize beats the top-level one", async () => {
    writeJson(cwd, 'wardrobe.config.json', {batchSize: 7, ...target({batchSize: 9})})
    const res = await backfill()
    expect(res.stderr).not.toMatch(/Error/)
    expect(res.code).toBe(0)
    expect(await recordedBatchSize()).toBe(9)
  })

  it("a relative taxonomy in a config file elsewhere is read from the config file's folder, not the cwd", async () => {
    const configDir = tmpDir()
    writeJson(configDir, 'tax.json', taxonomy('7.7'))
    // A file of the same name in the working directory must not be the one loaded.
    writeJson(cwd, 'tax.json', taxonomy('0.0-decoy'))
    const config = writeJson(configDir, 'wardrobe.config.json', {taxonomy: './tax.json', ...target()})
    const res = await backfill(['--config', config])
    expect(res.code).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({version: '7.7', updated: 6})
    const versions = (await db.collection('wardrobe_items').get()).docs.map((d) =>
      d.get('normalized.normalized_version'),
    )
    expect(versions).toEqual(Array(6).fill('7.7'))
  })

  it('--ledger-collection equal to --collection: exit 2, one line, nothing written anywhere', async () => {
    const before = (await db.collection('wardrobe_items').get()).docs.map((d) => d.updateTime.toMillis())
    const res = await runCli(
      [
        'backfill',
        '--project',
        project,
        '--emulator-host',
        emulatorHost(),
        '--output-dir',
        cwd,
        '--ledger-collection',
        'wardrobe_items',
        '--collection',
        'wardrobe_items',
      ],
      {cwd, env: ENV},
    )
    expect(res.code).toBe(2)
    expect(lines(res.stderr)).toHaveLength(1)
    expect(res.stderr).toMatch(/--ledger-collection/)
    expect(res.stderr).toMatch(/fix:/)
    expect(res.stdout).toBe('')
    // No run record, no lock, no item touched.
    expect(await countDocs(db, 'wardrobe_items')).toBe(6)
    expect((await db.collection('wardrobe_items').get()).docs.map((d) => d.updateTime.toMillis())).toEqual(before)
    expect(await countDocs(db, 'wardrobe_items_locks')).toBe(0)
    expect(await ledgerRuns(db)).toEqual([])
    expect(fs.readdirSync(cwd).filter((f) => f.startsWith('backfill_stats'))).toEqual([])
  })

  it('a ledgerCollection in the config equal to the items collection: exit 2 naming the file and the key', async () => {
    const config = writeJson(cwd, 'wardrobe.config.json', {
      collection: 'wardrobe_items',
      ledgerCollection: 'wardrobe_items',
      ...target(),
    })
    const res = await backfill()
    expect(res.code).toBe(2)
    const error = JSON.parse(res.stdout).error
    expect(error.message).toContain(config)
    expect(error.message).toContain('ledgerCollection')
    expect(error.suggestion).toMatch(/ledgerCollection/)
    expect(await ledgerRuns(db)).toEqual([])
    expect(await ledgerRuns(db, 'wardrobe_items_locks')).toEqual([])
  })
})
