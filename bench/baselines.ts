/**
 * The three ways to add `normalized` that the benchmark compares, each on its own freshly
 * loaded collection: (a) the write ceiling, (b) a naive script, (c) wardrobe's service layer.
 */
import fs from 'node:fs'
import path from 'node:path'
import {DocumentData, FieldPath, Firestore, UpdateData} from 'firebase-admin/firestore'
import {planBackfill} from '../src/services/backfill'
import type {runBackfill} from '../src/services/backfill'
import type {collectMonitorReport} from '../src/services/monitor'
import type {RunContext} from '../src/engine/run-context'
import {SeedItem, writeItems} from '../src/dev/seed-data'
import type {Vocabulary} from '../src/domain/vocabulary'
import type {Sharding} from '../src/engine/run-context'
import {CpuMeter, CpuUse, processCpuSeconds, ROOT, timed} from './measure'

/** The service layer of a checkout as built (dist/): the JavaScript the CLI runs. */
export interface Engine {
  runBackfill: typeof runBackfill
  collectMonitorReport: typeof collectMonitorReport
}

/**
 * Loads dist/ of a checkout (this one by default). The service layer is measured as shipped,
 * not through tsx: tsx compiles with esbuild's keepNames, which wraps every named closure
 * the engine creates per item in a defineProperty call. A checkout from before the library
 * entry point (dist/index.js) has its services flat in dist/lib/.
 */
