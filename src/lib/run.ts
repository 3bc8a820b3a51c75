import {DocumentSnapshot, Firestore, Query} from 'firebase-admin/firestore'
import type {Logger} from 'winston'
import type {Settings} from './config'
import {errorMessage} from './errors'
import {JobProgress, JobResult, Plan, runJob} from './job'
import {Acquired, Ledger, RunKind, RunRecord} from './ledger'
import {withDeadline, withRetry} from './scan'
import {GuardedWriter} from './writer'

/** How long the final ledger write may take: during an outage it would otherwise wait on the client's own retries. */
const FINISH_DEADLINE_MS = 15_000

/** What a writing run needs from its caller: the database, the target, and where to report. */
export interface RunContext {
  db: Firestore
  /** The target is an emulator: unthrottled writes. */
  emulator: boolean
  settings: Pick<Settings, 'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'> & Partial<Pick<Settings, 'outageAfterMs'>>
  logger?: Logger
  signal?: AbortSignal
  onProgress?: (p: JobProgress) => void
  /** Called once the run is known: new, resumed, or taken over from a dead holder. */
  onStart?: (info: {runId: string | null; resumed: boolean; cursor: string | null; total: number | null; tookOverFrom?: Acquired['tookOverFrom']}) => void
  /** Tuning for tests and benchmarks; defaults suit production. */
  chunkSize?: number
  checkpointIntervalMs?: number
}

export interface RunSpec {
  kind: RunKind
  version: string | null
  /** Runs of the same command share it; an unfinished one with the same key is resumed. */
  resumeKey: string
  options: Record<string, unknown>
  select: string[]
  filter?: (q: Query) => Query
  /** The plan may depend on the run id (null in a dry run). */
  plan: (doc: DocumentSnapshot, runId: string | null) => Plan
  dryRun: boolean
  fromStart: boolean
  batchSize: number
  maxRate?: number
}

export interface RunOutcome {
  result: JobResult
  runId: string | null
  resumed: boolean
  total: number
  /** Items this process scanned (a resumed run starts from its checkpoint's count). */
  scannedHere: number
  startedAt: Date
  finishedAt: Date
}

/**
 * A tracked run: counts the scope, takes the collection's lock and the run to resume
 * (unless dry), runs the shared engine, and closes the run record with its checkpoint.
 */
export async function executeRun(ctx: RunContext, spec: RunSpec): Promise<RunOutcome> {
  const {db, settings, logger} = ctx
  const startedAt = new Date()
  const scope = (spec.filter ?? ((q: Query) => q))(db.collection(settings.collection))
  const total = (await withRetry(() => scope.count().get(), {signal: ctx.signal})).data().count
  logger?.info(`${spec.kind} starting`, {collection: settings.collection, total, version: spec.version, dryRun: spec.dryRun, ...spec.options})

  let run: RunRecord | undefined
  let ledger: Ledger | undefined
  let writer: GuardedWriter | undefined
  let resumed = false
  if (!spec.dryRun) {
    ledger = new Ledger(db, settings.ledgerCollection)
    const acquired = await ledger.acquire({
      kind: spec.kind,
      environment: settings.environment,
      projectId: settings.projectId,
      collection: settings.collection,
      version: spec.version,
      resumeKey: spec.resumeKey,
      options: spec.options,
      fromStart: spec.fromStart,
      staleAfterMs: settings.staleAfterMs,
      total,
    })
    run = acquired.run
    resumed = acquired.resumed
    if (acquired.tookOverFrom) logger?.warn('took over a stale run', acquired.tookOverFrom)
    ctx.onStart?.({runId: run.runId, resumed, cursor: run.cursor, total, tookOverFrom: acquired.tookOverFrom})
    writer = new GuardedWriter(db, {
      emulator: ctx.emulator,
      maxRate: spec.maxRate,
      maxInFlight: spec.batchSize,
      outageAfterMs: settings.outageAfterMs,
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
      select: spec.select,
      filter: spec.filter,
      plan: (doc) => spec.plan(doc, runId),
      dryRun: spec.dryRun,
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
    const end = {status: result.status, cursor: result.cursor, counters: result.counters, unmapped: result.unmapped, tags: result.tags, error: result.error}
    try {
      // Bounded: in an outage this write may hang or fail too. The record then keeps its last
      // checkpoint and says "running" with a heartbeat that goes stale; the next run takes it over.
      await withDeadline(ledger.finish(run.runId, settings.collection, end), FINISH_DEADLINE_MS, 'recording the end of the run')
    } catch (err) {
      if (result.status !== 'failed') throw err
      result.error = `${result.error}; the run record may still say "running" (${errorMessage(err)}): re-running the command takes it over once its process is gone or its heartbeat is stale, and resumes from its last checkpoint`
    }
  }
  for (const e of result.errorSamples) logger?.warn('error item', e)
  return {result, runId, resumed, total, scannedHere: result.counters.scanned - (run?.counters.scanned ?? 0), startedAt, finishedAt: new Date()}
}

/** The fields every run's stats share (reports.RunStatsBaseSchema). */
export function baseStats(ctx: RunContext, spec: Pick<RunSpec, 'dryRun' | 'version'>, outcome: RunOutcome) {
  const {result} = outcome
  const seconds = (outcome.finishedAt.getTime() - outcome.startedAt.getTime()) / 1000
  return {
    runId: outcome.runId,
    status: result.status,
    dryRun: spec.dryRun,
    environment: ctx.settings.environment,
    projectId: ctx.settings.projectId,
    collection: ctx.settings.collection,
    version: spec.version,
    startedAt: outcome.startedAt.toISOString(),
    finishedAt: outcome.finishedAt.toISOString(),
    durationSeconds: seconds,
    resumed: outcome.resumed,
    total: outcome.total,
    ...result.counters,
    scannedHere: outcome.scannedHere,
    rate: seconds > 0 ? Math.round(outcome.scannedHere / seconds) : 0,
    errorSamples: result.errorSamples,
    error: result.error ?? null,
    resumeCommand: null,
  }
}
