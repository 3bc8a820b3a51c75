/**
 * Every write of a run: paced (Pacer), fenced by the run's lease, guarded by each item's read
 * time, retried under pushback and judged for outages (GuardedWriter). Over 350 lines because the
 * queue, the fence, the retries and the outage clock are one state machine around BulkWriter.
 */
import type {BulkWriterError} from '@google-cloud/firestore'
import {BulkWriter, DocumentData, DocumentReference, Firestore, Timestamp, UpdateData} from 'firebase-admin/firestore'
import {DEFAULT_OUTAGE_AFTER_SECONDS} from '../config'
import {PUSHBACK_CODES, RAMP, rampAt} from './control'
import {accessError, errorMessage, GrpcCode, grpcCode, isRetryable} from '../errors'
import {Fence, LeaseLostError} from './lease'
import {isHeldBack, registerSendGate} from '../firestore/connection'
import {OutageError} from '../firestore/retry'

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
  onRetry?: (retry: {code: number | undefined; attempts: number; id: string}) => void
  /** The run's lease: no write leaves while it is not known to be valid. */
  fence?: Fence
  /** Shared by every writer of a process (default: this writer's own, from `emulator` and `maxRate`). */
  pacer?: Pacer
  /** Each write Firestore answered: `accepted` unless it pushed back (the closed loop), and its acknowledgement latency. */
  onAnswer?: (accepted: boolean, latencyMs: number) => void
}

/** `rejected`: Firestore refused this write for its content (e.g. nested deeper than 20 levels): an error item, not a failed run. */
export type GuardedResult = 'written' | 'conflict' | 'missing' | {rejected: string}

const INVALID_ARGUMENT = 3

/** Firestore's answer about this item (a changed, deleted or refused document), or null: the write failed. */
function itemAnswer(err: unknown): Exclude<GuardedResult, 'written'> | null {
  const code = (err as BulkWriterError).code
  if (code === GrpcCode.FAILED_PRECONDITION) return 'conflict'
  if (code === GrpcCode.NOT_FOUND) return 'missing'
  if (code === INVALID_ARGUMENT) return {rejected: `Firestore rejected the write: ${(err as Error).message}`}
  return null
}

/** Retries of a write that failed retryably, as BulkWriter spaces them (its own retries are off: every attempt passes the fence). */
const RETRY = {initialMs: 1000, factor: 1.5, maxMs: 60_000, jitter: 0.3} as const

/** BulkWriter's batch: the pacer releases writes a batch at a time, so a slow run sends few, full BatchWrites. */
const BATCH = 20
/** BulkWriter's limit of pending writes. */
const MAX_PENDING = 500

/**
 * A token bucket holding a batch of writes, or a fifth of a second of them at high rates, so
 * any rate works, 1/s or 0.25/s included: BulkWriter's own limiter never releases its first
 * batch of 20 below 20/s.
 */
export class Pacer {
  private last = Date.now()
  private tokens: number

  /** `rate`: writes per second now (a run's governor decides it; Infinity: unpaced). */
  constructor(readonly rate: () => number) {
    this.tokens = this.capacity(rate())
  }

  /** A fixed pace outside a run (its governor paces a run's writers): the cap, under the ramp from now off an emulator. */
  static for(options: Pick<WriterOptions, 'emulator' | 'maxRate'>): Pacer {
    const born = Date.now()
    return new Pacer(() =>
      Math.min(options.maxRate ?? Infinity, options.emulator ? Infinity : rampAt(Date.now() - born)),
    )
  }

  private capacity(rate: number): number {
    return Math.max(BATCH, rate / 5)
  }

  /** Takes `n` writes' tokens (n ≤ a batch), or returns how many ms until they are there. */
  take(n: number, now = Date.now()): number {
    const rate = this.rate()
    if (rate === Infinity) return 0
    // No pace at all (never set by a governor, which keeps the last pace to drain a pause): look again shortly.
    if (!(rate > 0)) return 250
    this.tokens = Math.min(this.capacity(rate), this.tokens + ((now - this.last) / 1000) * rate)
    this.last = now
    if (this.tokens < n) return Math.ceil(((n - this.tokens) / rate) * 1000)
    this.tokens -= n
    return 0
  }
}

