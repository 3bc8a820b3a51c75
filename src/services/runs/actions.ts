import {Firestore, Transaction} from 'firebase-admin/firestore'
import {describeChange} from '../../engine/control'
import {UsageError} from '../../errors'
import {
  byWhom,
  currentOwner,
  describeOwner,
  Ledger,
  MemberRecord,
  MemberRecordSchema,
  PartitionRecord,
  PartitionRecordSchema,
  parseRun,
  RunRecord,
  RunRecordSchema,
  summarize,
} from '../../engine/ledger'
import {withRetry} from '../../firestore/retry'
import {runTransaction} from '../../firestore/transaction'
import {describeTarget} from '../../firestore/target'
import {
  ChangeAction,
  RunChangeReport,
  RunChangeReportSchema,
  RunListReport,
  RunListReportSchema,
  RunShowReport,
  RunShowReportSchema,
  RunsSettings,
} from './schema'
import {liveOf, processView, runSummary} from './view'

/**
 * `wardrobe runs …`: the runs of a target as the ledger records them, and an operator's
 * live control of one (pause, resume, stop, throttle). Reads are one read-only snapshot;
 * ages are by Firestore's time (the snapshot's read time), never this machine's clock. A
 * process counts as live while it has not left and its heartbeat is fresh: only live
 * processes apply, and acknowledge, a change. Monitor shows the same control view
 * (`controlView`).
 */

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
  return {
    run,
    members: members.docs.map((d) => MemberRecordSchema.parse(d.data())),
    partitions: partitions?.docs.map((d) => PartitionRecordSchema.parse(d.data())) ?? [],
  }
}

function snapshot<T>(db: Firestore, read: (tx: Transaction) => Promise<T>): Promise<T> {
  return withRetry(() => runTransaction(db, read, {readOnly: true}))
}

const targetFields = (s: RunsSettings) => ({
  environment: s.environment,
  projectId: s.projectId,
  collection: s.collection,
  collectionGroup: s.group ?? false,
  ledgerCollection: s.ledgerCollection,
})
const where = (s: RunsSettings) =>
  `${describeTarget({collection: s.collection, group: s.group ?? false})} of project ${s.projectId}`

/** The runs of the target, newest first (at most `limit`), with the control and live processes of each running one. */
export async function listRuns(
  db: Firestore,
  settings: RunsSettings,
  options: {limit?: number} = {},
): Promise<RunListReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const group = settings.group ?? false
  const {reads, activeRunId, now} = await snapshot(db, async (tx) => {
    const [snap, active] = await Promise.all([
      tx.get(ledger.runs().where('collection', '==', settings.collection)),
      ledger.activeRunId(settings.collection),
    ])
    // A record that is not a run's (another tool's, an older layout) is left out, as monitor does.
    const runs = snap.docs
      .flatMap((d) => {
        const parsed = RunRecordSchema.safeParse(d.data())
        return parsed.success && parsed.data.group === group ? [parsed.data] : []
      })
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      .slice(0, options.limit ?? 20)
    return {
      reads: await Promise.all(runs.map((r) => readDetails(tx, ledger, r, false))),
      activeRunId: active,
      now: snap.readTime.toMillis(),
    }
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
async function resolveRunId(
  ledger: Ledger,
  settings: RunsSettings,
  runId: string | undefined,
  fallback: Fallback,
): Promise<string> {
  if (runId !== undefined) return runId
  const active = await ledger.activeRunId(settings.collection)
  if (active) return active
  const mine = (r: RunRecord) => r.group === (settings.group ?? false)
  const unfinished = (r: RunRecord) => (r.status === 'interrupted' || r.status === 'failed') && r.undoneBy === null
  const runs = fallback === 'none' ? [] : await ledger.list(settings.collection)
  const found = runs.find((r) => mine(r) && (fallback === 'newest' || unfinished(r)))
  if (found) return found.runId
  const what =
    fallback === 'newest'
      ? `no run is recorded in ${settings.ledgerCollection}`
      : fallback === 'unfinished'
        ? 'no run is active or unfinished'
        : 'no run is active'
  throw new UsageError(
    `${what} for ${where(settings)}`,
    `pass --run ID (\`wardrobe runs list\` lists the runs), or check --environment, --project, --collection and --ledger-collection`,
  )
}

const noSuchRun = (runId: string, settings: RunsSettings) =>
  new UsageError(
    `no run ${runId} in ${settings.ledgerCollection} of project ${settings.projectId}`,
    'list the runs with `wardrobe runs list` (same --environment, --project and --ledger-collection)',
  )

/** One run in full: its control and history, every process, its partitions. Defaults to the active run, else the newest. */
export async function showRun(
  db: Firestore,
  settings: RunsSettings,
  options: {runId?: string} = {},
): Promise<RunShowReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runId = await resolveRunId(ledger, settings, options.runId, 'newest')
  const read = await snapshot(db, async (tx) => {
    const [snap, active] = await Promise.all([tx.get(ledger.runRef(runId)), ledger.activeRunId(settings.collection)])
    if (!snap.exists) return null
    return {
      ...(await readDetails(tx, ledger, parseRun(snap.data()), true)),
      active: active === runId,
      now: snap.readTime.toMillis(),
    }
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
    planHash: run.planHash,
  })
}

/** `--max-rate N|off` of `runs throttle`: writes per second for the whole run, or null (no cap). */
export function parseMaxRate(text: string): number | null {
  if (text.trim().toLowerCase() === 'off') return null
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN
  if (!(n >= 1))
    throw new UsageError(
      `--max-rate ${text} is not a rate`,
      'pass --max-rate N, writes per second for the whole run (an integer of at least 1), or --max-rate off to lift the limit',
    )
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
export async function changeRun(
  db: Firestore,
  settings: RunsSettings,
  req: ChangeRequest,
  hooks: {confirm?: (what: string) => Promise<void>} = {},
): Promise<RunChangeReport> {
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runId = await resolveRunId(ledger, settings, req.runId, req.action === 'resume' ? 'unfinished' : 'none')
  const before = await ledger.get(runId)
  if (!before) throw noSuchRun(runId, settings)
  await hooks.confirm?.(`${req.action} run ${runId}`)
  const result = await ledger.changeControl(runId, req.action, {
    by: byWhom(currentOwner()),
    reason: req.reason ?? null,
    maxRate: req.maxRate,
  })
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
