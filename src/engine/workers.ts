import {errorMessage, UsageError} from '../errors'
import {JobProgress, JobResult, JobSpec, measureProgress, runJob} from './job'
import {Fence, LeaseLostError} from './lease'
import type {Hold} from './job'
import {
  addCounters,
  Counters,
  FINISH_DEADLINE_MS,
  Ledger,
  PartitionLease,
  PartitionStatus,
  RunEndedError,
  RunRecord,
  sumProgress,
  zeroCounters,
} from './ledger'
import type {RunContext, Sharding} from './run-context'
import {withDeadline, withRetry} from '../firestore/retry'
import type {GuardedWriter} from './writer'

export function shardingRequested(s: Sharding | undefined): boolean {
  return Boolean(s && (s.workers > 1 || s.shardCount > 1 || (s.partitions ?? 1) > 1 || s.join !== undefined))
}

/**
 * Shard index and count from the job engines' environment: Cloud Run Jobs set
 * CLOUD_RUN_TASK_INDEX/COUNT; Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX (the count
 * comes from --shard-count or WARDROBE_SHARD_COUNT: Kubernetes does not expose it).
 * Flags win over the environment.
 */
export function shardFromEnvironment(
  flags: {index?: number; count?: number},
  env: NodeJS.ProcessEnv = process.env,
): {shardIndex: number; shardCount: number} {
  const read = (name: string): number | undefined => {
    const raw = env[name]
    if (raw === undefined || raw === '') return undefined
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`${name}=${raw} is not a non-negative integer`, `unset ${name} or fix its value`)
    return n
  }
  const shardIndex = flags.index ?? read('CLOUD_RUN_TASK_INDEX') ?? read('JOB_COMPLETION_INDEX') ?? 0
  const shardCount =
    flags.count ?? read('CLOUD_RUN_TASK_COUNT') ?? read('WARDROBE_SHARD_COUNT') ?? Math.max(1, shardIndex + 1)
  if (shardCount < 1)
    throw new UsageError(`shard count ${shardCount} must be at least 1`, 'pass --shard-count N (N ≥ 1)')
  if (shardIndex >= shardCount)
    throw new UsageError(
      `shard index ${shardIndex} is not below the shard count ${shardCount}`,
      'pass --shard-count (or WARDROBE_SHARD_COUNT) with the number of parallel tasks',
    )
  return {shardIndex, shardCount}
}

export interface ShardedRun {
  ctx: RunContext
  ledger: Ledger
  run: RunRecord
  /** The engine's spec minus what each partition brings (range, store, writer, progress). */
  job: Omit<JobSpec, 'range' | 'store' | 'writer' | 'onProgress'>
  writerFor: (fence: Fence) => GuardedWriter
  sharding?: Sharding
  /** The run's live control: a held process claims nothing new. */
  control?: Hold
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, {once: true})
  })

/**
 * This process's share of a sharded run: `workers` loops, each claiming a partition (a free
 * one, or one whose lease went stale), running the engine over its key range with the
 * partition as checkpoint, and claiming the next, until no partition is left open. Idle
 * workers wait while others hold partitions, to take over any whose owner dies; the
 * process says it is alive meanwhile (its governor's heartbeat), so the run does not end under it. The last process
 * out ends the run. Ctrl-C stops this process only: its partitions are released for the
 * others.
 */
