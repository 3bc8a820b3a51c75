import {DocumentSnapshot, Query} from 'firebase-admin/firestore'
import {describeLimit, Limit} from './control'
import {errorMessage, UsageError} from '../errors'
import {RunGovernor} from './governor'
import {JobProgress, JobResult, Plan, runJob} from './job'
import {Fence, LeaseLostError} from './lease'
import {FINISH_DEADLINE_MS, Ledger, RunKind} from './ledger'
import {planPartitions} from './partitions'
import {withDeadline, withRetry} from '../firestore/retry'
import {describeTarget, itemsQuery, targetOf} from '../firestore/target'
import {runSharded, shardingRequested} from './workers'
import type {AppliedPlan, RunContext} from './run-context'
import {planScoped} from './run-identity'
import {GuardedWriter, Pacer} from './writer'

export interface RunSpec {
  kind: RunKind
  version: string | null
  /** Runs of the same command share it (run-identity's resumeKey); an unfinished one with the same key is resumed. */
  resumeKey: string
  options: Record<string, unknown>
  select: string[]
  filter?: (q: Query) => Query
  /** The plan may depend on the run id (null in a dry run). */
  plan: (doc: DocumentSnapshot, runId: string | null) => Plan
  dryRun: boolean
  fromStart: boolean
  batchSize: number
  /** A rollback: the backfill runs it undoes (null: all); unfinished ones are then never resumed from their checkpoints. */
  undoes?: {runIds: string[] | null}
}

export interface RunOutcome {
  result: JobResult
  runId: string | null
  resumed: boolean
  total: number
  /** Items this process scanned (a resumed run starts from its checkpoint's count). */
  scannedHere: number
  /** Partitions of a sharded run; 0 for one worker. */
  partitions: number
  startedAt: Date
  finishedAt: Date
  /** What limited this process's writes as it ended (a tracked run). */
  limit?: Limit
  writeRetries: number
  /** Why the run stopped at its plan's drift limit (one line naming the counts). */
  planDrift?: string
}

/**
 * A tracked run: counts the scope, takes the collection's lock and the run to resume
 * (unless dry), runs the shared engine (over partitions when sharded), and closes the run
 * record with its checkpoint.
 */
