import type {Logger} from './run-context'
import {
  AdaptiveThrottle,
  chooseLimit,
  CONTROL_POLL_MS,
  Control,
  describeLimit,
  LatencyLimit,
  Limit,
  rampAt,
  shareOf,
} from './control'
import {windowState} from '../domain/windows'
import {errorMessage} from '../errors'
import {describeOwner, lastChange, Ledger, liveMembers, MemberRecordSchema, parseRun, RunRecord} from './ledger'
import {withDeadline} from '../firestore/retry'

export interface GovernorOptions {
  ledger: Ledger
  run: RunRecord
  /** Against an emulator there is no ramp (writes go unthrottled unless capped). */
  emulator: boolean
  /** This process's workers: its share of the run-wide cap and ramp. */
  workers: number
  staleAfterMs: number
  /** How often the run record's control is read (default CONTROL_POLL_MS); 0: never (the bench's baseline). */
  pollMs?: number
  logger?: Logger
  /** The process's state or the reason for its limit changed (paused, resumed, stopping, a new limit). */
  onChange?: (limit: Limit, text: string) => void
}

/** How long leaving the run (its process record) may take at the end. */
const LEAVE_DEADLINE_MS = 2000

/** How long a cached limit stands: the pacer asks for it per batch, the engine per item. */
const LIMIT_CACHE_MS = 200

/**
 * One per process of a run: applies the run's live control and sets the pace.
 *
 * It reads the run record's control every second (a pause, a stop, a new run-wide limit),
 * says in its process record which change it has applied, with its heartbeat, and from the
 * live processes' records takes its share of the run-wide cap and of the shared ramp. It
 * watches its own writes (rejections for the adaptive throttle, acknowledgement latency
 * for the latency target) and names what limits the process. Time is Firestore's: the
 * offset of this machine's clock is measured on every read, so windows and the ramp agree
 * across machines whatever their clocks say.
 */
export class RunGovernor {
  private control: Control
  private readonly runId: string
  private offset = 0
  private share = 1
  private readonly throttle = new AdaptiveThrottle()
  private latency: LatencyLimit | null
  private readonly stopper = new AbortController()
  private cached: {at: number; limit: Limit} | null = null
  private shown: string | null = null
  private waiting: (() => void)[] = []
  private acked = 0
  private lastBeat = {at: Date.now(), acked: 0}
  private timers: NodeJS.Timeout[] = []
  private closed = false
  private polling = false
  private beating = false
  /** The pace writes in flight drain at while the process holds. */
  private drainRate = Infinity

  constructor(private readonly o: GovernorOptions) {
    this.runId = o.run.runId
    this.control = o.run.control
    this.latency = this.control.targetLatencyMs ? new LatencyLimit(this.control.targetLatencyMs) : null
  }

  /** Aborted when the run is stopped (`wardrobe runs stop`): the engine then does what Ctrl-C does. */
  get stopSignal(): AbortSignal {
    return this.stopper.signal
  }

  /** Paused, or outside its windows: no new item is started (writes in flight drain). */
  get holding(): boolean {
    const {reason} = this.limit()
    return reason === 'paused' || reason === 'window'
  }

