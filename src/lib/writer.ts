import type {BulkWriterError} from '@google-cloud/firestore'
import {BulkWriter, DocumentData, DocumentReference, Firestore, Timestamp, UpdateData} from 'firebase-admin/firestore'
import {DEFAULT_OUTAGE_AFTER_SECONDS} from './config'
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
  /**
   * Wall clock with writes waiting (or reads failing) and nothing answered by Firestore after
   * which the writer declares an outage. Longer than one BatchWrite attempt (60 s) by default.
   */
  outageAfterMs?: number
  onRetry?: (err: BulkWriterError) => void
}

/** `rejected`: Firestore refused this write for its content (e.g. nested deeper than 20 levels): an error item, not a failed run. */
export type GuardedResult = 'written' | 'conflict' | 'missing' | {rejected: string}

/** BulkWriter's batch size: a window smaller than this never fills a batch by itself. */
const BULK_BATCH_SIZE = 20
const INVALID_ARGUMENT = 3

/** Firestore's answer about this item (a changed, deleted or refused document), or null: the write failed. */
function itemAnswer(err: unknown): Exclude<GuardedResult, 'written'> | null {
  const code = (err as BulkWriterError).code
  if (code === GrpcCode.FAILED_PRECONDITION) return 'conflict'
  if (code === GrpcCode.NOT_FOUND) return 'missing'
  if (code === INVALID_ARGUMENT) return {rejected: `Firestore rejected the write: ${(err as Error).message}`}
  return null
}

/**
 * BulkWriter behind a bounded window: field-level updates guarded by a lastUpdateTime
 * precondition, retryable errors retried with backoff, and a persistent outage surfaced
 * as an OutageError instead of an item failure.
 *
 * The client retries a failing BatchWrite on its own for up to 600 s before BulkWriter even
 * sees the error (and it ignores shorter retry settings for BatchWrite), then BulkWriter
 * retries it again. So the outage is declared by the wall clock: writes waiting (or reads
 * failing) and nothing answered for `outageAfterMs`. From then on nothing here waits on
 * the client any more; the unacknowledged writes are abandoned, which is safe because the
 * checkpoint only ever covers acknowledged items.
 */
export class GuardedWriter {
  private bulk: BulkWriter
  private readonly newBulk: () => BulkWriter
  private inFlight = 0
  private waiters: (() => void)[] = []
  private readonly maxInFlight: number
  private readonly outageAfterMs: number
  /** Last time Firestore answered (a write acknowledged, or refused for a precondition or its content; a document read), or writes started waiting. */
  private lastAnswer = Date.now()
  private readFailure: unknown = null
  private readonly watch: NodeJS.Timeout
  private gaveUp!: () => void
  private readonly abandoned = new Promise<void>((resolve) => (this.gaveUp = resolve))
  /** Set once the outage budget is spent or a write's retries are exhausted: the run must stop. */
  outage: OutageError | null = null

  constructor(db: Firestore, options: WriterOptions) {
    this.maxInFlight = options.maxInFlight ?? 2000
    this.outageAfterMs = options.outageAfterMs ?? DEFAULT_OUTAGE_AFTER_SECONDS * 1000
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
    this.watch = setInterval(() => this.checkOutage(), Math.min(1000, this.outageAfterMs / 5))
    this.watch.unref()
  }

  /** A document was read: Firestore answers. */
  answered(): void {
    this.lastAnswer = Date.now()
    this.readFailure = null
  }

  /** A read failed and is being retried: the outage clock runs even with no write waiting. */
  readFailed(err: unknown): void {
    this.readFailure = err
  }

  /** `signal`, or aborted once an outage is declared: a scan waiting on a dead connection stops too. */
  until(signal?: AbortSignal): AbortSignal {
    const both = new AbortController()
    const abort = () => both.abort()
    if (signal?.aborted) abort()
    signal?.addEventListener('abort', abort, {once: true})
    void this.abandoned.then(abort)
    return both.signal
  }

  /** `p`, or undefined as soon as an outage is declared: nothing waits on a dead connection past the budget. */
  unlessOutage<T>(p: Promise<T>): Promise<T | undefined> {
    return Promise.race([p, this.abandoned.then(() => undefined)])
  }

  /** True while the window has no room: callers then await ready() (no promise per write otherwise). */
  get full(): boolean {
    return this.inFlight >= this.maxInFlight
  }

  /** Resolves when the window has room for one more write. */
  async ready(): Promise<void> {
    while (this.inFlight >= this.maxInFlight && !this.outage) {
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
    this.issued()
    // One callback per write does the bookkeeping and maps the result: no promise chain per write.
    return sent.then(
      () => {
        this.settled(true)
        return 'written' as const
      },
      (err: unknown) => {
        const answer = itemAnswer(err)
        this.settled(answer !== null)
        if (answer === null) throw this.fail(err)
        return answer
      },
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
    this.issued()
    return sent.then(
      () => this.settled(true),
      (err: unknown) => {
        this.settled(false)
        throw this.fail(err)
      },
    )
  }

  /** Waits until every write issued so far is acknowledged or failed, or an outage is declared. */
  async drain(): Promise<void> {
    await this.unlessOutage(this.bulk.flush())
  }

  async close(): Promise<void> {
    clearInterval(this.watch)
    await this.unlessOutage(this.bulk.close())
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
    if (isRetryable(err)) return this.declare(new OutageError(`writes keep failing: ${(err as Error).message}`, err))
    return err as Error
  }

  private checkOutage(): void {
    if (this.outage || (this.inFlight === 0 && this.readFailure === null)) return
    const silent = Date.now() - this.lastAnswer
    if (silent < this.outageAfterMs) return
    const cause = this.readFailure === null ? '' : `; last read error: ${errorMessage(this.readFailure)}`
    this.declare(new OutageError(`Firestore unreachable: nothing answered for ${Math.round(silent / 1000)} s with ${this.inFlight} writes waiting${cause}`, this.readFailure))
  }

  private declare(err: OutageError): OutageError {
    if (this.outage) return this.outage
    this.outage = err
    clearInterval(this.watch)
    this.gaveUp()
    for (const wake of this.waiters.splice(0)) wake()
    return err
  }

  private issued(): void {
    // The budget counts from when writes start waiting, not from an idle stretch before.
    if (this.inFlight === 0) this.lastAnswer = Date.now()
    this.inFlight++
  }

  /** A write left the window; `answered`: Firestore answered it (acknowledged, or refused for a precondition or its content). */
  private settled(answered: boolean): void {
    if (answered) this.lastAnswer = Date.now()
    this.inFlight--
    this.waiters.shift()?.()
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
