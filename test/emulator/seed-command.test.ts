import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {countDocs, devArgs, emulatorHost, ledgerRuns, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

const COL = 'wardrobe_items'
// jest's NODE_ENV=test makes oclif print a ts-source warning on stderr; a user's shell has no such variable.
const ENV = {NODE_ENV: undefined}

describe('wardrobe seed', () => {
  let project: string
  let db: Firestore
  let out: string

  beforeEach(() => {
    project = uniqueProject('seed-cmd')
    db = testDb(project)
    out = tmpDir()
  })
  afterEach(async () => {
    await db.terminate()
  })

  it('--count 100 writes 100 documents into the development emulator', async () => {
    const res = await runCli(['seed', ...devArgs(project, out), '--count', '100'], {env: ENV})
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/Seeded 100 items/)
    expect(await countDocs(db, COL)).toBe(100)
    const docs = await db.collection(COL).get()
    // Realistic items: a name and (for well-formed ones) the four fields the backfill reads.
    expect(docs.docs.every((d) => typeof d.get('name') === 'string')).toBe(true)
    expect(docs.docs.filter((d) => d.get('normalized') !== undefined)).toHaveLength(0)
    expect(await ledgerRuns(db)).toEqual([])
  })

  it('--json returns the result object; the same --seed gives the same documents', async () => {
    const res = await runCli(['seed', ...devArgs(project, out), '--count', '25', '--seed', '9', '--json'], {env: ENV})
    expect(res.code).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({written: 25, projectId: project, collection: COL})
    const first = (await db.collection(COL).get()).docs.map((d) => d.id).sort()

    const other = uniqueProject('seed-cmd-again')
    const db2 = testDb(other)
    try {
      expect((await runCli(['seed', ...devArgs(other, out), '--count', '25', '--seed', '9'], {env: ENV})).code).toBe(0)
      expect((await db2.collection(COL).get()).docs.map((d) => d.id).sort()).toEqual(first)
    } finally {
      await db2.terminate()
    }
  })

  it.each(['production', 'staging'])(
    '--environment %s is refused with exit 2 and nothing written',
    async (environment) => {
      const res = await runCli(
        [
          'seed',
          '--environment',
          environment,
          '--project',
          project,
          '--emulator-host',
          emulatorHost(),
          '--output-dir',
          out,
          '--count',
          '5',
        ],
        {env: ENV},
      )
      expect(res.code).toBe(2)
      expect(res.stderr).toMatch(/development/)
      expect(await countDocs(db, COL)).toBe(0)
    },
  )

  it('--file loads a small NDJSON file, ids and fields as written', async () => {
    const file = path.join(out, 'items.ndjson')
    const items = [
      {id: 'shirt-1', name: 'Linen Shirt', style: ['Casual', 'Boho'], season: 'Summer, Spring', price: 39.5},
      {
        id: 'coat-2',
        name: 'Wool Coat',
        style: 'Formal',
        occasion: ['Work'],
        mood: null,
        details: {material: 'wool', sizes: ['S', 'M']},
      },
      {id: 'tee-3', name: 'Tee ☀️ Ünïcödé', tags: []},
    ]
    fs.writeFileSync(file, items.map((i) => JSON.stringify(i)).join('\n') + '\n\n')
    const res = await runCli(['seed', ...devArgs(project, out), '--file', file], {env: ENV})
    expect(res.code).toBe(0)
    expect(await countDocs(db, COL)).toBe(3)
    for (const {id, ...data} of items) {
      const snap = await db.collection(COL).doc(id).get()
      expect(snap.exists).toBe(true)
      const stored = {...snap.data()}
      delete stored.id // an id property may be kept as a field too; only the rest must match
      expect(stored).toEqual(data)
    }
  })

  it('rejects a bad --malformed-rate and --count with --file (exit 2, nothing written)', async () => {
    const bad = await runCli(['seed', ...devArgs(project, out), '--count', '5', '--malformed-rate', '2'], {env: ENV})
    expect(bad.code).toBe(2)
    const both = await runCli(['seed', ...devArgs(project, out), '--count', '5', '--file', 'x.ndjson'], {env: ENV})
    expect(both.code).toBe(2)
    expect(await countDocs(db, COL)).toBe(0)
  })
})
