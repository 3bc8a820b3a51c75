/**
 * The three ways to add `normalized` that the benchmark compares, each on its own freshly
 * loaded collection: (a) the write ceiling, (b) a naive script, (c) wardrobe's service layer.
 */
import {DocumentData, FieldPath, Firestore, UpdateData} from 'firebase-admin/firestore'
import {planBackfill, runBackfill} from '../src/lib/backfill'
import {collectMonitorReport} from '../src/lib/monitor'
import type {RunContext} from '../src/lib/run'
import {SeedItem, writeItems} from '../src/lib/seed-data'
import type {Vocabulary} from '../src/lib/vocabulary'
import type {Sharding} from '../src/lib/workers'
import {timed} from './measure'

export const COLLECTION = 'wardrobe_items'
export const LEDGER = '_backfill_runs'

export interface Measured {
  items: number
  seconds: number
  rate: number
}

const measured = (items: number, seconds: number): Measured => ({items, seconds, rate: items / seconds})

export async function load(db: Firestore, items: Iterable<SeedItem>): Promise<number> {
  return writeItems(db, COLLECTION, items)
}

/**
 * (a) The write ceiling: BulkWriter updates of `normalized` with no reads, unthrottled. The
 * values are what the backfill would write for each item, computed before the clock starts.
 */
export async function ceiling(db: Firestore, items: Iterable<SeedItem>, vocabulary: Vocabulary): Promise<Measured> {
  const col = db.collection(COLLECTION)
  const updates: {id: string; data: UpdateData<DocumentData>}[] = []
  for (const item of items) {
    const plan = planBackfill(item.data, vocabulary, {force: true, runId: 'bench-ceiling'})
    if (plan.action === 'write') updates.push({id: item.id, data: plan.data})
  }
  const {seconds} = await timed(async () => {
    const bulk = db.bulkWriter({throttling: false})
    let failure: unknown = null
    for (const u of updates) bulk.update(col.doc(u.id), u.data).catch((err) => (failure ??= err))
    await bulk.close()
    if (failure) throw failure
  })
  return measured(updates.length, seconds)
}

/**
 * (b) What a plain script does: cursor pages of 500 by document id, one WriteBatch commit
 * per page, in sequence; whole documents, no preconditions.
 */
export async function naive(db: Firestore, vocabulary: Vocabulary, pageSize = 500): Promise<Measured> {
  const col = db.collection(COLLECTION)
  let scanned = 0
  const {seconds} = await timed(async () => {
    let last: FirebaseFirestore.QueryDocumentSnapshot | null = null
    for (;;) {
      let q = col.orderBy(FieldPath.documentId()).limit(pageSize)
      if (last) q = q.startAfter(last)
      const page = await q.get()
      if (page.empty) break
      const batch = db.batch()
      for (const doc of page.docs) {
        const plan = planBackfill(doc.data(), vocabulary, {force: false, runId: 'bench-naive'})
        if (plan.action === 'write') batch.update(doc.ref, plan.data)
      }
      await batch.commit()
      scanned += page.size
      last = page.docs[page.size - 1]
      if (page.size < pageSize) break
    }
  })
  return measured(scanned, seconds)
}

export interface ServiceRun extends Measured {
  updated: number
  failed: number
  /** Seconds from the call to the run being started (count and lock), and to the first item settled. */
  phases: {started: number | null; firstSettled: number | null}
}

/** (c) wardrobe backfill through its service layer, as the CLI calls it (default --batch-size 500; one worker unless `sharding`). */
export async function backfillService(db: Firestore, projectId: string, vocabulary: Vocabulary, batchSize = 500, sharding?: Sharding): Promise<ServiceRun> {
  const t0 = Date.now()
  let started: number | null = null
  let firstSettled: number | null = null
  const ctx: RunContext = {
    db,
    emulator: true,
    settings: {environment: 'development', projectId, collection: COLLECTION, ledgerCollection: LEDGER, staleAfterMs: 60_000},
    sharding,
    onStart: () => (started = (Date.now() - t0) / 1000),
    onProgress: (p) => {
      if (firstSettled === null && p.counters.updated + p.counters.skipped + p.counters.failed > 0) firstSettled = (Date.now() - t0) / 1000
    },
  }
  const {value: stats, seconds} = await timed(() => runBackfill(ctx, {vocabulary, batchSize, dryRun: false, force: false, fromStart: false}))
  if (stats.status !== 'completed') throw new Error(`backfill ${stats.status}: ${stats.error}`)
  return {...measured(stats.scanned, seconds), updated: stats.updated, failed: stats.failed, phases: {started, firstSettled}}
}

/** One monitor report through the service layer, in seconds. */
export async function monitorService(db: Firestore, projectId: string, vocabulary: Vocabulary): Promise<number> {
  const settings = {environment: 'development' as const, projectId, collection: COLLECTION, ledgerCollection: LEDGER, staleAfterMs: 60_000}
  const {seconds} = await timed(() => collectMonitorReport(db, settings, {vocabularyVersion: vocabulary.version}))
  return seconds
}