interface QueuedWrite {
  ref: DocumentReference
  data: DocumentData
  /** Set for a guarded update; absent for a plain set (an error record). */
  lastUpdateTime?: Timestamp
  attempts: number
  /** When it was handed to BulkWriter (its acknowledgement latency). */
  sentAt?: number
  done: (result: GuardedResult) => void
  fail: (err: Error) => void
}

/**
 * Guarded writes through BulkWriter: field-level updates conditional on the item's read
 * time, in a bounded window, paced by this writer (the 500/50/5 ramp, --max-rate) and
 * fenced by the run's lease. Writes wait in this writer's queue and are handed to
 * BulkWriter only while the lease is valid, and each burst is flushed at once, so nothing
 * sits in BulkWriter's buffer to be sent later (after a freeze, say). Retries come back
 * through the queue: no attempt leaves without the fence.
 *
 * The client retries a failing BatchWrite on its own for up to 600 s before BulkWriter even
 * sees the error (and it ignores shorter retry settings for BatchWrite). So the outage is
 * declared by the wall clock: writes waiting (or reads failing) and nothing answered for
 * `outageAfterMs`. From then on nothing here waits on the client any more; the
 * unacknowledged writes are abandoned, which is safe because the checkpoint only ever
 * covers acknowledged items.
 */
export class GuardedWriter {
  private bulk: BulkWriter
  private readonly newBulk: () => BulkWriter
  private readonly queue: QueuedWrite[] = []
  private readonly pacer: Pacer
  private readonly fence?: Fence
  private pumpTimer: NodeJS.Timeout | null = null
  private flushQueued = false
  private renewing = false
  /** Writes accepted and not yet settled: queued, sent, or waiting to be retried. */
  private inFlight = 0
  private waiters: (() => void)[] = []
  private idle: (() => void)[] = []
  private readonly maxWindow: number
  private readonly maxAttempts: number
  private readonly outageAfterMs: number
  private readonly onRetry?: WriterOptions['onRetry']
  private readonly onAnswer?: WriterOptions['onAnswer']
  /** Last time Firestore answered (a write acknowledged, or refused for a precondition or its content; a document read), or writes started waiting. */
  private lastAnswer = Date.now()
  private readFailure: unknown = null
  private readonly watch: NodeJS.Timeout
  private closed = false
  private readonly ungate: () => void
  private gaveUp!: () => void
  private readonly abandoned = new Promise<void>((resolve) => (this.gaveUp = resolve))
  /** Set once the run must stop writing: an outage (budget spent, retries exhausted) or a lost lease. */
  stopped: OutageError | LeaseLostError | null = null

