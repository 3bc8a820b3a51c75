import {DocumentData, Firestore, Timestamp} from 'firebase-admin/firestore'
import type {Logger} from 'winston'
import type {Settings} from './config'
import {JobProgress, JobResult, Plan, runJob} from './job'
import {Acquired, Ledger, RunRecord} from './ledger'
import {normalizeItem} from './normalization'
import {BackfillStats, BackfillStatsSchema, unmappedEntries} from './reports'
import {withRetry} from './scan'
import {NORMALIZED_FIELDS, Vocabulary} from './vocabulary'
import {estimateWriteSeconds, GuardedWriter} from './writer'

/** What the backfill reads of each item: the originals it normalizes and the current `normalized`. */
export const BACKFILL_FIELDS = [...NORMALIZED_FIELDS, 'normalized']

export interface RunContext {
  db: Firestore
  /** The target is an emulator: unthrottled writes. */
  emulator: boolean
  settings: Pick<Settings, 'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'>
  logger?: Logger
  signal?: AbortSignal
  onProgress?: (p: JobProgress) => void
  /** Called once the run is known: new, resumed, or taken over from a dead holder. */
  onStart?: (info: {runId: string | null; resumed: boolean; cursor: string | null; total: number | null; tookOverFrom?: Acquired['tookOverFrom']}) => void
  /** Tuning for tests and benchmarks; defaults suit production. */
  chunkSize?: number
  checkpointIntervalMs?: number
}

export interface BackfillOptions {
  vocabulary: Vocabulary
  batchSize: number
  dryRun: boolean
  force: boolean
  fromStart: boolean
  maxRate?: number
}

type NormalizedMap = {normalized_version?: unknown; source_hash?: unknown; run_id?: unknown}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Timestamp)

/** Decides one item: error item, already current, or the new `normalized` (keeping the one it replaces, for rollback). */
export function planBackfill(data: DocumentData, vocabulary: Vocabulary, options: {force: boolean; runId: string | null}): Plan {
  const outcome = normalizeItem(data, vocabulary)
  if (!outcome.ok) return {action: 'error', field: outcome.field, reason: outcome.reason}
  const unmapped = outcome.unmapped.map((u) => `${u.field}:${u.value}`)
  const existing: unknown = data.normalized
  const current = isMap(existing) ? (existing as NormalizedMap) : undefined
  // Written by this very run before an interruption: done, even under --force.
  if (options.runId && current?.run_id === options.runId) return {action: 'skip', unmapped}
  if (!options.force && current?.normalized_version === vocabulary.version && current.source_hash === outcome.sourceHash) return {action: 'skip', unmapped}
  const normalized: DocumentData = {
    ...outcome.values,
    normalized_at: Timestamp.now(),
    normalized_version: vocabulary.version,
    source_hash: outcome.sourceHash,
    run_id: options.runId,
  }
  if (existing !== undefined) normalized.previous = existing
  return {action: 'write', data: {normalized}, unmapped}
}

export function backfillResumeKey(options: Pick<BackfillOptions, 'force' | 'vocabulary'>): string {
  return `backfill|version=${options.vocabulary.version}|force=${options.force}`
}

/** `wardrobe backfill`: normalizes every item of the collection, resumably, or reports what it would do. */
export async function runBackfill(ctx: RunContext, options: BackfillOptions): Promise<BackfillStats> {
  const {db, settings, logger} = ctx
  const startedAt = new Date()
  const collection = db.collection(settings.collection)
  const total = (await withRetry(() => collection.count().get(), {signal: ctx.signal})).data().count
  const version = options.vocabulary.version
  logger?.info('backfill starting', {collection: settings.collection, total, version, dryRun: options.dryRun, force: options.force, batchSize: options.batchSize})

  let run: RunRecord | undefined
  let ledger: Ledger | undefined
  let writer: GuardedWriter | undefined
  let resumed = false
  if (!options.dryRun) {
    ledger = new Ledger(db, settings.ledgerCollection)
    const acquired = await ledger.acquire({
      kind: 'backfill',
      environment: settings.environment,
      projectId: settings.projectId,
      collection: settings.collection,
      version,
      resumeKey: backfillResumeKey(options),
      options: {batchSize: options.batchSize, force: options.force, maxRate: options.maxRate ?? null},
      fromStart: options.fromStart,
      staleAfterMs: settings.staleAfterMs,
      total,
    })
    run = acquired.run
    resumed = acquired.resumed
    if (acquired.tookOverFrom) logger?.warn('took over a stale run', acquired.tookOverFrom)
    ctx.onStart?.({runId: run.runId, resumed, cursor: run.cursor, total, tookOverFrom: acquired.tookOverFrom})
    writer = new GuardedWriter(db, {
      emulator: ctx.emulator,
      maxRate: options.maxRate,
      maxInFlight: options.batchSize,
      onRetry: (err) => logger?.warn('write retry', {code: err.code, attempts: err.failedAttempts, id: err.documentRef.id}),
    })
  } else {
    ctx.onStart?.({runId: null, resumed: false, cursor: null, total})
  }

  const runId = run?.runId ?? null
  let result: JobResult
  try {
    result = await runJob({
      db,
      collection: settings.collection,
      select: BACKFILL_FIELDS,
      plan: (doc) => planBackfill(doc.data() ?? {}, options.vocabulary, {force: options.force, runId}),
      dryRun: options.dryRun,
      run,
      ledger,
      writer,
      total,
      chunkSize: ctx.chunkSize,
      checkpointIntervalMs: ctx.checkpointIntervalMs,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
      onEvent: (event, detail) => logger?.debug(event, detail),
    })
  } finally {
    await writer?.close().catch(() => {})
  }
  if (run && ledger) {
    await ledger.finish(run.runId, settings.collection, {status: result.status, cursor: result.cursor, counters: result.counters, unmapped: result.unmapped, tags: result.tags, error: result.error})
  }
  for (const e of result.errorSamples) logger?.warn('error item', e)
  const finishedAt = new Date()
  const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000
  const stats: BackfillStats = {
    kind: 'backfill',
    runId,
    status: result.status,
    dryRun: options.dryRun,
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    version,
    force: options.force,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: seconds,
    resumed,
    total,
    ...result.counters,
    rate: seconds > 0 ? Math.round((result.counters.scanned - (run?.counters.scanned ?? 0)) / seconds) : 0,
    unmapped: unmappedEntries(result.unmapped),
    unmappedDistinct: Object.keys(result.unmapped).length,
    errorSamples: result.errorSamples,
    error: result.error ?? null,
    resumeCommand: null,
    estimate: options.dryRun ? estimate(result, total, ctx.emulator, options.maxRate) : null,
  }
  logger?.info('backfill finished', {...stats, errorSamples: undefined, unmapped: undefined})
  return BackfillStatsSchema.parse(stats)
}

/** What the real run would cost: reads of every item and the count, writes of updates and error records. */
function estimate(result: JobResult, total: number, emulator: boolean, maxRate?: number): BackfillStats['estimate'] {
  const writes = result.counters.updated + result.counters.failed
  const reads = result.counters.scanned + Math.max(1, Math.ceil(total / 1000))
  return {
    reads,
    writes,
    seconds: Math.round(estimateWriteSeconds(writes, {emulator, maxRate}) * 10) / 10,
    rateAssumption: emulator
      ? `emulator, unthrottled${maxRate ? `, capped at ${maxRate}/s` : ''}`
      : `500/50/5 ramp from 500 ops/s${maxRate ? `, capped at ${maxRate}/s` : ' up to 10,000 ops/s'}`,
  }
}
