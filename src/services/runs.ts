import {Firestore, Transaction} from 'firebase-admin/firestore'
import {z} from 'zod'
import type {Settings} from '../config'
import {AckStatus, ackStatus, CONTROL_ACTIONS, CONTROL_STATES, ControlAction, describeChange, describeWindows} from '../engine/control'
import {UsageError} from '../errors'
import {
  byWhom,
  CountersSchema,
  currentOwner,
  describeOwner,
  Ledger,
  liveMembers,
  MemberRecord,
  MemberRecordSchema,
  PARTITION_STATUSES,
  PartitionRecord,
  PartitionRecordSchema,
  parseRun,
  RUN_KINDS,
  RUN_STATUSES,
  RunRecord,
  RunRecordSchema,
  summarize,
  sumProgress,
} from '../engine/ledger'
import {withRetry} from '../firestore/retry'
import {describeTarget} from '../firestore/target'

/**
 * `wardrobe runs …`: the runs of a target as the ledger records them, and an operator's
 * live control of one (pause, resume, stop, throttle). Reads are one read-only snapshot;
 * ages are by Firestore's time (the snapshot's read time), never this machine's clock. A
 * process counts as live while it has not left and its heartbeat is fresh: only live
 * processes apply, and acknowledge, a change. Monitor shows the same control view
 * (`controlView`).
 */

export type RunsSettings = Pick<Settings, 'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'> & Partial<Pick<Settings, 'group'>>

const iso = z.string()

/** A process of a run, from its process record. */
export const ProcessViewSchema = z.object({
  /** user@host pid N */
  name: z.string(),
  /** Not left, heartbeat fresh (by Firestore's time). */
  live: z.boolean(),
  workers: z.number().int(),
  /** The last control change it has applied. */
  seenSeq: z.number().int(),
  state: z.enum(['writing', 'paused', 'stopping']).nullable(),
  /** Its writes per second limit (null: none) and why, as it last reported them. */
  limit: z.number().nullable(),
  reason: z.string().nullable(),
  /** Acknowledged writes per second lately. */
  rate: z.number().nullable(),
  heartbeatAgeSeconds: z.number().nullable(),
  leftAt: iso.nullable(),
})
export type ProcessView = z.infer<typeof ProcessViewSchema>

const ACK_STATUSES = ['applied', 'pending', 'not acknowledged', 'no live process'] as const satisfies readonly AckStatus['status'][]

/** A run's live control: its state, limits, windows, and whether the live processes have applied the last change. */
export const ControlViewSchema = z.object({
  state: z.enum(CONTROL_STATES),
  /** Run-wide writes per second; null: no cap. */
  maxRate: z.number().nullable(),
  targetLatencyMs: z.number().nullable(),
  /** e.g. `22:00-06:00 Europe/Paris`; null: none (always open). */
  windows: z.string().nullable(),
  seq: z.number().int(),
  lastChange: z.string().nullable(),
  /** The last change (other than the start): applied by every live process, pending (within 30 s), `not acknowledged` (past it), or `no live process`. */
  ack: z
    .object({
      seq: z.number().int(),
      change: z.string(),
      status: z.enum(ACK_STATUSES),
      /** Live processes that have not applied it. */
      waitingOn: z.array(z.string()),
    })
    .nullable(),
  /** The live processes. */
  processes: z.array(ProcessViewSchema),
})
export type ControlView = z.infer<typeof ControlViewSchema>

export const RunSummarySchema = z.object({
  runId: z.string(),
  kind: z.enum(RUN_KINDS),
  status: z.enum(RUN_STATUSES),
  environment: z.string(),
  version: z.string().nullable(),
  startedAt: iso,
  finishedAt: iso.nullable(),
  total: z.number().int().nullable(),
  ...CountersSchema.shape,
  /** 0: one worker. */
  partitions: z.number().int(),
  /** The live processes (user@host pid N); none for an ended run, or one whose processes are gone. */
  owners: z.array(z.string()),
  /** Acknowledged writes per second of the live processes together, as they last reported. */
  rate: z.number(),
  control: ControlViewSchema,
  error: z.string().nullable(),
})
export type RunSummary = z.infer<typeof RunSummarySchema>

const TargetFieldsSchema = z.object({environment: z.string(), projectId: z.string(), collection: z.string(), collectionGroup: z.boolean(), ledgerCollection: z.string()})

