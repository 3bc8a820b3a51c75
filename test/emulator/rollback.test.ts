import fs from 'node:fs'
import path from 'node:path'
import {Firestore, GeoPoint, Timestamp} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {DEFAULT_TAXONOMY_FILE} from '../../src/domain/vocabulary'
import {
  canonical,
  devArgs,
  latestFile,
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

/** Messy generated items plus items whose `normalized` came from somewhere else before the tool. */
async function seed(db: Firestore, count: number): Promise<void> {
  await writeItems(db, COL, generateItems(count, {seed: 7, malformedRate: 0.02}))
  await db
    .collection(COL)
    .doc('legacy-app-normalized')
    .set({
      name: 'Legacy',
      style: ['Casual'],
      normalized: {
        style: ['CASUAL'],
        written_by: 'app',
        at: Timestamp.fromMillis(1_600_000_000_000),
        where: new GeoPoint(1, 2),
      },
    })
  await db.collection(COL).doc('legacy-string-normalized').set({name: 'Odd', season: 'Fall', normalized: 'not a map'})
}

function taxonomyWithVersion(dir: string, version: string): string {
  const file = path.join(dir, `taxonomy-${version}.json`)
  fs.writeFileSync(file, JSON.stringify({...JSON.parse(fs.readFileSync(DEFAULT_TAXONOMY_FILE, 'utf8')), version}))
  return file
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const ids = new Set([...a.keys(), ...b.keys()])
  return [...ids].filter((id) => a.get(id) !== b.get(id))
}

describe('wardrobe rollback', () => {
  let project: string
  let db: Firestore
  let out: string
  let args: string[]

  beforeEach(() => {
    project = uniqueProject('rollback')
    db = testDb(project)
    out = tmpDir()
    args = devArgs(project, out)
  })
  afterEach(async () => {
    await db.terminate()
  })

  it('backfill then rollback gives back the collection field for field, earlier normalized values included', async () => {
    await seed(db, 1500)
    const before = await snapshotCollection(db, COL)
    const v09 = taxonomyWithVersion(out, '0.9')

    const first = await runCli(['backfill', ...args, '--taxonomy', v09, '--json'])
    expect(first.code).toBe(3) // the generated malformed items
    const afterFirst = await snapshotCollection(db, COL)
    const second = await runCli(['backfill', ...args, '--json'])
    expect(second.code).toBe(3)
    const secondStats = JSON.parse(second.stdout)
    expect(secondStats.updated).toBe(JSON.parse(first.stdout).updated) // every item moved from 0.9 to 1.0

    // One step back: --run restores exactly what the 1.0 run replaced.
    const undoRun = await runCli(['rollback', ...args, '--run', secondStats.runId, '--json'])
    expect(undoRun.code).toBe(0)
    const undoStats = JSON.parse(undoRun.stdout)
    expect(undoStats.restored).toBe(secondStats.updated)
    expect(undoStats.removed).toBe(0)
    expect(diff(afterFirst, await snapshotCollection(db, COL))).toEqual([])

    // All the way back: the pre-tool values of the legacy items return, the rest lose `normalized`.
    const again = await runCli(['backfill', ...args, '--json'])
    expect(again.code).toBe(3)
    const all = await runCli(['rollback', ...args, '--json'])
    expect(all.code).toBe(0)
    const allStats = JSON.parse(all.stdout)
    expect(allStats.restored).toBe(2)
    expect(allStats.removed).toBe(JSON.parse(again.stdout).updated - 2)
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
    expect(readJson(latestFile(out, 'rollback_stats_'))).toEqual(allStats)

    // A second rollback finds nothing of the tool's left.
    const idle = JSON.parse((await runCli(['rollback', ...args, '--json'])).stdout)
    expect(idle).toMatchObject({updated: 0, removed: 0, restored: 0, status: 'completed'})
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
  })

  it('--version touches only items at that version', async () => {
    await seed(db, 300)
    const v09 = taxonomyWithVersion(out, '0.9')
    expect((await runCli(['backfill', ...args, '--taxonomy', v09])).code).toBe(3)
    const at09 = await snapshotCollection(db, COL)
    // Items at 1.0 after this: the whole collection. Rolling back 0.9 must not touch any of them.
    expect((await runCli(['backfill', ...args])).code).toBe(3)
    const at10 = await snapshotCollection(db, COL)
    const none = JSON.parse((await runCli(['rollback', ...args, '--version', '0.9', '--json'])).stdout)
    expect(none).toMatchObject({total: 0, updated: 0})
    expect(diff(at10, await snapshotCollection(db, COL))).toEqual([])
    const undo = JSON.parse((await runCli(['rollback', ...args, '--version', '1.0', '--json'])).stdout)
    expect(undo.restored).toBeGreaterThan(0)
    expect(diff(at09, await snapshotCollection(db, COL))).toEqual([])
  })

  it("another pipeline's normalized (a run_id the ledger does not know) is never changed: not by a plain rollback, not by backfills then a full rollback", async () => {
    await writeItems(db, COL, generateItems(40, {seed: 11, malformedRate: 0}))
    const foreign = {
      // Another pipeline's run id, and one in this tool's format from a ledger this collection's is not.
      'nightly-item': {
        style: ['casual'],
        source: 'old-pipeline',
        run_id: 'nightly-2024-01-15',
        at: Timestamp.fromMillis(1_600_000_000_000),
        where: new GeoPoint(1, 2),
      },
      'lookalike-item': {
        style: ['formal'],
        normalized_version: '1.0',
        run_id: 'backfill-20240115T000000-abcdef',
        previous: {style: ['Formal'], run_id: 'nightly-2024-01-14'},
      },
    }
    for (const [id, normalized] of Object.entries(foreign))
      await db
        .collection(COL)
        .doc(id)
        .set({name: id, style: ['Casual'], normalized})
    const before = await snapshotCollection(db, COL)

    // No backfill ever ran: nothing here is the tool's.
    const plain = await runCli(['rollback', ...args])
    expect(plain.code).toBe(0)
    expect(plain.stdout).toMatch(
      /0 items were left without normalized, 0 were given back their earlier normalized\.\n2 items hold a normalized this tool did not write/,
    )
    expect(readJson(latestFile(out, 'rollback_stats_'))).toMatchObject({
      removed: 0,
      restored: 0,
      foreign: 2,
      updated: 0,
    })
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])

    // Two backfills stack over the foreign values; a full rollback gives them back exactly.
    expect((await runCli(['backfill', ...args, '--taxonomy', taxonomyWithVersion(out, '0.9')])).code).toBe(0)
    expect((await runCli(['backfill', ...args])).code).toBe(0)
    const full = JSON.parse((await runCli(['rollback', ...args, '--json'])).stdout)
    expect(full).toMatchObject({status: 'completed', restored: 2, removed: 40, foreign: 0})
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
    // …and a rollback aimed at the other pipeline's run is bad input, not a silent no-op.
    const aimed = await runCli(['rollback', ...args, '--run', 'nightly-2024-01-15'])
    expect(aimed.code).toBe(2)
    expect(aimed.stderr).toMatch(/run nightly-2024-01-15 is not a backfill run of wardrobe_items in the ledger/)
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
  })

  it('re-running a completed `rollback --version 1.0` changes nothing, also with --from-start, when the value it restored is at 1.0 too', async () => {
    await writeItems(db, COL, generateItems(60, {seed: 12, malformedRate: 0}))
    const pristine = await snapshotCollection(db, COL)
    expect((await runCli(['backfill', ...args])).code).toBe(0)
    const first = await snapshotCollection(db, COL)
    expect((await runCli(['backfill', ...args, '--force'])).code).toBe(0)

    // One step for each item of each 1.0 run: back to the first backfill's values (also 1.0).
    const undo = JSON.parse((await runCli(['rollback', ...args, '--version', '1.0', '--json'])).stdout)
    expect(undo).toMatchObject({status: 'completed', restored: 60, removed: 0})
    expect(undo.scope.targets).toHaveLength(2)
    expect(diff(first, await snapshotCollection(db, COL))).toEqual([])
    expect(diff(pristine, first)).toHaveLength(60)

    for (const again of [[], ['--from-start']]) {
      const res = await runCli(['rollback', ...args, '--version', '1.0', ...again])
      expect(res.code).toBe(0)
      expect(res.stdout).toMatch(
        /Nothing to roll back: every backfill run in this scope was undone by a completed rollback already/,
      )
      expect(readJson(latestFile(out, 'rollback_stats_'))).toMatchObject({
        updated: 0,
        removed: 0,
        restored: 0,
        scope: {version: '1.0', targets: []},
      })
      expect(diff(first, await snapshotCollection(db, COL))).toEqual([])
    }
  })

  it('re-running a completed `rollback --run X` changes nothing, even where X wrote the item twice (a resumed run re-normalizing an item the app changed)', async () => {
    await writeItems(db, COL, generateItems(30, {seed: 13, malformedRate: 0}))
    const backfill = JSON.parse((await runCli(['backfill', ...args, '--json'])).stdout)
    // The same run's value over its own earlier one, as after a re-normalization on resume.
    const twice = db.collection(COL).doc((await db.collection(COL).limit(1).get()).docs[0].id)
    const earlier = (await twice.get()).get('normalized')
    await twice.update({normalized: {...earlier, style: ['rewritten'], previous: earlier}})
    const written = await snapshotCollection(db, COL)

    const undo = JSON.parse((await runCli(['rollback', ...args, '--run', backfill.runId, '--json'])).stdout)
    expect(undo).toMatchObject({
      status: 'completed',
      restored: 1,
      removed: 29,
      scope: {run: backfill.runId, targets: [backfill.runId]},
    })
    const once = await snapshotCollection(db, COL)
    expect(canonical((await twice.get()).get('normalized'))).toEqual(canonical(earlier))
    expect(diff(written, once)).toHaveLength(30)

    for (const again of [[], ['--from-start']]) {
      const res = JSON.parse((await runCli(['rollback', ...args, '--run', backfill.runId, '--json', ...again])).stdout)
      expect(res).toMatchObject({runId: null, status: 'completed', updated: 0, scope: {targets: []}})
      expect(diff(once, await snapshotCollection(db, COL))).toEqual([])
    }
  })

  it('dry run reports what would change and writes nothing anywhere', async () => {
    await seed(db, 500)
    expect((await runCli(['backfill', ...args])).code).toBe(3)
    const before = await snapshotCollection(db, COL)
    const runsBefore = (await db.collection('_backfill_runs').get()).size
    const dry = await runCli(['rollback', ...args, '--dry-run', '--json'])
    expect(dry.code).toBe(0)
    const stats = JSON.parse(dry.stdout)
    expect(stats).toMatchObject({dryRun: true, runId: null, restored: 2})
    expect(stats.removed).toBe(stats.updated - 2)
    expect(stats.removed).toBeGreaterThan(400)
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
    expect((await db.collection('_backfill_runs').get()).size).toBe(runsBefore)
  })

  it('an interrupted rollback exits 130 and the same command resumes it to the exact original state', async () => {
    await writeItems(db, COL, generateItems(6_000, {seed: 3, malformedRate: 0}))
    const before = await snapshotCollection(db, COL)
    expect((await runCli(['backfill', ...args])).code).toBe(0)

    const first = startCli(['rollback', ...args, '--max-rate', '800'])
    let runId = ''
    await waitFor(async () => {
      const runs = await db.collection('_backfill_runs').where('kind', '==', 'rollback').get()
      const run = runs.docs[0]?.data()
      runId = runs.docs[0]?.id ?? ''
      return Boolean(run?.cursor)
    }, 60_000)
    first.child.kill('SIGINT')
    const stopped = await first.done
    expect(stopped.code).toBe(130)
    expect(stopped.stdout + stopped.stderr).toMatch(/Resume with: wardrobe rollback/)
    const record = (await db.collection('_backfill_runs').doc(runId).get()).data()!
    expect(record.status).toBe('interrupted')
    // Everything up to the checkpoint was rolled back and acknowledged.
    const upTo = await db
      .collection(COL)
      .where('__name__', '<=', db.collection(COL).doc(record.cursor))
      .select('normalized')
      .get()
    expect(upTo.docs.filter((d) => d.get('normalized') !== undefined)).toHaveLength(0)

    const resumed = await runCli(['rollback', ...args, '--json'])
    expect(resumed.code).toBe(0)
    const stats = JSON.parse(resumed.stdout)
    expect(stats).toMatchObject({runId, resumed: true, status: 'completed', scanned: 6_000})
    expect(stats.scannedHere).toBeLessThan(6_000)
    expect(diff(before, await snapshotCollection(db, COL))).toEqual([])
  })
})