export function loadEngine(checkout = ROOT): Engine {
  const dist = path.join(checkout, 'dist')
  /* eslint-disable @typescript-eslint/no-require-imports */
  if (fs.existsSync(path.join(dist, 'index.js'))) return require(path.join(dist, 'index.js')) as Engine
  const lib = path.join(dist, 'lib')
  return {
    runBackfill: (require(path.join(lib, 'backfill')) as {runBackfill: typeof runBackfill}).runBackfill,
    collectMonitorReport: (require(path.join(lib, 'monitor')) as {collectMonitorReport: typeof collectMonitorReport})
      .collectMonitorReport,
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}

export const COLLECTION = 'wardrobe_items'
export const LEDGER = '_backfill_runs'

export interface Measured {
  items: number
  seconds: number
  rate: number
  cpu: CpuUse | null
}

const measured = (items: number, seconds: number, cpu: CpuUse | null): Measured => ({
  items,
  seconds,
  rate: items / seconds,
  cpu,
})

/** Runs `fn` timed, and CPU-metered when a meter is given. */
async function metered<T>(
  meter: CpuMeter | undefined,
  fn: () => Promise<T>,
): Promise<{value: T; seconds: number; cpu: CpuUse | null}> {
  meter?.begin()
  const {value, seconds} = await timed(fn)
  return {value, seconds, cpu: meter ? meter.end() : null}
}

export async function load(db: Firestore, items: Iterable<SeedItem>): Promise<number> {
  return writeItems(db, COLLECTION, items)
}

/**
 * Waits (up to `maxMs`) until the emulator's JVM has been nearly idle for a moment: after a load
 * it keeps collecting garbage for a while, which would otherwise land on whichever measurement
 * comes first. Returns the seconds waited.
 */
export async function settle(emulatorPid: number | null, maxMs = 8000): Promise<number> {
  const start = Date.now()
  if (emulatorPid === null) return 0
  for (;;) {
    const before = processCpuSeconds(emulatorPid)
    await new Promise((r) => setTimeout(r, 250))
    const after = processCpuSeconds(emulatorPid)
    if (before === null || after === null || after - before < 0.04 || Date.now() - start > maxMs)
      return (Date.now() - start) / 1000
  }
}

/**
 * Writes the ceiling keeps queued at once. BulkWriter sends at most 500 at a time and keeps the
 * rest in an array it shifts from, which costs O(queued) per write: queueing all 50,000 writes up
 * front made the ceiling slower, not faster. 2,000 keeps BulkWriter's 500 busy with room to spare.
 */
export const CEILING_WINDOW = 2000

/**
 * (a) The write ceiling: BulkWriter updates of `normalized` with no reads, unthrottled. The
 * values are what the backfill would write for each item, computed before the clock starts.
 */
export async function ceiling(
  db: Firestore,
  items: Iterable<SeedItem>,
  vocabulary: Vocabulary,
  meter?: CpuMeter,
  window = CEILING_WINDOW,
): Promise<Measured> {
  const col = db.collection(COLLECTION)
  const updates: {id: string; data: UpdateData<DocumentData>}[] = []
  for (const item of items) {
    const plan = planBackfill(item.data, vocabulary, {force: true, runId: 'bench-ceiling'})
    if (plan.action === 'write') updates.push({id: item.id, data: plan.data})
  }
  const {seconds, cpu} = await metered(meter, async () => {
    const bulk = db.bulkWriter({throttling: false})
    let failure: unknown = null
    let outstanding = 0
    let wake: (() => void) | null = null
    const settled = () => {
      outstanding--
      if (wake && outstanding < window) {
        const w = wake
        wake = null
        w()
      }
    }
    const failed = (err: unknown) => {
      failure ??= err
      settled()
    }
    for (const u of updates) {
      if (outstanding >= window) await new Promise<void>((r) => (wake = r))
      outstanding++
      bulk.update(col.doc(u.id), u.data).then(settled, failed)
    }
    await bulk.close()
    if (failure) throw failure
  })
  return measured(updates.length, seconds, cpu)
}

/**
 * (b) What a plain script does: cursor pages of 500 by document id, one WriteBatch commit
 * per page, in sequence; whole documents, no preconditions.
 */
export async function naive(
  db: Firestore,
  vocabulary: Vocabulary,
  meter?: CpuMeter,
  pageSize = 500,
): Promise<Measured> {
  const col = db.collection(COLLECTION)
  let scanned = 0
  const {seconds, cpu} = await metered(meter, async () => {
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
  return measured(scanned, seconds, cpu)
}

export interface ServiceRun extends Measured {
  updated: number
  failed: number
  /** Seconds from the call to the run being started (lock taken), and to the first item settled. */
  phases: {started: number | null; firstSettled: number | null}
}

/**
 * (c) wardrobe backfill through its service layer, as the CLI calls it (default --batch-size
 * 500; one worker unless `sharding`); with `dryRun`, the same scan and plans without a write
 * (what reading costs).
 */
export async function backfillService(
  db: Firestore,
  projectId: string,
  vocabulary: Vocabulary,
  engine: Engine,
  options: {meter?: CpuMeter; batchSize?: number; dryRun?: boolean; sharding?: Sharding; controlPollMs?: number} = {},
): Promise<ServiceRun> {
  const t0 = Date.now()
  let started: number | null = null
  let firstSettled: number | null = null
  const ctx: RunContext = {
    db,
    emulator: true,
    settings: {
      environment: 'development',
      projectId,
      collection: COLLECTION,
      ledgerCollection: LEDGER,
      staleAfterMs: 60_000,
    },
    sharding: options.sharding,
    controlPollMs: options.controlPollMs,
    onStart: () => (started = (Date.now() - t0) / 1000),
    onProgress: (p) => {
      if (firstSettled === null && p.counters.updated + p.counters.skipped + p.counters.failed > 0)
        firstSettled = (Date.now() - t0) / 1000
    },
  }
  const dryRun = options.dryRun ?? false
  const {
    value: stats,
    seconds,
    cpu,
  } = await metered(options.meter, () =>
    engine.runBackfill(ctx, {vocabulary, batchSize: options.batchSize ?? 500, dryRun, force: false, fromStart: false}),
  )
  if (stats.status !== 'completed') throw new Error(`backfill ${stats.status}: ${stats.error}`)
  if (!dryRun && stats.updated !== stats.scanned)
    throw new Error(`backfill updated ${stats.updated} of ${stats.scanned} items`)
  return {
    ...measured(stats.scanned, seconds, cpu),
    updated: stats.updated,
    failed: stats.failed,
    phases: {started, firstSettled},
  }
}

/** One monitor report through the service layer, in seconds. */
export async function monitorService(
  db: Firestore,
  projectId: string,
  vocabulary: Vocabulary,
  engine: Engine,
): Promise<{seconds: number; aggregations: number}> {
  const settings = {
    environment: 'development' as const,
    projectId,
    collection: COLLECTION,
    ledgerCollection: LEDGER,
    staleAfterMs: 60_000,
  }
  const {value, seconds} = await timed(() =>
    engine.collectMonitorReport(db, settings, {vocabularyVersion: vocabulary.version}),
  )
  return {seconds, aggregations: value.reads.aggregations}
}

/** The emulator's own cost of one aggregation: a bare count() of the whole collection, in seconds. */
export async function bareCount(db: Firestore): Promise<number> {
  const {seconds} = await timed(() => db.collection(COLLECTION).count().get())
  return seconds
}