  constructor(db: Firestore, options: WriterOptions) {
    this.pacer = options.pacer ?? Pacer.for(options)
    // Never more than BulkWriter keeps pending: past that it buffers writes and sends them later, unchecked.
    this.maxWindow = Math.min(options.maxInFlight ?? MAX_PENDING, MAX_PENDING)
    this.onAnswer = options.onAnswer
    this.maxAttempts = options.maxAttempts ?? 10
    this.outageAfterMs = options.outageAfterMs ?? DEFAULT_OUTAGE_AFTER_SECONDS * 1000
    this.onRetry = options.onRetry
    this.fence = options.fence
    this.newBulk = () => {
      const bulk = db.bulkWriter({throttling: false})
      bulk.onWriteError(() => false)
      return bulk
    }
    this.bulk = this.newBulk()
    this.ungate = registerSendGate(() => this.stopped === null && (this.fence?.valid() ?? true))
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

  /** `signal`, or aborted once the writer stops: a scan waiting on a dead connection stops too. */
  until(signal?: AbortSignal): AbortSignal {
    const both = new AbortController()
    const abort = () => both.abort()
    if (signal?.aborted) abort()
    signal?.addEventListener('abort', abort, {once: true})
    void this.abandoned.then(abort)
    return both.signal
  }

  /** `p`, or undefined as soon as the writer stops: nothing waits on a dead connection past the budget. */
  unlessStopped<T>(p: Promise<T>): Promise<T | undefined> {
    return Promise.race([p, this.abandoned.then(() => undefined)])
  }

  /**
   * Writes accepted at once: about two seconds of them at the current pace (an interrupt or a
   * pause drains them, and the checkpoint trails by little), up to the configured window.
   */
  private get maxInFlight(): number {
    const rate = this.pacer.rate()
    return rate === Infinity ? this.maxWindow : Math.min(this.maxWindow, Math.max(1, Math.ceil(rate * 2)))
  }

  /** True while the window has no room: callers then await ready() (no promise per write otherwise). */
  get full(): boolean {
    return this.inFlight >= this.maxInFlight
  }

  /** Resolves when the window has room for one more write. */
  async ready(): Promise<void> {
    while (this.inFlight >= this.maxInFlight && !this.stopped) await new Promise<void>((r) => this.waiters.push(r))
  }

  /** Updates the given fields only, if the document is still at `lastUpdateTime`. */
  update(ref: DocumentReference, data: UpdateData<DocumentData>, lastUpdateTime: Timestamp): Promise<GuardedResult> {
    return new Promise<GuardedResult>((done, fail) =>
      this.enqueue({ref, data: data as DocumentData, lastUpdateTime, attempts: 0, done, fail}),
    )
  }

  set(ref: DocumentReference, data: DocumentData): Promise<void> {
    return new Promise<void>((resolve, fail) =>
      this.enqueue({
        ref,
        data,
        attempts: 0,
        done: (r) =>
          r === 'written'
            ? resolve()
            : fail(new Error(`writing ${ref.path}: ${typeof r === 'object' ? r.rejected : r}`)),
        fail,
      }),
    )
  }

  /** Waits until every write accepted so far is acknowledged or failed, or the writer stops. */
  async drain(): Promise<void> {
    if (this.inFlight > 0 && !this.stopped) await new Promise<void>((r) => this.idle.push(r))
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.inFlight === 0) this.ungate()
    clearInterval(this.watch)
    if (this.pumpTimer) clearTimeout(this.pumpTimer)
    await this.unlessStopped(this.bulk.close())
  }

  get pending(): number {
    return this.inFlight
  }

  private enqueue(write: QueuedWrite): void {
    if (this.stopped) return write.fail(this.stopped)
    // The budget counts from when writes start waiting, not from an idle stretch before.
    if (this.inFlight === 0) this.lastAnswer = Date.now()
    this.inFlight++
    this.queue.push(write)
    this.pump()
  }

  /** Hands queued writes to BulkWriter while the lease is valid and the pace allows; flushes them together at the end of this turn. */
  private pump(): void {
    if (this.stopped || this.pumpTimer || this.queue.length === 0) return
    if (this.fence && !this.fence.valid()) return this.renewFence()
    let handed = false
    while (this.queue.length > 0) {
      const n = Math.min(BATCH, this.queue.length)
      const wait = this.pacer.take(n)
      if (wait > 0) {
        this.pumpTimer = setTimeout(() => ((this.pumpTimer = null), this.pump()), wait)
        break
      }
      for (const write of this.queue.splice(0, n)) this.send(write)
      handed = true
    }
    if (handed && !this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(() => {
        this.flushQueued = false
        void this.bulk.flush()
      })
    }
  }

  /** Past the lease's trust: hold every write until a conditional heartbeat confirms the lease, or stop for good if it is lost. */
  private renewFence(): void {
    if (this.renewing) return
    this.renewing = true
    this.fence!.renew().then(
      () => {
        this.renewing = false
        this.pump()
      },
      (err: unknown) => {
        this.renewing = false
        if (err instanceof LeaseLostError) return void this.declare(err)
        // Not an answer about the lease (e.g. unreachable): try again; the outage clock runs meanwhile.
        this.pumpTimer = setTimeout(() => ((this.pumpTimer = null), this.pump()), 1000)
      },
    )
  }

