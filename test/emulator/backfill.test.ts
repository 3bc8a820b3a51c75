/**
 * `wardrobe backfill` end to end against the real emulator: what ends up in Firestore and
 * in the files, run through the built CLI the way an operator runs it.
 */
import fs from 'node:fs'
import path from 'node:path'
import {DocumentSnapshot, FieldValue, Firestore, GeoPoint, Timestamp} from 'firebase-admin/firestore'
import {planBackfill} from '../../src/services/backfill'
import {MAX_HISTORY} from '../../src/domain/normalized'
import {normalizeItem, sourceHash} from '../../src/domain/normalization'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {DEFAULT_TAXONOMY_FILE, loadVocabulary, NORMALIZED_FIELDS} from '../../src/domain/vocabulary'
import {
  canonical,
  devArgs,
  latestFile,
  ledgerRuns,
  readJson,
  runCli,
  snapshotCollection,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

const COL = 'wardrobe_items'
const vocab = loadVocabulary()
// jest's NODE_ENV=test makes oclif print a ts-source warning on stderr; a user's shell has no such variable.
const ENV = {NODE_ENV: undefined}

async function docsOf(db: Firestore, collection = COL): Promise<Map<string, DocumentSnapshot>> {
  const snap = await db.collection(collection).get()
  return new Map(snap.docs.map((d) => [d.id, d]))
}

/** The item's fields without `normalized`: what the backfill reads as the originals. */
function originals(doc: DocumentSnapshot): Record<string, unknown> {
  const data = {...doc.data()}
  delete data.normalized
  return data
}

function changedIds(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((id) => a.get(id) !== b.get(id)).sort()
}

/** Ids whose `normalized` does not match a fresh normalization of the item's current originals. */
function inconsistent(docs: Map<string, DocumentSnapshot>): string[] {
  const bad: string[] = []
  for (const [id, doc] of docs) {
    const orig = originals(doc)
    const outcome = normalizeItem(orig, vocab)
    const n = doc.get('normalized')
    if (!outcome.ok) {
      if (n !== undefined) bad.push(id)
      continue
    }
    const ok =
      n &&
      NORMALIZED_FIELDS.every((f) => JSON.stringify(n[f]) === JSON.stringify(outcome.values[f])) &&
      n.source_hash === sourceHash(orig) &&
      n.normalized_version === vocab.version
    if (!ok) bad.push(id)
  }
  return bad
}

/** Every field of one normalized map checked against the originals it was computed from. */
function expectNormalizedShape(
  doc: DocumentSnapshot,
  runId: string,
  window?: {startedAt: string; finishedAt: string},
  hadPrevious = false,
): void {
  const n = doc.get('normalized')
  const orig = originals(doc)
  const expected = normalizeItem(orig, vocab)
  if (!expected.ok) throw new Error(`${doc.id} is not well-formed: ${expected.reason}`)
  const keys = [
    'style',
    'occasion',
    'mood',
    'season',
    'normalized_at',
    'normalized_version',
    'taxonomy_hash',
    'source_hash',
    'run_id',
    ...(hadPrevious ? ['previous'] : []),
  ]
  expect({id: doc.id, keys: Object.keys(n).sort()}).toEqual({id: doc.id, keys: keys.sort()})
  for (const f of NORMALIZED_FIELDS) {
    expect(Array.isArray(n[f])).toBe(true)
    expect(n[f].every((v: unknown) => typeof v === 'string' && v !== '' && v === v.toLowerCase())).toBe(true)
    expect(n[f]).toEqual(expected.values[f])
  }
  expect(n.normalized_at).toBeInstanceOf(Timestamp)
  if (window) {
    expect(n.normalized_at.toMillis()).toBeGreaterThanOrEqual(Date.parse(window.startedAt) - 1000)
    expect(n.normalized_at.toMillis()).toBeLessThanOrEqual(Date.parse(window.finishedAt) + 1000)
  }
  expect(n.normalized_version).toBe('1.0')
  expect(n.taxonomy_hash).toBe(vocab.hash)
  expect(n.source_hash).toMatch(/^[0-9a-f]{64}$/)
  expect(n.source_hash).toBe(sourceHash(orig))
  expect(n.run_id).toBe(runId)
}

describe('wardrobe backfill: data', () => {
  let project: string
  let db: Firestore
  let out: string
  let args: string[]

  beforeEach(() => {
    project = uniqueProject('backfill')
    db = testDb(project)
    out = tmpDir()
    args = devArgs(project, out)
  })
  afterEach(async () => {
    await db.terminate()
  })

  const backfill = (extra: string[] = []) => runCli(['backfill', ...args, ...extra], {env: ENV})

  describe('--dry-run', () => {
    beforeEach(async () => {
      await writeItems(db, COL, generateItems(300, {seed: 11, malformedRate: 0.05}))
      const col = db.collection(COL)
      await col.doc('dry-bad-number').set({name: 'n', style: 42})
      await col.doc('dry-bad-map').set({name: 'm', occasion: {weekend: true}})
      await col.doc('dry-unmapped-1').set({name: 'u1', style: ['Cyberpunk', 'Casual'], season: 'Zzfrobnicate'})
      await col.doc('dry-unmapped-2').set({name: 'u2', style: ' CYBERPUNK '})
      expect(vocab.canonical('style', 'cyberpunk')).toBeUndefined() // the test relies on these being unknown
      expect(vocab.canonical('season', 'zzfrobnicate')).toBeUndefined()
    })

    it('writes nothing anywhere: no item changed, no ledger, no lock, no other collection', async () => {
      const before = await snapshotCollection(db, COL)
      const res = await backfill(['--dry-run', '--json'])
      expect([0, 3]).toContain(res.code)
      expect(changedIds(before, await snapshotCollection(db, COL))).toEqual([])
      expect((await db.collection('_backfill_runs').get()).size).toBe(0)
      expect((await db.collection('_backfill_locks').get()).size).toBe(0)
      expect((await db.listCollections()).map((c) => c.id)).toEqual([COL])
    })

    it('reports counts, error items with reasons, unmapped values with counts and an estimate', async () => {
      const docs = await docsOf(db)
      let wellFormed = 0
      const errors = new Map<string, string>()
      const unmapped = new Map<string, number>()
      for (const [id, doc] of docs) {
        const o = normalizeItem(originals(doc), vocab)
        if (!o.ok) errors.set(id, o.reason)
        else {
          wellFormed++
          for (const u of o.unmapped)
            unmapped.set(`${u.field}:${u.value}`, (unmapped.get(`${u.field}:${u.value}`) ?? 0) + 1)
        }
      }
      expect(errors.size).toBeGreaterThan(2)

      const res = await backfill(['--dry-run', '--json'])
      expect(res.code).toBe(3) // error items found
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({
        dryRun: true,
        runId: null,
        status: 'completed',
        scanned: docs.size,
        updated: wellFormed,
        skipped: 0,
        failed: errors.size,
        total: docs.size,
      })
      // Error items: id, field and reason.
      expect(stats.errorSamples).toHaveLength(errors.size)
      for (const e of stats.errorSamples) expect(e.reason).toBe(errors.get(e.id))
      expect(stats.errorSamples.find((e: {id: string}) => e.id === 'dry-bad-number')).toMatchObject({
        field: 'style',
        reason: expect.stringMatching(/number/),
      })
      expect(stats.errorSamples.find((e: {id: string}) => e.id === 'dry-bad-map')).toMatchObject({
        field: 'occasion',
        reason: expect.stringMatching(/map/),
      })
      // Unmapped values with counts (folded forms).
      const reported = new Map<string, number>(
        stats.unmapped.map((u: {field: string; value: string; count: number}) => [`${u.field}:${u.value}`, u.count]),
      )
      expect(reported).toEqual(unmapped)
      expect(reported.get('style:cyberpunk')).toBe(2)
      expect(reported.get('season:zzfrobnicate')).toBe(1)
      expect(stats.unmappedDistinct).toBe(unmapped.size)
      // Estimate: every item read, updates and error records written, a duration.
      expect(stats.estimate).toMatchObject({
        reads: expect.any(Number),
        writes: expect.any(Number),
        seconds: expect.any(Number),
      })
      expect(stats.estimate.reads).toBeGreaterThanOrEqual(docs.size)
      expect(stats.estimate.writes).toBeGreaterThanOrEqual(wellFormed)
      expect(stats.estimate.seconds).toBeGreaterThanOrEqual(0)
      expect(readJson(latestFile(out, 'backfill_stats_'))).toEqual(stats)
    })

    it('the human summary names the counts, the error items, the unmapped values and the estimate', async () => {
      const res = await backfill(['--dry-run'])
      expect(res.code).toBe(3)
      const stats = readJson(latestFile(out, 'backfill_stats_'))
      expect(res.stdout).toContain(
        `Dry run completed: scanned 304, would update ${stats.updated}, skipped 0, failed ${stats.failed}`,
      )
      // Error items with their reasons (the first ten).
      expect(res.stdout).toContain(`Error items (${stats.failed}`)
      for (const e of stats.errorSamples.slice(0, 10)) expect(res.stdout).toContain(`${e.id}: ${e.reason}`)
      expect(res.stdout).toMatch(/style: "cyberpunk" × 2/)
      expect(res.stdout).toMatch(/Estimate for the real run: \d+ writes, \d+ reads, about \S+/)
      expect(await ledgerRuns(db)).toEqual([])
    })
  })

  it('a full run leaves every original field byte-identical, of every Firestore type, and adds the expected normalized map', async () => {
    await writeItems(db, COL, generateItems(200, {seed: 12, malformedRate: 0}))
    const col = db.collection(COL)
    const exotic = {
      name: 'Exotic ☃ 𝄞 naïve – 日本語 – עברית – 👩🏽‍💻',
      style: ['Street wear', 'BOHO', 'Cyberpunk'],
      occasion: 'Weekend, Date night',
      mood: null,
      createdAt: Timestamp.fromMillis(1_700_000_000_123),
      precise: new Timestamp(1_600_000_000, 123_456_000),
      where: new GeoPoint(48.8566, 2.3522),
      owner: db.doc('users/u1'),
      sibling: col.doc('plain-missing'),
      blob: Buffer.from([0, 1, 2, 127, 128, 254, 255]),
      emptyBlob: Buffer.alloc(0),
      nested: {a: {b: {c: [1, 'two', {three: 3, at: Timestamp.fromMillis(1)}], d: null}}, e: [], f: {}},
      arrayOfMaps: [
        {k: 1, v: [true, false]},
        {k: 2, when: Timestamp.fromMillis(5), g: new GeoPoint(-1, -2)},
      ],
      nothing: null,
      int: 42,
      negative: -17,
      float: 3.141592653589793,
      maxSafe: Number.MAX_SAFE_INTEGER,
      tiny: 5e-324,
      negZero: -0,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      bool: false,
      empty: '',
      longText: 'lorem ipsum '.repeat(40_000),
      'dotted.key': 'kept',
      'spaced key': 1,
      ключ: 'значение',
      '`backtick`': true,
      tags: ['Casual', 'casual', ''],
    }
    await col.doc('exotic').set(exotic)
    const legacyNormalized = {
      style: ['CASUAL'],
      written_by: 'app',
      normalized_version: '0.9',
      at: Timestamp.fromMillis(1_600_000_000_000),
      where: new GeoPoint(1, 2),
      list: [{a: 1}],
    }
    await col.doc('legacy').set({name: 'Legacy', style: ['Casual'], season: 'Fall', normalized: legacyNormalized})
    await col.doc('legacy-string').set({name: 'Odd', season: 'Autumn', normalized: 'not a map'})
    await col.doc('plain-missing').set({name: 'No fields at all'})
    await col.doc('all-null').set({style: null, occasion: null, mood: null, season: null})

    const before = await snapshotCollection(db, COL, ['normalized'])
    const res = await backfill(['--json'])
    expect(res.code).toBe(0)
    const stats = JSON.parse(res.stdout)
    expect(stats).toMatchObject({status: 'completed', scanned: 205, updated: 205, failed: 0, skipped: 0})

    const after = await snapshotCollection(db, COL, ['normalized'])
    expect(after.size).toBe(before.size)
    expect(changedIds(before, after)).toEqual([])

    const docs = await docsOf(db)
    // What canonical() cannot tell apart, checked directly.
    const ex = docs.get('exotic')!.data()!
    expect(Object.is(ex.negZero, -0)).toBe(true)
    expect(Number.isNaN(ex.nan)).toBe(true)
    expect(ex.inf).toBe(Infinity)
    expect(ex.ninf).toBe(-Infinity)
    expect(ex.longText).toBe(exotic.longText)

    for (const [id, doc] of docs)
      expectNormalizedShape(doc, stats.runId, stats, id === 'legacy' || id === 'legacy-string')
    expect(docs.get('exotic')!.get('normalized')).toMatchObject({
      style: ['streetwear', 'bohemian', 'cyberpunk'],
      occasion: ['weekend', 'date night'],
      mood: [],
      season: [],
    })
    expect(docs.get('plain-missing')!.get('normalized')).toMatchObject({style: [], occasion: [], mood: [], season: []})
    expect(docs.get('all-null')!.get('normalized')).toMatchObject({style: [], occasion: [], mood: [], season: []})
    // The value it replaced is kept exactly (rollback restores it).
    expect(canonical(docs.get('legacy')!.get('normalized.previous'))).toEqual(canonical(legacyNormalized))
    expect(docs.get('legacy-string')!.get('normalized.previous')).toBe('not a map')

    // The run is recorded, finished, and its lock released.
    const runs = await ledgerRuns(db)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({
      runId: stats.runId,
      status: 'completed',
      collection: COL,
      counters: {scanned: 205, updated: 205, skipped: 0, failed: 0},
    })
    expect(runs[0].cursor).toBe([...docs.keys()].sort().pop())
    expect((await db.collection('_backfill_locks').get()).size).toBe(0)
  })

  it("the seed's Before Backfill item gets exactly the After Backfill arrays", async () => {
    const before = {
      id: 'item_123',
      name: 'Blue Jeans',
      style: ['Casual', 'Streetwear'],
      occasion: ['Everyday', 'Weekend'],
      mood: ['Relaxed', 'Cool'],
      season: ['Spring', 'Summer'],
    }
    await db.collection(COL).doc('item_123').set(before)
    const res = await backfill()
    expect(res.code).toBe(0)
    const doc = await db.collection(COL).doc('item_123').get()
    const {normalized, ...rest} = doc.data()!
    expect(rest).toEqual(before)
    const {normalized_at, ...others} = normalized
    expect(normalized_at).toBeInstanceOf(Timestamp)
    expect(others).toMatchObject({
      style: ['casual', 'streetwear'],
      occasion: ['everyday', 'weekend'],
      mood: ['relaxed', 'cool'],
      season: ['spring', 'summer'],
      normalized_version: '1.0',
    })
  })

  describe('error items and re-runs (one collection, runs in sequence)', () => {
    // Shared across the ordered tests below.
    const shared = {project: '', out: '', args: [] as string[], firstRunId: '', goodIds: [] as string[]}
    let sdb: Firestore
    const malformed: Record<string, {data: Record<string, unknown>; field: string; reason: RegExp}> = {
      'bad-number': {data: {name: 'N', style: 42, season: ['Summer']}, field: 'style', reason: /^style\b.*number/},
      'bad-map': {data: {name: 'M', occasion: {casual: true}}, field: 'occasion', reason: /^occasion\b.*map/},
      'bad-boolean': {data: {name: 'B', mood: true}, field: 'mood', reason: /^mood\b.*boolean/},
      'bad-element': {data: {name: 'E', season: ['Summer', 7]}, field: 'season', reason: /^season\[1\].*number/},
      'bad-null-element': {data: {name: 'E2', style: ['Casual', null]}, field: 'style', reason: /^style\[1\].*null/},
      'bad-long': {
        data: {name: 'L', style: ['Casual', 'y'.repeat(300)]},
        field: 'style',
        reason: /^style\[1\].*(long|characters|length)/,
      },
      'bad-oversized': {
        data: {name: 'O', mood: Array.from({length: 200}, (_, i) => `mood ${i}`)},
        field: 'mood',
        reason: /^mood\b.*200/,
      },
      'bad-timestamp': {
        data: {name: 'T', season: Timestamp.fromMillis(0)},
        field: 'season',
        reason: /^season\b.*Timestamp/,
      },
    }
    const malformedIds = Object.keys(malformed)
    let beforeAll_: Map<string, string>

    beforeAll(async () => {
      shared.project = uniqueProject('backfill-errors')
      shared.out = tmpDir()
      shared.args = devArgs(shared.project, shared.out)
      sdb = testDb(shared.project)
      await writeItems(sdb, COL, generateItems(150, {seed: 13, malformedRate: 0}))
      for (const [id, m] of Object.entries(malformed)) await sdb.collection(COL).doc(id).set(m.data)
      shared.goodIds = [...(await docsOf(sdb)).keys()].filter((id) => !malformedIds.includes(id))
      beforeAll_ = await snapshotCollection(sdb, COL)
    })
    afterAll(async () => {
      await sdb.terminate()
    })
    const run = (extra: string[] = []) => runCli(['backfill', ...shared.args, ...extra], {env: ENV})

    it('malformed items are not written, their reasons are reported and recorded, exit 3, every other item is done', async () => {
      const res = await run()
      expect(res.code).toBe(3)
      const stats = readJson(latestFile(shared.out, 'backfill_stats_'))
      shared.firstRunId = stats.runId
      expect(stats).toMatchObject({status: 'completed', scanned: 158, updated: 150, failed: 8, skipped: 0})

      const docs = await docsOf(sdb)
      const now = await snapshotCollection(sdb, COL)
      for (const id of malformedIds) {
        expect({id, normalized: docs.get(id)!.get('normalized')}).toEqual({id, normalized: undefined})
        expect(now.get(id)).toBe(beforeAll_.get(id)) // untouched, byte for byte
        const sample = stats.errorSamples.find((e: {id: string}) => e.id === id)
        expect({id, sample}).toEqual({
          id,
          sample: {id, field: malformed[id].field, reason: expect.stringMatching(malformed[id].reason)},
        })
        const record = await sdb.doc(`_backfill_runs/${stats.runId}/errors/${id}`).get()
        expect(record.exists).toBe(true)
        expect(record.data()).toMatchObject({itemId: id, field: malformed[id].field, reason: sample.reason})
        expect(record.get('at')).toBeInstanceOf(Timestamp)
        // The human summary lists them too.
        expect(res.stdout).toContain(`${id}: ${sample.reason}`.slice(0, 60))
      }
      expect((await sdb.collection(`_backfill_runs/${stats.runId}/errors`).get()).size).toBe(8)
      for (const id of shared.goodIds) expectNormalizedShape(docs.get(id)!, stats.runId)
      const [record] = await ledgerRuns(sdb)
      expect(record).toMatchObject({status: 'completed', counters: {scanned: 158, updated: 150, failed: 8, skipped: 0}})
    })

    it('a second run updates nothing, skips every well-formed item, rewrites nothing, and exits 3 again for the error items', async () => {
      const before = await snapshotCollection(sdb, COL)
      const res = await run(['--json'])
      expect(res.code).toBe(3)
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({
        status: 'completed',
        resumed: false,
        updated: 0,
        skipped: 150,
        failed: 8,
        scanned: 158,
      })
      expect(stats.runId).not.toBe(shared.firstRunId)
      expect(changedIds(before, await snapshotCollection(sdb, COL))).toEqual([]) // normalized_at included
      expect((await sdb.collection(`_backfill_runs/${stats.runId}/errors`).get()).size).toBe(8)
    })

    it('--force re-normalizes every well-formed item, keeping the replaced value; a plain run afterwards skips them all', async () => {
      const before = await docsOf(sdb)
      const res = await run(['--force', '--json'])
      expect(res.code).toBe(3)
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({status: 'completed', force: true, updated: 150, skipped: 0, failed: 8})
      const after = await docsOf(sdb)
      for (const id of shared.goodIds) {
        expectNormalizedShape(after.get(id)!, stats.runId, undefined, true)
        expect(canonical(after.get(id)!.get('normalized.previous'))).toEqual(
          canonical(before.get(id)!.get('normalized')),
        )
        expect(canonical(originals(after.get(id)!))).toEqual(canonical(originals(before.get(id)!)))
      }
      for (const id of malformedIds) expect(after.get(id)!.get('normalized')).toBeUndefined()

      const again = await run(['--json'])
      expect(again.code).toBe(3)
      expect(JSON.parse(again.stdout)).toMatchObject({updated: 0, skipped: 150, failed: 8})
    })
  })

  it('values meaning "nothing" are missing: normalized fields stay empty for them, real values are kept, items counted as placeholder in --json, the stats file and the summary', async () => {
    const col = db.collection(COL)
    await col.doc('ph-only').set({name: 'p', style: ['NA'], occasion: 'N/A', mood: ['none', 'NULL'], season: '-'})
    await col
      .doc('ph-mixed')
      .set({name: 'm', style: ['Unknown', 'Casual'], occasion: 'n/a, Work', mood: 'calm', season: ['Fall', 'na']})
    await col.doc('ph-free').set({name: 'r', style: 'Casual', season: 'Fall'})
    const res = await backfill(['--json'])
    expect(res.code).toBe(0)
    const stats = JSON.parse(res.stdout)
    expect(stats).toMatchObject({updated: 3, failed: 0, placeholder: 2, unmapped: [], unmappedDistinct: 0})
    expect(readJson(latestFile(out, 'backfill_stats_'))).toEqual(stats)
    const docs = await docsOf(db)
    const arrays = (id: string) =>
      Object.fromEntries(NORMALIZED_FIELDS.map((f) => [f, docs.get(id)!.get(`normalized.${f}`)]))
    expect(arrays('ph-only')).toEqual({style: [], occasion: [], mood: [], season: []})
    expect(arrays('ph-mixed')).toEqual({style: ['casual'], occasion: ['work'], mood: ['calm'], season: ['fall']})
    expect(arrays('ph-free')).toEqual({style: ['casual'], occasion: [], mood: [], season: ['fall']})
    // Skipped items (already current) are counted too, and the dry run's summary says so.
    const dry = await backfill(['--dry-run'])
    expect(dry.code).toBe(0)
    expect(readJson(latestFile(out, 'backfill_stats_'))).toMatchObject({dryRun: true, skipped: 3, placeholder: 2})
    expect(dry.stdout).toContain('Placeholders: 2 items held values meaning "nothing"')
    expect(dry.stdout).not.toContain('Unmapped values')
  })

  it('a re-run on a collection without error items exits 0 and skips everything', async () => {
    await writeItems(db, COL, generateItems(40, {seed: 14, malformedRate: 0}))
    const first = await backfill(['--json'])
    expect(first.code).toBe(0)
    expect(JSON.parse(first.stdout)).toMatchObject({updated: 40, failed: 0})
    const second = await backfill(['--json'])
    expect(second.code).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({updated: 0, skipped: 40, failed: 0})
  })

  it('a lone UTF-16 surrogate cannot even be stored in Firestore; in memory the normalizer makes it an error item', async () => {
    // So an end-to-end item with one cannot exist; the backfill's decision is checked directly.
    await expect(
      db
        .collection(COL)
        .doc('lone')
        .set({style: ['Casual\uD800']}),
    ).rejects.toThrow()
    const plan = planBackfill({style: ['Casual', 'Boho\uDC00x']}, vocab, {force: false, runId: 'r'})
    expect(plan).toMatchObject({
      action: 'error',
      field: 'style',
      reason: expect.stringMatching(/style\[1\].*(surrogate|unicode)/i),
    })
  })

  it('a resumed run re-normalizes an item it wrote before the crash if the app changed it since (never keeps a stale normalized)', async () => {
    await writeItems(db, COL, generateItems(30, {seed: 15, malformedRate: 0}))
    const first = await backfill(['--json'])
    expect(first.code).toBe(0)
    const {runId} = JSON.parse(first.stdout)
    // The state a kill -9 leaves when it strikes after these writes but before the first
    // checkpoint: the run unfinished, its cursor still at the start.
    await db.doc(`_backfill_runs/${runId}`).set(
      {
        status: 'interrupted',
        cursor: null,
        finishedAt: null,
        counters: {scanned: 0, updated: 0, skipped: 0, failed: 0, conflicts: 0},
      },
      {merge: true},
    )
    const changed = (await db.collection(COL).limit(3).get()).docs
    for (const d of changed) await d.ref.update({style: ['Formal'], season: 'Winter'})

    const resumed = await backfill(['--json'])
    expect(resumed.code).toBe(0)
    const stats = JSON.parse(resumed.stdout)
    expect(stats).toMatchObject({runId, resumed: true, status: 'completed'})
    expect(inconsistent(await docsOf(db))).toEqual([])
  })

  it('--from-start leaves the unfinished run superseded and starts a new run', async () => {
    await writeItems(db, COL, generateItems(20, {seed: 17, malformedRate: 0}))
    const first = JSON.parse((await backfill(['--json'])).stdout)
    await db.doc(`_backfill_runs/${first.runId}`).set({status: 'interrupted', finishedAt: null}, {merge: true})
    const res = await backfill(['--from-start', '--json'])
    expect(res.code).toBe(0)
    const stats = JSON.parse(res.stdout)
    expect(stats.runId).not.toBe(first.runId)
    expect(stats).toMatchObject({resumed: false, scanned: 20, updated: 0, skipped: 20})
    const runs = new Map((await ledgerRuns(db)).map((r) => [r.runId, r.status]))
    expect(runs).toEqual(
      new Map([
        [first.runId, 'superseded'],
        [stats.runId, 'completed'],
      ]),
    )
  })

  it('an edited taxonomy that keeps its version is a new run, not a resume of the unfinished one, and re-normalizes every item', async () => {
    await writeItems(db, COL, generateItems(40, {seed: 21, malformedRate: 0}))
    await db
      .collection(COL)
      .doc('casual-item')
      .set({name: 'Tee', style: ['Casual']})
    const first = JSON.parse((await backfill(['--json'])).stdout)
    // Left unfinished (its checkpoint at the last item): the same command would resume it.
    await db.doc(`_backfill_runs/${first.runId}`).set({status: 'interrupted', finishedAt: null}, {merge: true})
    const taxonomy = JSON.parse(fs.readFileSync(DEFAULT_TAXONOMY_FILE, 'utf8'))
    const {casual, ...styles} = taxonomy.fields.style
    taxonomy.fields.style = {easygoing: [...casual, 'casual'], ...styles}
    const edited = path.join(out, 'edited-1.0.json')
    fs.writeFileSync(edited, JSON.stringify(taxonomy))
    const editedVocab = loadVocabulary(edited)
    expect(editedVocab.version).toBe(vocab.version)

    const res = await backfill(['--taxonomy', edited, '--json'])
    expect(res.code).toBe(0)
    const stats = JSON.parse(res.stdout)
    expect(stats.runId).not.toBe(first.runId)
    expect(stats).toMatchObject({resumed: false, scanned: 41, updated: 41, skipped: 0})
    const docs = await docsOf(db)
    expect(docs.get('casual-item')!.get('normalized.style')).toEqual(['easygoing'])
    expect(
      [...docs.values()].filter(
        (d) => d.get('normalized.taxonomy_hash') !== editedVocab.hash || d.get('normalized.run_id') !== stats.runId,
      ),
    ).toEqual([])
  })

  it('an item normalized before taxonomy_hash existed is normalized once more, then skipped', async () => {
    await writeItems(db, COL, generateItems(10, {seed: 22, malformedRate: 0}))
    expect((await backfill()).code).toBe(0)
    const older = (await db.collection(COL).limit(1).get()).docs[0].ref
    await older.update({'normalized.taxonomy_hash': FieldValue.delete()})
    expect(JSON.parse((await backfill(['--json'])).stdout)).toMatchObject({updated: 1, skipped: 9})
    expect((await older.get()).get('normalized.taxonomy_hash')).toBe(vocab.hash)
    expect(JSON.parse((await backfill(['--json'])).stdout)).toMatchObject({updated: 0, skipped: 10})
  })

  it("history trimming keeps another pipeline's value at the bottom of the chain, and a full rollback gives it back exactly", async () => {
    const foreign = {
      style: ['casual'],
      source: 'old-pipeline',
      run_id: 'nightly-2024-01-15',
      at: Timestamp.fromMillis(1_600_000_000_000),
      where: new GeoPoint(1, 2),
    }
    const item = db.collection(COL).doc('long-lived')
    await item.set({name: 'Coat', style: ['Casual'], normalized: foreign})
    const before = await snapshotCollection(db, COL)
    // One more backfill than the history holds: the oldest of the tool's entries is dropped.
    for (let i = 0; i <= MAX_HISTORY; i++) expect((await backfill(['--force'])).code).toBe(0)
    const toolEntries: unknown[] = []
    let node = (await item.get()).get('normalized')
    for (; typeof node?.run_id === 'string' && node.run_id.startsWith('backfill-'); node = node.previous)
      toolEntries.push(node)
    expect(toolEntries).toHaveLength(MAX_HISTORY)
    expect(canonical(node)).toEqual(canonical(foreign))

    const rollback = await runCli(['rollback', ...args, '--json'], {env: ENV})
    expect(JSON.parse(rollback.stdout)).toMatchObject({status: 'completed', restored: 1, removed: 0})
    expect(changedIds(before, await snapshotCollection(db, COL))).toEqual([])
  })

  it('--batch-size below a BulkWriter batch (20) still makes progress (liveness: ~2 s expected, killed after 20 s)', async () => {
    await writeItems(db, COL, generateItems(150, {seed: 18, malformedRate: 0}))
    const res = await startCli(['backfill', ...args, '--batch-size', '5', '--json'], {env: ENV, timeoutMs: 20_000}).done
    expect(res.signal).toBeNull()
    expect(res.code).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({status: 'completed', updated: 150})
  })

  it('an item whose existing normalized is nested deep (as after ~18 re-normalizations) does not hang the run; every other item is done', async () => {
    await writeItems(db, COL, generateItems(60, {seed: 19, malformedRate: 0}))
    // The chain the backfill itself builds: each re-normalization keeps the replaced map as `previous`.
    let chain: Record<string, unknown> = {
      style: ['casual'],
      occasion: [],
      mood: [],
      season: [],
      normalized_at: Timestamp.fromMillis(0),
      normalized_version: '0.0',
      source_hash: 'x',
      run_id: 'r0',
    }
    for (let i = 1; i <= 18; i++)
      chain = {
        style: ['casual'],
        occasion: [],
        mood: [],
        season: [],
        normalized_at: Timestamp.fromMillis(i),
        normalized_version: `0.${i}`,
        source_hash: 'x',
        run_id: `r${i}`,
        previous: chain,
      }
    await db
      .collection(COL)
      .doc('deep-history')
      .set({name: 'Old favourite', style: ['Casual'], normalized: chain})
    const before = await snapshotCollection(db, COL, ['normalized'])

    const res = await startCli(['backfill', ...args, '--json'], {env: ENV, timeoutMs: 25_000}).done
    expect(res.signal).toBeNull() // not killed by the timeout: the run ended on its own
    expect([0, 3]).toContain(res.code)
    const stats = JSON.parse(res.stdout)
    expect(stats.status).toBe('completed')
    expect(changedIds(before, await snapshotCollection(db, COL, ['normalized']))).toEqual([])
    const docs = await docsOf(db)
    const others = [...docs.values()].filter((d) => d.id !== 'deep-history')
    expect(inconsistent(new Map(others.map((d) => [d.id, d])))).toEqual([])
    if (res.code === 3) expect(stats.errorSamples.map((e: {id: string}) => e.id)).toEqual(['deep-history'])
  })

  it('an item that a write cannot take (adding normalized would pass the 1 MiB document limit) is an error item; the run goes on', async () => {
    await writeItems(db, COL, generateItems(40, {seed: 20, malformedRate: 0}))
    const col = db.collection(COL)
    // The largest item the emulator stores: adding `normalized` pushes it over the limit.
    let lo = 1_040_000
    let hi = 1_048_576
    while (hi - lo > 8) {
      const mid = (lo + hi) >> 1
      const ok = await col
        .doc('0-huge-item')
        .set({name: 'x'.repeat(mid), style: ['Casual']})
        .then(
          () => true,
          () => false,
        )
      if (ok) lo = mid
      else hi = mid
    }
    await col.doc('0-huge-item').set({name: 'x'.repeat(lo), style: ['Casual']})
    const before = await snapshotCollection(db, COL, ['normalized'])

    const res = await startCli(['backfill', ...args, '--json'], {env: ENV, timeoutMs: 60_000}).done
    expect(res.signal).toBeNull()
    const stats = JSON.parse(res.stdout)
    expect({code: res.code, status: stats.status, error: stats.error}).toEqual({
      code: 3,
      status: 'completed',
      error: null,
    })
    expect(stats).toMatchObject({scanned: 41, updated: 40, failed: 1})
    expect(stats.errorSamples.map((e: {id: string}) => e.id)).toEqual(['0-huge-item'])
    expect(changedIds(before, await snapshotCollection(db, COL, ['normalized']))).toEqual([])
    const docs = await docsOf(db)
    expect(docs.get('0-huge-item')!.get('normalized')).toBeUndefined()
    docs.delete('0-huge-item')
    expect(inconsistent(docs)).toEqual([])
  })

  it('a concurrent writer: no app write is lost and normalized never reflects a vanished version (unless the app wrote last); the next run fixes those', async () => {
    const N = 10_000
    await writeItems(db, COL, generateItems(N, {seed: 16, malformedRate: 0}))
    const ids = [...(await db.collection(COL).select().get()).docs.map((d) => d.id)]
    const choices = {
      style: [['Casual'], ['Street wear', 'BOHO'], 'Formal, Business', ['minimal'], ['Cyberpunk'], null],
      season: ['Fall', ['Autumn', 'Winter'], 'Summer, Spring', null, ['all season']],
      mood: [['Relaxed'], 'Cool', ['cozy', 'Calm']],
      occasion: ['Weekend', ['Work', 'Date night'], null],
    } as const
    let seed = 99
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
    const lastWrite = new Map<string, {fields: Record<string, unknown>; time: Timestamp}>()
    const busy = new Set<string>()
    let stop = false
    let appWrites = 0

    const child = startCli(['backfill', ...args, '--max-rate', '2000', '--json'], {env: ENV})
    let finished = false
    child.done.then(() => (finished = true))
    // Start writing once the run is registered, so the writes interleave with the backfill's.
    await waitFor(async () => finished || (await db.collection('_backfill_runs').limit(1).get()).size > 0, 30_000, 50)

    const worker = async () => {
      while (!stop) {
        const id = pick(ids)
        if (busy.has(id)) continue
        busy.add(id)
        const fields: Record<string, unknown> = {}
        for (const f of NORMALIZED_FIELDS) if (rnd() < 0.5) fields[f] = pick(choices[f] as readonly unknown[])
        if (Object.keys(fields).length === 0) fields.style = pick(choices.style as readonly unknown[])
        const res = await db.collection(COL).doc(id).update(fields)
        appWrites++
        lastWrite.set(id, {fields: {...lastWrite.get(id)?.fields, ...fields}, time: res.writeTime})
        busy.delete(id)
      }
    }
    const workers = Array.from({length: 6}, worker)
    const result = await child.done
    stop = true
    await Promise.all(workers)

    expect(result.code).toBe(0)
    const stats = JSON.parse(result.stdout)
    expect(stats).toMatchObject({status: 'completed', scanned: N, failed: 0})
    console.log(
      `concurrent writer: ${appWrites} app writes during the run; backfill saw ${stats.conflicts} conflicts, updated ${stats.updated}, skipped ${stats.skipped}, ${stats.durationSeconds}s`,
    )
    expect(appWrites).toBeGreaterThan(100)
    expect(stats.conflicts).toBeGreaterThan(0) // the guarded-write path was exercised

    const docs = await docsOf(db)
    const lost: string[] = []
    const stale: string[] = []
    const staleAfterApp: string[] = []
    for (const [id, doc] of docs) {
      const lw = lastWrite.get(id)
      if (lw)
        for (const [f, v] of Object.entries(lw.fields))
          if (JSON.stringify(doc.get(f)) !== JSON.stringify(v)) lost.push(`${id}.${f}`)
      if (!inconsistent(new Map([[id, doc]])).length) continue
      // Stale is acceptable only when the app's write is the document's last write.
      if (lw && doc.updateTime!.isEqual(lw.time)) staleAfterApp.push(id)
      else stale.push(id)
    }
    expect(lost).toEqual([])
    expect(stale).toEqual([])

    // The next run brings every item up to date, rewriting exactly those.
    const again = await backfill(['--json'])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({
      updated: staleAfterApp.length,
      skipped: N - staleAfterApp.length,
      failed: 0,
    })
    expect(inconsistent(await docsOf(db))).toEqual([])
  })
})
