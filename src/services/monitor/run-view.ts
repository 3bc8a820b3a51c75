import {
  describeOwner,
  holderGone,
  MemberRecord,
  PartitionRecord,
  RunRecord,
  shardedRunGone,
  summarize,
} from '../../engine/ledger'
import {controlView} from '../runs/view'
import {CommandContext, resumeCommandFor} from '../../engine/run-identity'
import {floor1, MonitorSettings, RunView} from './schema'

/** A run record as monitor shows it: live or stalled, its rate and ETA, its resume command and control. */

const seconds = (ms: number) => Math.max(0, ms) / 1000

/** A running sharded run seen through its partitions: their newest heartbeat, and stalled only when no lease on it is live. */
function shardedView(
  recorded: RunRecord,
  partitions: PartitionRecord[],
  members: MemberRecord[] | undefined,
  staleAfterMs: number,
  now: number,
): {run: RunRecord; stalledReason: string | null; partitions: RunView['partitions']} {
  const summary = summarize(partitions, staleAfterMs, now)
  const beats = partitions.flatMap((p) => (p.heartbeatAt ? [p.heartbeatAt.getTime()] : []))
  const heartbeatAt = new Date(Math.max(recorded.heartbeatAt.getTime(), ...beats))
  const {byStatus, live} = summary
  return {
    run: {...recorded, heartbeatAt},
    stalledReason: shardedRunGone(recorded, summary, staleAfterMs, now, members),
    partitions: {
      total: partitions.length,
      done: byStatus.done,
      running: live.length,
      stalled: byStatus.running - live.length,
      pending: byStatus.pending,
      interrupted: byStatus.interrupted,
      failed: byStatus.failed,
      workers: new Set(live.map((p) => (p.owner ? describeOwner(p.owner) : ''))).size,
    },
  }
}

export function runView(
  recorded: RunRecord,
  settings: MonitorSettings,
  ctx: CommandContext,
  currentVersion: string,
  now: number,
  previous?: RunView,
  partitions?: PartitionRecord[],
  members?: MemberRecord[],
): RunView {
  const sharded =
    recorded.status === 'running' && recorded.partitions > 0
      ? shardedView(recorded, partitions ?? [], members, settings.staleAfterMs, now)
      : null
  const run = sharded?.run ?? recorded
  const stalledReason = sharded
    ? sharded.stalledReason
    : run.status === 'running'
      ? holderGone(run, settings.staleAfterMs, now)
      : null
  const status: RunView['status'] = stalledReason ? 'stalled' : run.status
  const c = run.counters
  const end = run.finishedAt ?? run.heartbeatAt
  let rate = c.scanned > 0 ? c.scanned / Math.max(seconds(end.getTime() - run.startedAt.getTime()), 0.001) : 0
  // Between two samples of a live run: what it does now, not its average since its first start.
  if (previous && status === 'running') {
    const dt = seconds(run.heartbeatAt.getTime() - Date.parse(previous.heartbeatAt))
    if (dt > 0 && c.scanned >= previous.scanned) rate = (c.scanned - previous.scanned) / dt
    // No checkpoint since the last sample (they come every few seconds): keep the last measure.
    else if (dt === 0 && previous.status === 'running') rate = previous.rate
  }
  const left = run.total === null ? null : Math.max(0, run.total - c.scanned)
  const resumable = status === 'stalled' || run.status === 'interrupted' || run.status === 'failed'
  return {
    runId: run.runId,
    kind: run.kind,
    status,
    stalledReason,
    environment: run.environment,
    version: run.version,
    force: typeof run.options.force === 'boolean' ? run.options.force : null,
    batchSize: typeof run.options.batchSize === 'number' ? run.options.batchSize : null,
    owner: describeOwner(run.owner),
    startedAt: run.startedAt.toISOString(),
    heartbeatAt: run.heartbeatAt.toISOString(),
    heartbeatAgeSeconds: Math.round(seconds(now - run.heartbeatAt.getTime())),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    total: run.total,
    ...c,
    percent: run.total ? floor1((100 * Math.min(c.scanned, run.total)) / run.total) : null,
    rate: Math.round(rate),
    etaSeconds: status === 'running' && left !== null && rate > 0 ? Math.round(left / rate) : null,
    resumes: run.resumes,
    error: run.error,
    partitions:
      sharded?.partitions ??
      (run.partitions > 0
        ? {total: run.partitions, done: 0, running: 0, stalled: 0, pending: 0, interrupted: 0, failed: 0, workers: 0}
        : null),
    resumeCommand: resumable ? resumeCommandFor(run, ctx, currentVersion) : null,
    control: recorded.status === 'running' ? controlView(recorded, members ?? [], settings.staleAfterMs, now) : null,
  }
}