  /** Resolves once the process may start items again, or on `signal` or a stop. */
  whenWriting(signal?: AbortSignal): Promise<void> {
    if (!this.holding || signal?.aborted || this.stopper.signal.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => (signal?.removeEventListener('abort', done), resolve())
      signal?.addEventListener('abort', done, {once: true})
      this.waiting.push(done)
    })
  }

  /** Firestore's time now, as measured by the last read. */
  serverNow(): number {
    return Date.now() + this.offset
  }

  limit(): Limit {
    const local = Date.now()
    if (this.cached && local - this.cached.at < LIMIT_CACHE_MS) return this.cached.limit
    const now = local + this.offset
    const c = this.control
    const win = windowState(c.windows, c.timezone ?? 'UTC', now)
    let limit = chooseLimit({
      state: c.state,
      window: win,
      share: this.share,
      cap: c.maxRate,
      ramp: this.o.emulator || !c.rampStartedAt ? null : rampAt(now - c.rampStartedAt.getTime()),
      errors: this.throttle.limit(local).limit,
      latency: this.latency?.limit(local) ?? Infinity,
    })
    if (limit.reason === 'paused') limit = {...limit, detail: lastChange(c).replace(/^pause by /, '')}
    if (limit.reason === 'window' && win.changesAt !== null)
      limit = {
        ...limit,
        detail: `goes on at ${clockIn(win.changesAt, c.timezone ?? 'UTC')} (in ${Math.ceil((win.changesAt - now) / 60_000)} min)`,
      }
    this.cached = {at: local, limit}
    return limit
  }

  /** Writes per second the pacer lets through: the limit, except that a pause lets writes in flight drain at the last pace. */
  paceRate(): number {
    const limit = this.limit()
    if (limit.perSecond === 0) return this.drainRate
    this.drainRate = limit.perSecond ?? Infinity
    return this.drainRate
  }

  /** A write's answer: `accepted` unless Firestore pushed back; its acknowledgement latency. */
  answered(accepted: boolean, latencyMs: number): void {
    const now = Date.now()
    this.throttle.record(accepted, now)
    if (accepted) {
      this.acked++
      this.latency?.record(latencyMs, now)
    }
  }

  start(): void {
    const beatMs = Math.min(5000, Math.max(250, this.o.staleAfterMs / 4))
    const pollMs = this.o.pollMs ?? CONTROL_POLL_MS
    if (pollMs > 0) this.timers.push(setInterval(() => void this.poll(), pollMs))
    this.timers.push(setInterval(() => void this.beat(), beatMs))
    this.timers.push(setInterval(() => this.refresh(), 1000))
    void this.beat()
  }

  /** The process leaves the run: its record says so, so that it no longer counts for shares or acknowledgements. */
  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearInterval(t)
    for (const wake of this.waiting.splice(0)) wake()
    // Bounded: in an outage the write would wait on the client's own retries for minutes.
    await withDeadline(
      this.o.ledger.memberHeartbeat(this.runId, {leftAt: new Date(), state: null}),
      LEAVE_DEADLINE_MS,
      'leaving the run',
    ).catch(() => {})
  }

  private async poll(): Promise<void> {
    // One read at a time: in an outage reads hang, and a new one each second would pile up.
    if (this.polling) return
    this.polling = true
    try {
      const sentAt = Date.now()
      const snap = await this.o.ledger.runRef(this.runId).get()
      this.measureOffset(sentAt, snap.readTime.toMillis())
      const run = parseRun(snap.data())
      // Any field: a change (numbered) or what the run took on when it was resumed (its ramp's start, say).
      if (JSON.stringify(run.control) !== JSON.stringify(this.control)) this.apply(run.control)
      else this.refresh()
    } catch (err) {
      this.o.logger?.debug('control read failed', {error: errorMessage(err)})
    } finally {
      this.polling = false
    }
  }

  private apply(control: Control): void {
    const before = this.control
    this.control = control
    if (control.targetLatencyMs !== before.targetLatencyMs)
      this.latency = control.targetLatencyMs ? new LatencyLimit(control.targetLatencyMs) : null
    if (control.state === 'stopping') this.stopper.abort()
    this.refresh()
    if (control.seq === before.seq) return
    this.o.logger?.info('control change applied', {
      runId: this.runId,
      seq: control.seq,
      state: control.state,
      maxRate: control.maxRate,
      change: lastChange(control),
    })
    // Acknowledged at once, not with the next heartbeat: `runs show` tells the operator it took.
    void this.beat()
  }

  /** Recomputes the limit; says so when what limits the process changed, and lets held items go once it may write. */
  private refresh(): void {
    if (this.closed) return
    this.cached = null
    const limit = this.limit()
    const text = describeLimit(limit)
    const key =
      limit.reason === 'paused' || limit.reason === 'window' || limit.reason === 'stopping' ? text : limit.reason
    if (key !== this.shown) {
      this.shown = key
      this.o.logger?.info('rate limit', {runId: this.runId, reason: limit.reason, perSecond: limit.perSecond, text})
      this.o.onChange?.(limit, text)
    }
    if (!this.holding) for (const wake of this.waiting.splice(0)) wake()
  }

  private async beat(): Promise<void> {
    if (this.closed || this.beating) return
    this.beating = true
    const local = Date.now()
    const rate = ((this.acked - this.lastBeat.acked) * 1000) / Math.max(1, local - this.lastBeat.at)
    this.lastBeat = {at: local, acked: this.acked}
    const limit = this.limit()
    const state = limit.reason === 'stopping' ? 'stopping' : limit.perSecond === 0 ? 'paused' : 'writing'
    try {
      await this.o.ledger.memberHeartbeat(this.runId, {
        seenSeq: this.control.seq,
        state,
        limit: limit.perSecond,
        reason: describeLimit(limit),
        rate: Math.round(rate),
      })
      const sentAt = Date.now()
      const snap = await this.o.ledger.membersOf(this.runId).get()
      this.measureOffset(sentAt, snap.readTime.toMillis())
      const live = liveMembers(
        snap.docs.map((d) => MemberRecordSchema.parse(d.data())),
        this.o.staleAfterMs,
        snap.readTime.toMillis(),
      )
      const share = shareOf(this.o.workers, live)
      if (share !== this.share) {
        this.o.logger?.info('rate share', {
          runId: this.runId,
          share,
          processes: live.map((m) => describeOwner(m.owner)),
        })
        this.share = share
        this.refresh()
      }
    } catch (err) {
      this.o.logger?.debug('process heartbeat failed', {error: errorMessage(err)})
    } finally {
      this.beating = false
    }
  }

  /** Firestore's read time is within the round trip: its midpoint is the best guess of this machine's time then. */
  private measureOffset(sentAt: number, readTime: number): void {
    this.offset = readTime - (sentAt + Date.now()) / 2
  }
}

/** `HH:MM` of an instant in a zone. */
function clockIn(at: number, zone: string): string {
  return (
    new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hour12: false,
    }).format(new Date(at)) + ` ${zone}`
  )
}
