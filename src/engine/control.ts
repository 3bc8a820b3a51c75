import {Timestamp} from 'firebase-admin/firestore'
import {z} from 'zod'
import {WindowSchema, WindowState} from '../domain/windows'

/**
 * Live control of a run, kept on its run record so that every process of the run, on any
 * machine, obeys the same state: pause, stop, a run-wide rate limit and maintenance
 * windows. Operators change it with `wardrobe runs …`; each process reads it with its
 * control poll and records in its process record which change it has applied.
 *
 * Pure rules only (no I/O; time is a parameter): what a window says at an instant, the
 * closed-loop limits (client-side adaptive throttling on rejected writes, AIMD on write
 * latency), how a process's limit is chosen and named, whether a change is acknowledged.
 */

/** Firestore hands Timestamps back; records carry Dates (the run ledger's records use it too). */
export const date = z.preprocess((v) => (v instanceof Timestamp ? v.toDate() : v), z.date())

export const CONTROL_STATES = ['running', 'paused', 'stopping'] as const
export type ControlState = (typeof CONTROL_STATES)[number]
export const CONTROL_ACTIONS = ['start', 'pause', 'resume', 'stop', 'throttle'] as const
export type ControlAction = (typeof CONTROL_ACTIONS)[number]

export const ControlChangeSchema = z.object({
  seq: z.number().int(),
  action: z.enum(CONTROL_ACTIONS),
  /** user@host of whoever made it. */
  by: z.string(),
  at: date,
  reason: z.string().nullable().default(null),
  /** A throttle's (or a start's) run-wide limit; null: off. */
  maxRate: z.number().nullable().optional(),
})
export type ControlChange = z.infer<typeof ControlChangeSchema>

export const ControlSchema = z.object({
  state: z.enum(CONTROL_STATES).default('running'),
  /** Run-wide writes per second, split among the live processes by their workers; null: no cap. */
  maxRate: z.number().nullable().default(null),
  /** p95 write acknowledgement latency each process keeps its rate under; null: not watched. */
  targetLatencyMs: z.number().int().nullable().default(null),
  windows: z.array(WindowSchema).default([]),
  timezone: z.string().nullable().default(null),
  /** Firestore's time the shared 500/50/5 ramp counts from (a run's start, or its resumption with no process alive). */
  rampStartedAt: date.nullable().default(null),
  /** Number of the last change: a process's `seenSeq` says which it has applied. */
  seq: z.number().int().default(0),
  /** The last changes, oldest first (bounded). */
  changes: z.array(ControlChangeSchema).default([]),
})
export type Control = z.infer<typeof ControlSchema>

/** Changes kept on the record: enough for an incident's story, bounded so the record stays small. */
export const MAX_CHANGES = 50

/** Within this a live process reads a change (issue: 5 s; gh-ost checks every 100 ms, maintenance_tasks every 1 s). */
export const CONTROL_POLL_MS = 1000
/** A change no live process has applied after this shows as not acknowledged. */
export const ACK_TIMEOUT_MS = 30_000

/** Firestore's 500/50/5 rule: start at 500 ops/s, +50% every 5 minutes. */
export const RAMP = {initialOpsPerSecond: 500, growth: 1.5, stepMinutes: 5, maxOpsPerSecond: 10_000} as const

/** The run-wide ramp at `elapsedMs` since the run's ramp start. */
export function rampAt(elapsedMs: number): number {
  const ramp =
    RAMP.initialOpsPerSecond * RAMP.growth ** Math.floor(Math.max(0, elapsedMs) / (RAMP.stepMinutes * 60_000))
  return Math.min(ramp, RAMP.maxOpsPerSecond)
}

export const describeWindows = (c: Pick<Control, 'windows' | 'timezone'>): string | null =>
  c.windows.length === 0 ? null : `${c.windows.map((w) => `${w.start}-${w.end}`).join(', ')} ${c.timezone ?? 'UTC'}`

// ---- closed loop

/** Codes that say Firestore is pushing back (the SRE book's "rejected" requests). */
export const PUSHBACK_CODES = new Set([
  8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */, 4 /* DEADLINE_EXCEEDED */, 10 /* ABORTED */,
])

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"; Beam's Firestore
 * connector): over a two-minute window in 10 s buckets, reject probability
 * max(0, (requests − K·accepts) / (requests + 1)). Here the same rule caps the rate at
 * K × the accepted rate while it is positive: the run sends little more than Firestore
 * takes, and recovers as accepts fill the window again.
 */