/** `wardrobe runs list --json`. */
export const RunListReportSchema = TargetFieldsSchema.extend({
  kind: z.literal('runs'),
  /** The run holding the target's lock. */
  activeRunId: z.string().nullable(),
  /** Newest first. */
  runs: z.array(RunSummarySchema),
})
export type RunListReport = z.infer<typeof RunListReportSchema>

/** `wardrobe runs show --json`. */
export const RunShowReportSchema = TargetFieldsSchema.extend({
  kind: z.literal('run'),
  active: z.boolean(),
  run: RunSummarySchema,
  /** Every process that took part, live or not. */
  processes: z.array(ProcessViewSchema),
  /** A sharded run's partitions by status. */
  partitions: z.record(z.enum(PARTITION_STATUSES), z.number().int()).nullable(),
  /** The recorded changes (bounded), oldest first. */
  changes: z.array(z.object({seq: z.number().int(), action: z.enum(CONTROL_ACTIONS), by: z.string(), at: iso, reason: z.string().nullable(), maxRate: z.number().nullable().optional(), text: z.string()})),
  /** The command line that resumes the run. */
  command: z.string().nullable(),
})
export type RunShowReport = z.infer<typeof RunShowReportSchema>

export const CHANGE_ACTIONS = ['pause', 'resume', 'stop', 'throttle'] as const satisfies readonly Exclude<ControlAction, 'start'>[]
export type ChangeAction = (typeof CHANGE_ACTIONS)[number]

/** `wardrobe runs pause|resume|stop|throttle --json`. */
export const RunChangeReportSchema = z.object({
  kind: z.literal('run-change'),
  runId: z.string(),
  status: z.enum(RUN_STATUSES),
  action: z.enum(CHANGE_ACTIONS),
  /** False: the run already was so; nothing was recorded. */
  changed: z.boolean(),
  state: z.enum(CONTROL_STATES),
  maxRate: z.number().nullable(),
  before: z.object({state: z.enum(CONTROL_STATES), maxRate: z.number().nullable()}),
  /** The recorded change, as `runs show` lists it. */
  change: z.string().nullable(),
  reason: z.string().nullable(),
  /** Live processes: each applies the change within seconds. */
  live: z.array(z.string()),
  /** The command line that resumes the run once no process of it runs (null if the run did not record it). */
  command: z.string().nullable(),
})
export type RunChangeReport = z.infer<typeof RunChangeReportSchema>

const ageSeconds = (at: Date | null, now: number) => (at ? Math.max(0, Math.round((now - at.getTime()) / 1000)) : null)

function processView(m: MemberRecord, live: boolean, now: number): ProcessView {
  return {
    name: describeOwner(m.owner),
    live,
    workers: m.workers,
    seenSeq: m.seenSeq,
    state: m.state,
    limit: m.limit,
    reason: m.reason,
    rate: m.rate,
    heartbeatAgeSeconds: ageSeconds(m.heartbeatAt, now),
    leftAt: m.leftAt?.toISOString() ?? null,
  }
}

const liveOf = (run: RunRecord, members: MemberRecord[], staleAfterMs: number, now: number) => (run.status === 'running' ? liveMembers(members, staleAfterMs, now) : [])

/** A run's control and its live processes at `now` (Firestore's time): what `runs` and `monitor` show. */
export function controlView(run: RunRecord, members: MemberRecord[], staleAfterMs: number, now: number): ControlView {
  const c = run.control
  const processes = liveOf(run, members, staleAfterMs, now).map((m) => processView(m, true, now))
  // An ended run applies nothing: its last change is history.
  const ack = run.status === 'running' ? ackStatus(c, processes, now) : null
  const last = c.changes[c.changes.length - 1]
  return {
    state: c.state,
    maxRate: c.maxRate,
    targetLatencyMs: c.targetLatencyMs,
    windows: describeWindows(c),
    seq: c.seq,
    lastChange: last ? describeChange(last) : null,
    ack: ack && {seq: ack.change.seq, change: describeChange(ack.change), status: ack.status, waitingOn: ack.waitingOn},
    processes,
  }
}

