import type {BulkWriterError} from '@google-cloud/firestore'
import {BulkWriter, DocumentData, DocumentReference, Firestore, Timestamp, UpdateData} from 'firebase-admin/firestore'
import {errorMessage, GrpcCode, isRetryable} from './errors'
import {OutageError} from './scan'

/** Firestore's 500/50/5 rule: start at 500 ops/s, +50% every 5 minutes. */
export const RAMP = {initialOpsPerSecond: 500, growth: 1.5, stepMinutes: 5, maxOpsPerSecond: 10_000} as const

export interface WriterOptions {
  /** Against an emulator writes go unthrottled (unless --max-rate). */
  emulator: boolean
  maxRate?: number
  /** Bounds memory and the un-checkpointed tail. */
  maxInFlight?: number
  maxAttempts?: number
  onRetry?: (err: BulkWriterError) => void
}

/** `rejected`: Firestore refused this write for its content (e.g. nested deeper than 20 levels): an error item, not a failed run. */
export type GuardedResult = 'written' | 'conflict' | 'missing' | {rejected: string}

/** BulkWriter's batch size: a window smaller than this never fills a batch by itself. */
const BULK_BATCH_SIZE = 20
const INVALID_ARGUMENT = 3

/**
 * BulkWriter behind a bounded window: field-level updates guarded by a lastUpdateTime
 * precondition, retryable errors retried with backoff, and a persistent outage surfaced
 * as an OutageError instead of an item failure.
 */
export class GuardedWriter {
  private bulk: BulkWriter
  private readonly newBulk: () => BulkWriter
  private inFlight = 0
  private waiters: (() => void)[] = []
  private readonly maxInFlight: number
  /** Set once retries are exhausted: the run must stop. */
  outage: OutageError | null = null

  constructor(db: Firestore, options: WriterOptions) {
    this.maxInFlight = options.maxInFlight ?? 2000
    const maxAttempts = options.maxAttempts ?? 10
    this.newBulk = () => {
      const bulk = db.bulkWriter({throttling: throttlingFor(options)})
      bulk.onWriteError((err) => {
        const retry = isRetryable(err) && err.failedAttempts < maxAttempts
        if (retry) options.onRetry?.(err)
        return retry
      })
      return bulk
    }
    this.bulk = this.newBulk()
  }

  /** True while the window has no room: callers then await ready() (no promise per write otherwise). */
  get full(): boolean {
    return this.inFlight >= this.maxInFlight
  }

  /** Resolves when the window has room for one more write. */
  async ready(): Promise<void> {
    while (this.inFlight >= this.maxInFlight) {
      // Otherwise the window's writes would wait in a partial batch for the periodic drain.
      if (this.maxInFlight < BULK_BATCH_SIZE) void this.bulk.flush()
      await new Promise<void>((r) => this.waiters.push(r))
    }
  }

  /** Updates the given fields only, if the document is still at `lastUpdateTime`. */
  update(ref: DocumentReference, data: UpdateData<DocumentData>, lastUpdateTime: Timestamp): Promise<GuardedResult> {
    let sent: Promise<unknown>
    try {
      sent = this.bulk.update(ref, data, {lastUpdateTime})
    } catch (err) {
      return Promise.resolve({rejected: this.refused(err)})
    }
    return this.track(
      sent.then(
        () => 'written' as const,
        (err: unknown) => {
          const code = (err as BulkWriterError).code
          if (code === GrpcCode.FAILED_PRECONDITION) return 'conflict' as const
          if (code === GrpcCode.NOT_FOUND) return 'missing' as const
          if (code === INVALID_ARGUMENT) return {rejected: `Firestore rejected the write: ${(err as Error).message}`}
          throw this.fail(err)
        },
      ),
    )
  }

  set(ref: DocumentReference, data: DocumentData): Promise<void> {
    let sent: Promise<unknown>
    try {
      sent = this.bulk.set(ref, data)
    } catch (err) {
      this.refused(err)
      return Promise.reject(err)
    }
    return this.track(
      sent.then(
        () => undefined,
        (err: unknown) => {
          throw this.fail(err)
        },
      ),
    )
  }

  /** Waits until every write issued so far is acknowledged or failed. */
  async drain(): Promise<void> {
    await this.bulk.flush()
  }

  async close(): Promise<void> {
    await this.bulk.close()
  }

  get pending(): number {
    return this.inFlight
  }

  /**
   * The client refused a write up front (invalid data). BulkWriter counts the write before it
   * validates it, so its flush() would never resolve again: writes go on in a fresh one, and
   * the old one is closed (its queued writes are sent and settle as usual; the promise close()
   * returns never resolves and is not awaited).
   */
  private refused(err: unknown): string {
    const old = this.bulk
    this.bulk = this.newBulk()
    void old.close()
    const message = errorMessage(err)
    return `the write was refused: ${message.replace(/^.*is not a valid Firestore value\. /s, '')}`
  }

  private fail(err: unknown): Error {
    if (isRetryable(err)) {
      this.outage ??= new OutageError(`writes keep failing: ${(err as Error).message}`, err)
      return this.outage
    }
    return err as Error
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++
    const done = () => {
      this.inFlight--
      this.waiters.shift()?.()
    }
    p.then(done, done)
    return p
  }
}

function throttlingFor(options: WriterOptions): boolean | {initialOpsPerSecond: number; maxOpsPerSecond: number} {
  if (options.emulator) return options.maxRate ? {initialOpsPerSecond: options.maxRate, maxOpsPerSecond: options.maxRate} : false
  const max = options.maxRate ?? RAMP.maxOpsPerSecond
  return {initialOpsPerSecond: Math.min(RAMP.initialOpsPerSecond, max), maxOpsPerSecond: max}
}

/** Seconds to perform `ops` writes under the ramp (or unthrottled at `emulatorRate`), capped by maxRate. */
export function estimateWriteSeconds(ops: number, options: {emulator: boolean; maxRate?: number; emulatorRate?: number}): number {
  if (ops <= 0) return 0
  if (options.emulator) {
    const rate = Math.min(options.maxRate ?? Infinity, options.emulatorRate ?? 8000)
    return ops / rate
  }
  const cap = options.maxRate ?? RAMP.maxOpsPerSecond
  let rate = Math.min(RAMP.initialOpsPerSecond, cap)
  let left = ops
  let seconds = 0
  const step = RAMP.stepMinutes * 60
  while (left > rate * step && rate < cap) {
    left -= rate * step
    seconds += step
    rate = Math.min(rate * RAMP.growth, cap)
  }
  return seconds + left / rate
}