export class AdaptiveThrottle {
  static readonly K = 1.25
  static readonly WINDOW_MS = 120_000
  static readonly BUCKET_MS = 10_000
  private readonly buckets = new Map<number, {requests: number; accepts: number}>()

  record(accepted: boolean, now: number): void {
    const key = Math.floor(now / AdaptiveThrottle.BUCKET_MS)
    let b = this.buckets.get(key)
    if (!b) {
      this.buckets.set(key, (b = {requests: 0, accepts: 0}))
      for (const k of this.buckets.keys())
        if (k <= key - AdaptiveThrottle.WINDOW_MS / AdaptiveThrottle.BUCKET_MS) this.buckets.delete(k)
    }
    b.requests++
    if (accepted) b.accepts++
  }

  /** The reject probability and the limit it implies (Infinity while nothing is rejected). */
  limit(now: number): {rejectProbability: number; limit: number} {
    const oldest =
      Math.floor(now / AdaptiveThrottle.BUCKET_MS) - AdaptiveThrottle.WINDOW_MS / AdaptiveThrottle.BUCKET_MS
    let requests = 0
    let accepts = 0
    let first = Infinity
    for (const [k, b] of this.buckets) {
      if (k <= oldest) continue
      requests += b.requests
      accepts += b.accepts
      first = Math.min(first, k)
    }
    const p = Math.max(0, (requests - AdaptiveThrottle.K * accepts) / (requests + 1))
    if (p === 0) return {rejectProbability: 0, limit: Infinity}
    const seconds = Math.max(1, (now - first * AdaptiveThrottle.BUCKET_MS) / 1000)
    return {rejectProbability: p, limit: Math.max(1, (AdaptiveThrottle.K * accepts) / seconds)}
  }
}

/**
 * AIMD on the p95 acknowledgement latency of recent writes (`--target-latency-ms`): above
 * the target the limit is cut to 70% of the rate achieved over the last seconds (at most
 * once a second, each cut from the last); at or below it, it rises by a fixed step a
 * second, a twentieth of the rate achieved before the first cut, so it is back there about
 * 20 s after the latency went away, and it lifts once it no longer binds.
 */
export class LatencyLimit {
  static readonly SAMPLE_MS = 5000
  static readonly MIN_SAMPLES = 10
  static readonly CUT = 0.7
  static readonly STEPS_TO_RECOVER = 20
  private samples: {at: number; ms: number}[] = []
  private current = Infinity
  private step = 1
  private lastAdjust = 0

  constructor(readonly targetMs: number) {}

  record(latencyMs: number, now: number): void {
    this.samples.push({at: now, ms: latencyMs})
  }

  /** The p95 latency and the acknowledged writes per second over the sample window, or null with too few samples to judge. */
  recent(now: number): {p95: number; achieved: number} | null {
    let drop = 0
    while (drop < this.samples.length && now - this.samples[drop].at > LatencyLimit.SAMPLE_MS) drop++
    if (drop > 0) this.samples = this.samples.slice(drop)
    if (this.samples.length < LatencyLimit.MIN_SAMPLES) return null
    const sorted = this.samples.map((s) => s.ms).sort((a, b) => a - b)
    const span = Math.max(1000, now - this.samples[0].at)
    return {
      p95: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))],
      achieved: (this.samples.length * 1000) / span,
    }
  }

  /** The limit now; adjusts at most once a second. */
  limit(now: number): number {
    if (now - this.lastAdjust < 1000) return this.current
    this.lastAdjust = now
    const recent = this.recent(now)
    if (recent !== null && recent.p95 > this.targetMs) {
      if (this.current === Infinity) this.step = Math.max(1, recent.achieved / LatencyLimit.STEPS_TO_RECOVER)
      this.current = Math.max(1, Math.min(this.current, recent.achieved) * LatencyLimit.CUT)
    } else if (this.current !== Infinity) {
      // Under the target, or too few writes lately to judge (a deep cut writes little): probe upwards.
      this.current += this.step
      // No longer the bound: the process achieves well below it.
      if (recent !== null && this.current > 2 * recent.achieved + this.step * LatencyLimit.STEPS_TO_RECOVER)
        this.current = Infinity
    }
    return this.current
  }
}