function runSummary(recorded: RunRecord, members: MemberRecord[], partitions: PartitionRecord[], staleAfterMs: number, now: number): RunSummary {
  // A running sharded run's record holds its counters only once it ends: until then, its partitions' sum.
  const run = recorded.status === 'running' && recorded.partitions > 0 ? {...recorded, ...sumProgress(partitions)} : recorded
  const control = controlView(run, members, staleAfterMs, now)
  return {
    runId: run.runId,
    kind: run.kind,
    status: run.status,
    environment: run.environment,
    version: run.version,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    total: run.total,
    ...run.counters,
    partitions: run.partitions,
    owners: control.processes.map((p) => p.name),
    rate: control.processes.reduce((n, p) => n + (p.rate ?? 0), 0),
    control,
    error: run.error,
  }
}

interface RunRead {
  run: RunRecord
  members: MemberRecord[]
  partitions: PartitionRecord[]
}

/** A run's processes and partitions, in the caller's snapshot; an ended run's processes are gone and its counters final. */
async function readDetails(tx: Transaction, ledger: Ledger, run: RunRecord, all: boolean): Promise<RunRead> {
  if (!all && run.status !== 'running') return {run, members: [], partitions: []}
  const [members, partitions] = await Promise.all([
    tx.get(ledger.membersOf(run.runId)),
    run.partitions > 0 ? tx.get(ledger.partitionsOf(run.runId).orderBy('index')) : Promise.resolve(null),
  ])
  return {run, members: members.docs.map((d) => MemberRecordSchema.parse(d.data())), partitions: partitions?.docs.map((d) => PartitionRecordSchema.parse(d.data())) ?? []}
}

function snapshot<T>(db: Firestore, read: (tx: Transaction) => Promise<T>): Promise<T> {
  return withRetry(() => db.runTransaction(read, {readOnly: true}))
}

const targetFields = (s: RunsSettings) => ({environment: s.environment, projectId: s.projectId, collection: s.collection, collectionGroup: s.group ?? false, ledgerCollection: s.ledgerCollection})
const where = (s: RunsSettings) => `${describeTarget({collection: s.collection, group: s.group ?? false})} of project ${s.projectId}`

/** The runs of the target, newest first (at most `limit`), with the control and live processes of each running one. */
export async function listRuns(db: Firestore, settings: RunsSettings, options: {limit?: number} = {}): Promise<RunListReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const group = settings.group ?? false
  const {reads, activeRunId, now} = await snapshot(db, async (tx) => {
    const [snap, active] = await Promise.all([tx.get(ledger.runs().where('collection', '==', settings.collection)), ledger.activeRunId(settings.collection)])
    // A record that is not a run's (another tool's, an older layout) is left out, as monitor does.
    const runs = snap.docs
      .flatMap((d) => {
        const parsed = RunRecordSchema.safeParse(d.data())
        return parsed.success && parsed.data.group === group ? [parsed.data] : []
      })
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      .slice(0, options.limit ?? 20)
    return {reads: await Promise.all(runs.map((r) => readDetails(tx, ledger, r, false))), activeRunId: active, now: snap.readTime.toMillis()}
  })
  return RunListReportSchema.parse({
    kind: 'runs',
    ...targetFields(settings),
    activeRunId,
    runs: reads.map((r) => runSummary(r.run, r.members, r.partitions, settings.staleAfterMs, now)),
  })
}

/** Which run a command acts on without `--run`: the one holding the target's lock, else (show) the newest, or (resume) the newest unfinished one. */
type Fallback = 'none' | 'newest' | 'unfinished'

/** The run to act on: `runId` when given, else by `fallback`. A one-line error with the fix when there is none. */
async function resolveRunId(ledger: Ledger, settings: RunsSettings, runId: string | undefined, fallback: Fallback): Promise<string> {
  if (runId !== undefined) return runId
  const active = await ledger.activeRunId(settings.collection)
  if (active) return active
  const mine = (r: RunRecord) => r.group === (settings.group ?? false)
  const unfinished = (r: RunRecord) => (r.status === 'interrupted' || r.status === 'failed') && r.undoneBy === null
  const runs = fallback === 'none' ? [] : await ledger.list(settings.collection)
  const found = runs.find((r) => mine(r) && (fallback === 'newest' || unfinished(r)))
  if (found) return found.runId
  const what = fallback === 'newest' ? `no run is recorded in ${settings.ledgerCollection}` : fallback === 'unfinished' ? 'no run is active or unfinished' : 'no run is active'
  throw new UsageError(`${what} for ${where(settings)}`, `pass --run ID (\`wardrobe runs list\` lists the runs), or check --environment, --project, --collection and --ledger-collection`)
}