export async function executeRun(ctx: RunContext, spec: RunSpec): Promise<RunOutcome> {
  const {db, settings, logger} = ctx
  // Each process would count only its own writes against the limit: a plan's guard is not run-wide when sharded.
  if (ctx.plan && shardingRequested(ctx.sharding))
    throw new UsageError(
      '--plan runs with one worker: its drift limit counts the writes of one process',
      'drop --workers/--partitions/--join/--shard-* (and $CLOUD_RUN_TASK_COUNT / $WARDROBE_SHARD_COUNT)',
    )
  const target = targetOf(settings)
  const startedAt = new Date()
  const scope = (spec.filter ?? ((q: Query) => q))(itemsQuery(db, target))
  // Bounded by the outage budget: Firestore unreachable at the start ends the command, not minutes later.
  const total = (
    await withRetry(() => scope.count().get(), {signal: ctx.signal, budgetMs: settings.outageAfterMs})
  ).data().count
  logger?.info(`${spec.kind} starting`, {
    target: describeTarget(target),
    total,
    version: spec.version,
    dryRun: spec.dryRun,
    ...spec.options,
  })
  const plan = (runId: string | null) => (doc: DocumentSnapshot) => spec.plan(doc, runId)
  let planDrift: string | undefined
  const admitWrite = ctx.plan && driftGuard(ctx.plan, (reason) => (planDrift = reason))
  const job = {
    db,
    target,
    select: spec.select,
    filter: spec.filter,
    dryRun: spec.dryRun,
    total,
    chunkSize: ctx.chunkSize,
    checkpointIntervalMs: ctx.checkpointIntervalMs,
    signal: ctx.signal,
    admitWrite,
    onEvent: (event: string, detail: Record<string, unknown>) => logger?.debug(event, detail),
  }
  // Writes retried in this process (each also a `write retry` log line): backoff under pushback shows in the stats.
  let writeRetries = 0
  const finished = (result: JobResult, runId: string | null, resumed: boolean, base: number): RunOutcome => {
    for (const e of result.errorSamples) logger?.warn('error item', e)
    return {
      result,
      runId,
      resumed,
      total,
      scannedHere: result.counters.scanned - base,
      partitions: 0,
      startedAt,
      finishedAt: new Date(),
      writeRetries,
      planDrift,
    }
  }

  if (spec.dryRun) {
    ctx.onStart?.({runId: null, resumed: false, cursor: null, total})
    return finished(await runJob({...job, plan: plan(null), onProgress: ctx.onProgress}), null, false, 0)
  }

  const ledger = new Ledger(db, settings.ledgerCollection)
  const sharded = shardingRequested(ctx.sharding)
  const request = {
    kind: spec.kind,
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    group: target.group,
    version: spec.version,
    resumeKey: planScoped(spec.resumeKey, ctx.plan?.hash),
    planHash: ctx.plan?.hash,
    options: spec.options,
    fromStart: spec.fromStart,
    staleAfterMs: settings.staleAfterMs,
    total,
    join: ctx.sharding?.join,
    undoes: spec.undoes,
    control: {
      maxRate: settings.maxRate,
      targetLatencyMs: settings.targetLatencyMs,
      windows: settings.windows,
      timezone: settings.timezone,
    },
    command: ctx.command,
  }
  let acquired = await ledger.acquire({...request, sharded, workers: ctx.sharding?.workers})
  if (!acquired) {
    const split = await planPartitions(db, target, {
      count: ctx.sharding!.partitions ?? 4 * ctx.sharding!.workers * ctx.sharding!.shardCount,
      total,
      filter: spec.filter,
      signal: ctx.signal,
    })
    logger?.info('partitions planned', {count: split.ranges.length, method: split.method})
    // Another worker may have created the run meanwhile: then this one joins it.
    acquired = (await ledger.acquire({...request, sharded, workers: ctx.sharding?.workers, partitions: split.ranges}))!
  }
  const {run} = acquired
  if (acquired.tookOverFrom) logger?.warn('took over a stale run', acquired.tookOverFrom)
  const workers = run.partitions > 0 ? (ctx.sharding?.workers ?? 1) : 1
  // The run's live control and pace: this process's share of the run-wide limit, one pace for all its workers.
  const governor = new RunGovernor({
    ledger,
    run,
    emulator: ctx.emulator,
    workers,
    staleAfterMs: settings.staleAfterMs,
    pollMs: ctx.controlPollMs,
    logger,
    onChange: ctx.onControl,
  })
  governor.start()
  // `wardrobe runs stop` does what Ctrl-C does.
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, governor.stopSignal]) : governor.stopSignal
  const onProgress =
    ctx.onProgress &&
    ((p: JobProgress) => {
      const limit = governor.limit()
      ctx.onProgress!({...p, limit, limitText: describeLimit(limit)})
    })
  const governedJob = {...job, signal, control: governor}
  const pacer = new Pacer(() => governor.paceRate())
  const writerFor = (fence: Fence) =>
    new GuardedWriter(db, {
      emulator: ctx.emulator,
      pacer,
      maxInFlight: spec.batchSize,
      outageAfterMs: settings.outageAfterMs,
      fence,
      onRetry: (retry) => {
        writeRetries++
        logger?.warn('write retry', retry)
      },
      onAnswer: (accepted, ms) => governor.answered(accepted, ms),
    })
  const controlNote =
    acquired.joined && settings.maxRate !== undefined && settings.maxRate !== run.control.maxRate
      ? `run ${run.runId} keeps its run-wide limit (${run.control.maxRate === null ? 'none' : `${run.control.maxRate}/s`}); --max-rate ${settings.maxRate} is not applied (change it with \`wardrobe runs throttle\`)`
      : undefined
  const governed = (outcome: RunOutcome): RunOutcome => ({...outcome, limit: governor.limit()})
  try {
    if (run.partitions > 0) {
      ctx.onStart?.({
        runId: run.runId,
        resumed: acquired.resumed,
        joined: acquired.joined,
        cursor: null,
        total: run.total ?? total,
        partitions: run.partitions,
        workers,
        tookOverFrom: acquired.tookOverFrom,
        controlNote,
      })
      const outcome = await runSharded({
        ctx: {...ctx, signal, onProgress},
        ledger,
        run,
        job: {...governedJob, total: run.total ?? total, plan: plan(run.runId)},
        writerFor,
        sharding: ctx.sharding,
        control: governor,
      })
      return governed({
        ...finished(outcome.result, run.runId, acquired.resumed, 0),
        scannedHere: outcome.scannedHere,
        total: run.total ?? total,
        partitions: run.partitions,
      })
    }
    ctx.onStart?.({
      runId: run.runId,
      resumed: acquired.resumed,
      cursor: run.cursor,
      total,
      tookOverFrom: acquired.tookOverFrom,
      shardingNote: sharded
        ? `run ${run.runId} was started with one worker; it resumes with one (--from-start starts a sharded run over)`
        : undefined,
    })
    const lease = acquired.lease!
    const writer = writerFor(lease.fence)
    let result: JobResult
    try {
      result = await runJob({
        ...governedJob,
        plan: plan(run.runId),
        store: ledger.progressStore(run.runId, lease, run),
        writer,
        onProgress,
      })
    } finally {
      await writer.close().catch(() => {})
    }
    const end = {
      status: result.status,
      cursor: result.cursor,
      counters: result.counters,
      unmapped: result.unmapped,
      tags: result.tags,
      error: result.error,
    }
    // Replaced: the record and the lock belong to the successor; this process writes nothing more.
    if (result.leaseLost) return governed(finished(result, run.runId, acquired.resumed, run.counters.scanned))
    // The client retries a transaction on UNAUTHENTICATED for its whole deadline: the record keeps its last checkpoint instead.
    if (result.credentialsRejected)
      return governed(
        finished(
          {...result, error: `${result.error}; the run record still says "running" at its last checkpoint`},
          run.runId,
          acquired.resumed,
          run.counters.scanned,
        ),
      )
    try {
      // Bounded: in an outage this write may hang or fail too. The record then keeps its last
      // checkpoint and says "running" with a heartbeat that goes stale; the next run takes it over.
      await withDeadline(
        ledger.finish(lease, run.runId, settings.collection, end),
        FINISH_DEADLINE_MS,
        'recording the end of the run',
      )
    } catch (err) {
      if (err instanceof LeaseLostError)
        return governed(
          finished(
            {...result, status: 'failed', error: err.message, leaseLost: true},
            run.runId,
            acquired.resumed,
            run.counters.scanned,
          ),
        )
      if (result.status !== 'failed') throw err
      result.error = `${result.error}; the run record may still say "running" (${errorMessage(err)}): re-running the command takes it over once its process is gone or its heartbeat is stale, and resumes from its last checkpoint`
    }
    return governed(finished(result, run.runId, acquired.resumed, run.counters.scanned))
  } finally {
    await governor.close()
  }
}