// ---- the limit a process writes under

export const LIMIT_REASONS = ['ramp', 'cap', 'errors', 'latency', 'window', 'paused', 'stopping', 'none'] as const
export type LimitReason = (typeof LIMIT_REASONS)[number]

export interface Limit {
  /** Writes per second for this process; 0 while paused; null: no limit. */
  perSecond: number | null
  reason: LimitReason
  /** For `paused`: who and why; for `window`: when it opens again. */
  detail?: string
}

/**
 * The tightest of the limits on this process, named by what sets it: a pause or a closed
 * window stops it; otherwise the least of its share of the run-wide cap, its share of the
 * shared ramp, and the closed loop's limits.
 */
export function chooseLimit(l: {
  state: ControlState
  window: WindowState
  share: number
  cap: number | null
  ramp: number | null
  errors: number
  latency: number
}): Limit {
  if (l.state === 'stopping') return {perSecond: 0, reason: 'stopping'}
  if (l.state === 'paused') return {perSecond: 0, reason: 'paused'}
  if (!l.window.open) return {perSecond: 0, reason: 'window'}
  const candidates: [number, LimitReason][] = [
    [l.cap === null ? Infinity : l.cap * l.share, 'cap'],
    [l.ramp === null ? Infinity : l.ramp * l.share, 'ramp'],
    [l.errors, 'errors'],
    [l.latency, 'latency'],
  ]
  let best: [number, LimitReason] = [Infinity, 'none']
  for (const c of candidates) if (c[0] < best[0]) best = c
  return best[0] === Infinity ? {perSecond: null, reason: 'none'} : {perSecond: Math.max(best[0], 0.1), reason: best[1]}
}

export function describeLimit(limit: Pick<Limit, 'perSecond' | 'reason' | 'detail'>): string {
  if (limit.reason === 'paused') return limit.detail ? `paused by ${limit.detail}` : 'paused'
  if (limit.reason === 'window') return `outside its window${limit.detail ? `: ${limit.detail}` : ''}`
  if (limit.reason === 'stopping') return 'stopping'
  if (limit.perSecond === null) return 'no limit'
  return `limit ${limit.perSecond < 10 ? limit.perSecond.toFixed(1) : Math.round(limit.perSecond)}/s (${limit.reason})`
}

/** This process's share of the run-wide cap and ramp: its workers among every live process's. */
export function shareOf(mine: number, live: {workers: number}[]): number {
  const all = live.reduce((n, m) => n + m.workers, 0)
  return all > 0 ? Math.min(1, mine / all) : 1
}

// ---- acknowledgement

export interface AckStatus {
  change: ControlChange
  /** `applied`: every live process has it; `pending`: not yet, within ACK_TIMEOUT_MS; `not acknowledged`: past it. */
  status: 'applied' | 'pending' | 'not acknowledged' | 'no live process'
  /** Live processes that have not applied it. */
  waitingOn: string[]
}

/** Whether the live processes (by `seenSeq`) have applied the last change, judged at `now` (Firestore's time). */
export function ackStatus(control: Control, live: {seenSeq: number; name: string}[], now: number): AckStatus | null {
  const change = control.changes[control.changes.length - 1]
  if (!change || change.action === 'start') return null
  if (live.length === 0) return {change, status: 'no live process', waitingOn: []}
  const waitingOn = live.filter((m) => m.seenSeq < change.seq).map((m) => m.name)
  if (waitingOn.length === 0) return {change, status: 'applied', waitingOn}
  return {change, status: now - change.at.getTime() > ACK_TIMEOUT_MS ? 'not acknowledged' : 'pending', waitingOn}
}

export function describeChange(c: ControlChange): string {
  const rate = c.maxRate == null ? (c.action === 'start' ? ' (no max rate)' : ' off') : ` ${c.maxRate}/s`
  const what = c.action === 'throttle' || c.action === 'start' ? `${c.action}${rate}` : c.action
  return `${what} by ${c.by} at ${c.at.toISOString()}${c.reason ? `: ${c.reason}` : ''}`
}