const noSuchRun = (runId: string, settings: RunsSettings) =>
  new UsageError(`no run ${runId} in ${settings.ledgerCollection} of project ${settings.projectId}`, 'list the runs with `wardrobe runs list` (same --environment, --project and --ledger-collection)')

/** One run in full: its control and history, every process, its partitions. Defaults to the active run, else the newest. */
export async function showRun(db: Firestore, settings: RunsSettings, options: {runId?: string} = {}): Promise<RunShowReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runId = await resolveRunId(ledger, settings, options.runId, 'newest')
  const read = await snapshot(db, async (tx) => {
    const [snap, active] = await Promise.all([tx.get(ledger.runRef(runId)), ledger.activeRunId(settings.collection)])
    if (!snap.exists) return null
    return {...(await readDetails(tx, ledger, parseRun(snap.data()), true)), active: active === runId, now: snap.readTime.toMillis()}
  })
  if (!read) throw noSuchRun(runId, settings)
  const {run, members, partitions, now} = read
  const live = new Set(liveOf(run, members, settings.staleAfterMs, now))
  return RunShowReportSchema.parse({
    kind: 'run',
    ...targetFields(settings),
    active: read.active,
    run: runSummary(run, members, partitions, settings.staleAfterMs, now),
    processes: members.map((m) => processView(m, live.has(m), now)).sort((a, b) => Number(b.live) - Number(a.live)),
    partitions: run.partitions > 0 ? summarize(partitions, settings.staleAfterMs, now).byStatus : null,
    changes: run.control.changes.map((c) => ({...c, at: c.at.toISOString(), text: describeChange(c)})),
    command: run.command,
  })
}

/** `--max-rate N|off` of `runs throttle`: writes per second for the whole run, or null (no cap). */
export function parseMaxRate(text: string): number | null {
  if (text.trim().toLowerCase() === 'off') return null
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN
  if (!(n >= 1)) throw new UsageError(`--max-rate ${text} is not a rate`, 'pass --max-rate N, writes per second for the whole run (an integer of at least 1), or --max-rate off to lift the limit')
  return n
}

export interface ChangeRequest {
  action: ChangeAction
  /** Default: the run holding the target's lock (resume: else the newest unfinished run, to print its command). */
  runId?: string
  reason?: string
  /** throttle: run-wide writes per second, null: off. */
  maxRate?: number | null
}

/**
 * An operator's change to a run's control, recorded on the run record with who (user@host),
 * when (Firestore's time) and why; every live process applies it within seconds and says
 * so in its process record. `confirm` (a production stop) is asked once the run is known.
 * A change that changes nothing is reported unchanged; one that means nothing (an ended
 * run, stopping a run no process runs) is refused with a usage error.
 */
export async function changeRun(db: Firestore, settings: RunsSettings, req: ChangeRequest, hooks: {confirm?: (what: string) => Promise<void>} = {}): Promise<RunChangeReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runId = await resolveRunId(ledger, settings, req.runId, req.action === 'resume' ? 'unfinished' : 'none')
  const before = await ledger.get(runId)
  if (!before) throw noSuchRun(runId, settings)
  await hooks.confirm?.(`${req.action} run ${runId}`)
  const result = await ledger.changeControl(runId, req.action, {by: byWhom(currentOwner()), reason: req.reason ?? null, maxRate: req.maxRate})
  const {run} = result
  const live = liveOf(run, result.members, settings.staleAfterMs, result.now).map((m) => describeOwner(m.owner))
  const last = run.control.changes[run.control.changes.length - 1]
  return RunChangeReportSchema.parse({
    kind: 'run-change',
    runId,
    status: run.status,
    action: req.action,
    changed: result.changed,
    state: run.control.state,
    maxRate: run.control.maxRate,
    before: {state: before.control.state, maxRate: before.control.maxRate},
    change: result.changed && last ? describeChange(last) : null,
    reason: req.reason ?? null,
    live,
    command: run.command,
  })
}