/**
 * The drift limit of an applied plan: the running count of items given a write may reach the
 * plan's count plus maxDriftPercent, never more; the first write past it is refused.
 */
export function driftGuard(plan: AppliedPlan, onRefused: (reason: string) => void): (writes: number) => string | null {
  const limit = Math.floor(plan.update * (1 + plan.maxDriftPercent / 100))
  return (writes) => {
    if (writes <= limit) return null
    const reason = `plan drift: ${writes} items to update so far, the plan counted ${plan.update} (max drift ${plan.maxDriftPercent}%: at most ${limit}); stopped before writing more`
    onRefused(reason)
    return reason
  }
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
    collectionGroup: ctx.settings.group ?? false,
    version: spec.version,
    startedAt: outcome.startedAt.toISOString(),
    finishedAt: outcome.finishedAt.toISOString(),
    durationSeconds: seconds,
    resumed: outcome.resumed,
    total: outcome.total,
    ...result.counters,
    scannedHere: outcome.scannedHere,
    writeRetries: outcome.writeRetries,
    partitions: outcome.partitions,
    rate: seconds > 0 ? Math.round(outcome.scannedHere / seconds) : 0,
    errorSamples: result.errorSamples,
    error: result.error ?? null,
    resumeCommand: null,
    rateLimit: outcome.limit
      ? {perSecond: outcome.limit.perSecond, reason: outcome.limit.reason, text: describeLimit(outcome.limit)}
      : null,
    plan: ctx.plan
      ? {
          hash: ctx.plan.hash,
          planned: {update: ctx.plan.update, error: ctx.plan.error},
          maxDriftPercent: ctx.plan.maxDriftPercent,
          exceeded: outcome.planDrift ?? null,
          warnings: [],
        }
      : null,
  }
}
