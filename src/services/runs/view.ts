import {ackStatus, describeChange, describeWindows} from '../../engine/control'
import {describeOwner, liveMembers, MemberRecord, PartitionRecord, RunRecord, sumProgress} from '../../engine/ledger'
import type {ControlView, ProcessView, RunSummary} from './schema'

/** Run records as `runs` (and, for control, monitor) show them, at a given Firestore time. */

const ageSeconds = (at: Date | null, now: number) => (at ? Math.max(0, Math.round((now - at.getTime()) / 1000)) : null)

export function processView(m: MemberRecord, live: boolean, now: number): ProcessView {
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

export const liveOf = (run: RunRecord, members: MemberRecord[], staleAfterMs: number, now: number) =>
  run.status === 'running' ? liveMembers(members, staleAfterMs, now) : []

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

export function runSummary(
  recorded: RunRecord,
  members: MemberRecord[],
  partitions: PartitionRecord[],
  staleAfterMs: number,
  now: number,
): RunSummary {
  // A running sharded run's record holds its counters only once it ends: until then, its partitions' sum.
  const run =
    recorded.status === 'running' && recorded.partitions > 0 ? {...recorded, ...sumProgress(partitions)} : recorded
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