export async function runSharded({
  ctx,
  ledger,
  run,
  job,
  writerFor,
  sharding,
  control,
}: ShardedRun): Promise<{result: JobResult; scannedHere: number}> {
  const workers = Math.max(1, sharding?.workers ?? 1)
  const slots = workers * (sharding?.shardCount ?? 1)
  const staleAfterMs = ctx.settings.staleAfterMs
  const pollMs = sharding?.pollMs ?? Math.min(5000, Math.max(250, staleAfterMs / 4))
  const {signal} = ctx
  const errorSamples: JobResult['errorSamples'] = []
  let scannedHere = 0
  let failure: string | undefined
  /** Why this process may not write for the run any more: a lease lost, or the run ended or taken over under it. */
  let lost: string | undefined

  // The run's progress: every partition's last checkpoint, replaced by live counters for ours.
  const known = new Map<number, Counters>()
  const live = new Map<number, Counters>()
  const startedAt = Date.now()
  let startScanned: number | null = null
  const progress = (): JobProgress => {
    const counters = zeroCounters()
    for (const c of new Map([...known, ...live]).values()) addCounters(counters, c)
    startScanned ??= counters.scanned
    return measureProgress(counters, job.total, startedAt, startScanned, live.size)
  }
  const progressTimer = ctx.onProgress ? setInterval(() => ctx.onProgress?.(progress()), 250) : undefined

  /**
   * The run ended, or was taken over, while this process was still in it (frozen past its
   * lease, say): unless it completed, or this process was stopped itself (Ctrl-C, `runs
   * stop`), it was taken from this process, which then fails with a lost lease (exit 1),
   * whatever else its workers ended with: never the taker-over's `interrupted` (exit 130).
   */
  const endedUnder = (err: RunEndedError): void => {
    if (err.run.status !== 'completed' && !signal?.aborted) lost ??= `lease lost: ${err.message}`
  }

  const work = async (lease: PartitionLease): Promise<void> => {
    const p = lease.partition
    ctx.logger?.info('partition claimed', {
      runId: run.runId,
      partition: p.index,
      cursor: p.cursor,
      claims: p.claims,
      tookOverFrom: p.tookOverFrom,
    })
    const writer = writerFor(lease.fence)
    let result: JobResult
    try {
      result = await runJob({
        ...job,
        range: p,
        store: ledger.progressStore(run.runId, lease, p),
        writer,
        control,
        onProgress: (jp) => live.set(p.index, jp.counters),
      })
    } finally {
      await writer.close().catch(() => {})
    }
    live.delete(p.index)
    known.set(p.index, result.counters)
    scannedHere += result.counters.scanned - p.counters.scanned
    errorSamples.push(...result.errorSamples.slice(0, Math.max(0, 100 - errorSamples.length)))
    // Its new owner goes on from our last checkpoint; whether the run itself is still ours, the next claim tells.
    if (result.leaseLost) {
      ledger.release(lease)
      return void ctx.logger?.warn('partition taken over by another worker', {
        runId: run.runId,
        partition: p.index,
        error: result.error,
      })
    }
    const status: PartitionStatus = result.status === 'completed' ? 'done' : result.status
    const end = {
      status,
      cursor: result.cursor,
      counters: result.counters,
      unmapped: result.unmapped,
      tags: result.tags,
      leaseId: null,
      error: result.error ?? null,
      finishedAt: status === 'done' ? new Date() : null,
    }
    await withDeadline(
      ledger.updateLeased(lease, end),
      FINISH_DEADLINE_MS,
      `recording the end of partition ${p.index}`,
    ).catch((err) => {
      // Taken over meanwhile: the new owner goes on from our last checkpoint. In an outage the
      // record keeps its last checkpoint and its lease goes stale: the next worker takes it over.
      if (!(err instanceof LeaseLostError) && result.status !== 'failed') throw err
    })
    ledger.release(lease)
    ctx.logger?.info('partition left', {runId: run.runId, partition: p.index, status, counters: result.counters})
    if (result.status === 'failed') failure ??= result.error ?? 'failed'
  }

  const loop = async (w: number): Promise<void> => {
    // Workers of all processes start spread over the partitions, so their claims rarely collide.
    const prefer = Math.floor(((((sharding?.shardIndex ?? 0) * workers + w) % slots) * run.partitions) / slots)
    while (!failure && !lost && !signal?.aborted) {
      if (control?.holding) {
        await control.whenWriting(signal)
        continue
      }
      let claimed: Awaited<ReturnType<Ledger['claim']>>
      try {
        claimed = await withRetry(() => ledger.claim(run, prefer, staleAfterMs), {signal})
      } catch (err) {
        if (!(err instanceof RunEndedError)) throw err
        endedUnder(err)
        return
      }
      const {lease, summary} = claimed
      for (const part of summary.partitions) if (!live.has(part.index)) known.set(part.index, part.counters)
      if (lease) {
        await work(lease)
        continue
      }
      const {pending, interrupted, running} = summary.byStatus
      if (pending + interrupted + running === 0) return
      await sleep(pollMs, signal)
    }
  }

  // Each loop ends on its own (a failure stops the others' claims, not their current partition).
  await Promise.all(
    Array.from({length: workers}, (_, w) => loop(w).catch((err) => void (failure ??= errorMessage(err)))),
  )
  clearInterval(progressTimer)
  let ended: Awaited<ReturnType<Ledger['finishSharded']>> | null = null
  try {
    ended = await withDeadline(
      withRetry(() => ledger.finishSharded(run.runId, run.collection, staleAfterMs)),
      FINISH_DEADLINE_MS,
      'recording the end of the run',
    )
  } catch (err) {
    if (!failure) throw err
    failure += `; the run record may still say "running" (${errorMessage(err)}): re-running the command takes it over once its workers' leases are stale`
  }
  // A worker that stopped on another error (say, its partition's end write, past its deadline
  // after a freeze) claimed nothing more to learn this: the run record says so now.
  if (ended?.foundEnded) endedUnder(new RunEndedError(ended.run))
  ctx.onProgress?.(progress())
  if (!ended || lost) {
    const counters = progress().counters
    return {
      result: {
        status: 'failed',
        counters,
        unmapped: {},
        tags: {},
        errorSamples,
        cursor: null,
        error: lost ?? failure,
        leaseLost: lost !== undefined,
      },
      scannedHere,
    }
  }
  const {run: after, summary} = ended
  // While other processes go on, this one reports how it left: interrupted (Ctrl-C), failed, or done with every partition.
  const status: JobResult['status'] =
    after.status === 'completed' || after.status === 'failed' || after.status === 'interrupted'
      ? after.status
      : signal?.aborted
        ? 'interrupted'
        : failure || summary.byStatus.failed > 0
          ? 'failed'
          : 'completed'
  const totals =
    after.status === 'running'
      ? sumProgress(summary.partitions)
      : {counters: after.counters, unmapped: after.unmapped, tags: after.tags}
  return {
    result: {status, ...totals, errorSamples, cursor: null, error: failure ?? after.error ?? undefined},
    scannedHere,
  }
}