  private send(write: QueuedWrite): void {
    let sent: Promise<unknown>
    write.sentAt = Date.now()
    try {
      sent = write.lastUpdateTime
        ? this.bulk.update(write.ref, write.data, {lastUpdateTime: write.lastUpdateTime})
        : this.bulk.set(write.ref, write.data)
    } catch (err) {
      return this.finish(write, false, {rejected: this.refused(err)})
    }
    // One callback per write does the bookkeeping and maps the result: no promise chain per write.
    sent.then(
      () => {
        this.onAnswer?.(true, Date.now() - write.sentAt!)
        this.finish(write, true, 'written')
      },
      (err: unknown) => {
        // Never sent (a gate was shut as the call started): back behind the lease check.
        if (isHeldBack(err)) return this.requeue(write, 50)
        const code = grpcCode(err)
        if (code !== undefined) this.onAnswer?.(!PUSHBACK_CODES.has(code), Date.now() - write.sentAt!)
        const answer = itemAnswer(err)
        if (answer !== null) return this.finish(write, true, answer)
        if (isRetryable(err) && ++write.attempts < this.maxAttempts && !this.stopped) return this.retry(write, err)
        this.finish(write, false, this.fail(err, write))
      },
    )
  }

  private retry(write: QueuedWrite, err: unknown): void {
    this.onRetry?.({code: grpcCode(err), attempts: write.attempts, id: write.ref.id})
    const base =
      grpcCode(err) === GrpcCode.RESOURCE_EXHAUSTED
        ? RETRY.maxMs
        : Math.min(RETRY.maxMs, RETRY.initialMs * RETRY.factor ** (write.attempts - 1))
    this.requeue(write, base * (1 + RETRY.jitter * (Math.random() * 2 - 1)))
  }

  private requeue(write: QueuedWrite, afterMs: number): void {
    setTimeout(() => {
      if (this.stopped) return this.finish(write, false, this.stopped)
      this.queue.push(write)
      this.pump()
    }, afterMs)
  }

  /** A write left the window; `answered`: Firestore answered it (acknowledged, or refused for a precondition or its content). */
  private finish(write: QueuedWrite, answered: boolean, result: GuardedResult | Error): void {
    if (answered) this.lastAnswer = Date.now()
    this.inFlight--
    this.waiters.shift()?.()
    if (this.inFlight === 0) {
      for (const wake of this.idle.splice(0)) wake()
      // Abandoned writes the client still retries stay held back until the last one is done.
      if (this.closed) this.ungate()
    }
    if (result instanceof Error) write.fail(result)
    else write.done(result)
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

  private fail(err: unknown, write: QueuedWrite): Error {
    if (isRetryable(err)) return this.declare(new OutageError(`writes keep failing: ${(err as Error).message}`, err))
    return accessError(err, write.lastUpdateTime ? 'updating' : 'writing', write.ref.parent.path) ?? (err as Error)
  }

  private checkOutage(): void {
    if (this.stopped || (this.inFlight === 0 && this.readFailure === null)) return
    const silent = Date.now() - this.lastAnswer
    if (silent < this.outageAfterMs) return
    const cause = this.readFailure === null ? '' : `; last read error: ${errorMessage(this.readFailure)}`
    this.declare(
      new OutageError(
        `Firestore unreachable: nothing answered for ${Math.round(silent / 1000)} s with ${this.inFlight} writes waiting${cause}`,
        this.readFailure,
      ),
    )
  }

  /** Stops for good: queued writes are never sent (they fail with `err`); sent ones settle as Firestore answers them. */
  private declare<E extends OutageError | LeaseLostError>(err: E): E {
    if (this.stopped) return this.stopped as E
    this.stopped = err
    clearInterval(this.watch)
    if (this.pumpTimer) clearTimeout(this.pumpTimer)
    this.gaveUp()
    for (const write of this.queue.splice(0)) this.finish(write, false, err)
    for (const wake of [...this.waiters.splice(0), ...this.idle.splice(0)]) wake()
    return err
  }
}

/** Seconds to perform `ops` writes under the ramp (or unthrottled at `emulatorRate`), capped by maxRate. */
export function estimateWriteSeconds(
  ops: number,
  options: {emulator: boolean; maxRate?: number; emulatorRate?: number},
): number {
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
