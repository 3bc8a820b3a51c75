import {z} from 'zod'
import {ACK_TIMEOUT_MS} from '../../engine/control'
import {formatDuration} from '../../format'
import {
  Counts,
  ErrorSummary,
  FailOnLevel,
  floor1,
  Health,
  HealthStatus,
  Issue,
  IssueLevel,
  RunView,
  UnmappedSummary,
} from './schema'
import {compareVersions, VersionBasis} from './versions'

/** Monitor's health: thresholds, and the rules that turn what it read into issues and recommendations. */

const RANK: Record<HealthStatus | IssueLevel, number> = {idle: 0, healthy: 0, info: 0, warning: 1, critical: 2}

/** True when `status` is at or past `level` (idle ranks with healthy). */
export function healthAtOrPast(status: HealthStatus, level: FailOnLevel): boolean {
  return RANK[status] >= RANK[level]
}

export const HealthThresholdsSchema = z.object({
  /** Error items per scanned item of the latest backfill run. */
  errorRateWarning: z.number().min(0).max(1),
  errorRateCritical: z.number().min(0).max(1),
  /** Unmapped value occurrences per scanned item of the latest backfill run. */
  unmappedRateWarning: z.number().min(0),
  /** A live run whose heartbeat is older than this share of the stale limit is flagged. */
  heartbeatWarningFraction: z.number().min(0).max(1),
})
export type HealthThresholds = z.infer<typeof HealthThresholdsSchema>

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  errorRateWarning: 0.05,
  errorRateCritical: 0.25,
  unmappedRateWarning: 0.05,
  heartbeatWarningFraction: 0.5,
}

export interface HealthFacts {
  counts: Counts
  /** Runs recorded as running: live or stalled. */
  active: RunView[]
  /** The newest backfill run (any status but superseded), or null when none has run. */
  latestBackfill: RunView | null
  errors: ErrorSummary
  unmapped: UnmappedSummary
  staleAfterSeconds: number
  ledgerCollection: string
  /** The vocabulary version the counts are measured against. */
  version: string
  /** Where that version came from. */
  basis: VersionBasis
  /** A fresh backfill (and its dry run) at that version, for the target. */
  commands: {backfill: string; dryRun: string}
}

const pct = (rate: number) => `${(rate * 100).toFixed(1)}%`
const of = (r: RunView) => `${r.scanned}/${r.total ?? '?'} items`

/**
 * The health rules, as a pure function of what monitor read. Status is the worst issue
 * level; with nothing at warning or worse it is `idle` when nothing runs and no backfill
 * has run yet (or the collection is empty), else `healthy`. Rules:
 * - a stalled run: critical, with the command that resumes it;
 * - the latest backfill failed: critical; interrupted: warning (resume command);
 * - error items over errorRateWarning of the scanned items: warning (critical over errorRateCritical);
 * - items at older versions, or items left without `normalized` beyond the error items,
 *   while no backfill runs: warning (the backfill command);
 * - unmapped values over unmappedRateWarning per scanned item: warning (extend the vocabulary);
 * - a live run's heartbeat late, or a live backfill writing another version than measured: warning;
 * - a control change (pause, stop, throttle) some live process has not applied within 30 s: warning;
 * - items at versions newer than the judged one: warning, and no recommendation of any backfill
 *   (fresh or resumed) that would rewrite them to an older vocabulary.
 */
export function assessHealth(facts: HealthFacts, thresholds: HealthThresholds = DEFAULT_THRESHOLDS): Health {
  const {counts, active, latestBackfill, errors, unmapped, commands} = facts
  const issues: Issue[] = []
  const add = (level: IssueLevel, code: string, message: string, recommendation: string | null = null) =>
    issues.push({level, code, message, recommendation})
  const live = active.filter((r) => r.status === 'running')
  const liveBackfills = live.filter((r) => r.kind === 'backfill')
  const stalledBackfill = active.some((r) => r.status === 'stalled' && r.kind === 'backfill')

  // A backfill writing `version` rewrites every item at another version: never recommend one over newer items.
  const newerThan = (version: string | null) =>
    version === null ? [] : counts.versions.filter((v) => v.count > 0 && (compareVersions(v.version, version) ?? 1) > 0)
  const listed = (vs: Counts['versions']) => vs.map((v) => `${v.version}: ${v.count}`).join(', ')
  /** The recommendation, or null with the reason appended to the message when it would downgrade items. */
  const unlessDowngrade = (
    version: string | null,
    message: string,
    recommendation: string,
  ): [string, string | null] => {
    const above = newerThan(version)
    if (above.length === 0) return [message, recommendation]
    return [
      `${message}; a backfill at ${version} would rewrite the items at newer versions (${listed(above)}), so none is recommended`,
      null,
    ]
  }
  const resume = (r: RunView, message: string, advice: string) =>
    r.kind === 'backfill' ? unlessDowngrade(r.version, message, advice) : ([message, advice] as [string, string])

  for (const r of active) {
    if (r.status === 'stalled') {
      add(
        'critical',
        'run-stalled',
        ...resume(
          r,
          `${r.kind} run ${r.runId} stalled (${r.stalledReason}); last checkpoint at ${of(r)}; ${r.owner}`,
          `resume it: ${r.resumeCommand}`,
        ),
      )
    } else if (r.heartbeatAgeSeconds > facts.staleAfterSeconds * thresholds.heartbeatWarningFraction) {
      add(
        'warning',
        'heartbeat-late',
        `${r.kind} run ${r.runId} last reported ${formatDuration(r.heartbeatAgeSeconds)} ago; it counts as stalled after ${formatDuration(facts.staleAfterSeconds)}`,
        `check its process (${r.owner})`,
      )
    } else {
      const held = r.control && r.control.state !== 'running' ? ` (${r.control.state}: ${r.control.lastChange})` : ''
      add(
        'info',
        'run-active',
        `${r.kind} run ${r.runId} running${held}: ${r.percent ?? '?'}% (${of(r)}), ${r.rate}/s, ETA ${formatDuration(r.etaSeconds)}`,
      )
    }
    const ack = r.control?.ack
    if (ack?.status === 'not acknowledged') {
      add(
        'warning',
        'control-not-acknowledged',
        `${r.kind} run ${r.runId}: change #${ack.seq} (${ack.change}) not applied after ${ACK_TIMEOUT_MS / 1000} s by ${ack.waitingOn.join(', ')}`,
        `check those processes (frozen, or cut off from Firestore?); \`wardrobe runs show ${r.runId}\` lists what each has applied`,
      )
    }
    if (r.status === 'running' && r.kind === 'backfill' && r.version !== facts.version) {
      add(
        'warning',
        'version-mismatch',
        `backfill run ${r.runId} writes version ${r.version} but monitor measures against ${facts.version}`,
        `monitor with --taxonomy <taxonomy file with version ${r.version}>`,
      )
    }
  }

  const unfinished =
    latestBackfill &&
    liveBackfills.length === 0 &&
    !stalledBackfill &&
    (latestBackfill.status === 'failed' || latestBackfill.status === 'interrupted')
      ? latestBackfill
      : null
  if (unfinished?.status === 'failed') {
    add(
      'critical',
      'run-failed',
      ...resume(
        unfinished,
        `backfill run ${unfinished.runId} failed at ${of(unfinished)}: ${unfinished.error ?? 'no reason recorded'}`,
        `fix the cause, then resume it: ${unfinished.resumeCommand}`,
      ),
    )
  } else if (unfinished) {
    add(
      'warning',
      'run-interrupted',
      ...resume(
        unfinished,
        `backfill run ${unfinished.runId} was interrupted at ${of(unfinished)}`,
        `resume it: ${unfinished.resumeCommand}`,
      ),
    )
  }

  const above = newerThan(facts.version)
  if (above.length > 0) {
    const newest = above.map((v) => v.version).sort((a, b) => compareVersions(b, a) ?? 0)[0]
    add(
      'warning',
      'newer-versions',
      `${counts.normalizedNewer} items are at versions newer than ${facts.version} (${listed(above)}), the version monitor judges by (${facts.basis.note}); a backfill at ${facts.version} would rewrite them to the older vocabulary, so monitor recommends none`,
      `measure against their vocabulary: monitor with --taxonomy <taxonomy file with version ${newest}>`,
    )
  }
  const atJudged = (message: string, recommendation: string) => unlessDowngrade(facts.version, message, recommendation)

  if (errors.runId && errors.total > 0) {
    // No rate before the run's first checkpoint: nothing to compare with yet.
    const rate = errors.rate
    const message =
      `${errors.total} error items in run ${errors.runId}` +
      (rate === null ? '' : ` (${pct(rate)} of the ${errors.processed} items it processed)`)
    const level: IssueLevel =
      rate === null
        ? 'info'
        : rate > Math.max(thresholds.errorRateCritical, thresholds.errorRateWarning)
          ? 'critical'
          : rate > thresholds.errorRateWarning
            ? 'warning'
            : 'info'
    const where = `${facts.ledgerCollection}/${errors.runId}/errors`
    if (level === 'info') {
      add(
        'info',
        'error-items',
        message,
        `error items are left untouched: fix their data (reasons under ${where}), then re-run the backfill`,
      )
    } else {
      const batch = Math.max(1, Math.floor((latestBackfill?.batchSize ?? 500) / 2))
      const advice = `inspect the error items (listed by monitor; all under ${where}), fix their data, then re-run with a lower batch size: ${commands.backfill} --batch-size ${batch}`
      add(
        level,
        'error-rate',
        ...atJudged(`${message}, over the ${pct(thresholds.errorRateWarning)} threshold`, advice),
      )
    }
  }

  // A backfill running, or one to resume, will take care of outdated and missing items.
  const backfillPending = liveBackfills.length > 0 || stalledBackfill || unfinished !== null
  if (counts.normalizedOutdated > 0 && !backfillPending) {
    const byVersion = counts.versions.filter((v) => v.relation === 'older').map((v) => `${v.version}: ${v.count}`)
    if (counts.outdatedUnknownVersions > 0)
      byVersion.push(`versions no run recorded: ${counts.outdatedUnknownVersions}`)
    add(
      'warning',
      'outdated-versions',
      ...atJudged(
        `${counts.normalizedOutdated} items are normalized at an older version than ${facts.version} (${byVersion.join(', ')})`,
        `re-run the backfill at ${facts.version}: ${commands.backfill}`,
      ),
    )
  }

  // Error items stay without `normalized` by design; anything beyond them is new, changed or not reached.
  const missing = Math.max(0, counts.notNormalized - errors.total)
  if (missing > 0 && !backfillPending && latestBackfill) {
    add(
      'warning',
      'not-normalized',
      ...atJudged(
        `${missing} items have no normalized value beyond the ${errors.total} error items (added since run ${latestBackfill.runId}, or not reached)`,
        `run the backfill: ${commands.backfill}`,
      ),
    )
  }

  if (unmapped.rate !== null && unmapped.rate > thresholds.unmappedRateWarning) {
    const top = unmapped.top
      .slice(0, 5)
      .map((u) => `${u.field}:"${u.value}" ×${u.count}`)
      .join(', ')
    add(
      'warning',
      'unmapped-values',
      `${unmapped.occurrences} unmapped values in run ${unmapped.runId} (${unmapped.distinct} distinct, ${floor1(unmapped.rate * 100)} per 100 items; top: ${top})`,
      'extend the vocabulary: add these values as aliases or terms in a taxonomy file with a new version, then run the backfill with --taxonomy <that file>',
    )
  }

  let status: HealthStatus = issues.some((i) => i.level === 'critical')
    ? 'critical'
    : issues.some((i) => i.level === 'warning')
      ? 'warning'
      : 'healthy'
  if (status === 'healthy' && live.length === 0 && (counts.total === 0 || !latestBackfill)) {
    status = 'idle'
    if (counts.total === 0) add('info', 'empty', 'the collection has no items', 'check --project and --collection')
    else if (counts.notNormalized > 0)
      add(
        'info',
        'no-backfill',
        ...atJudged(
          `no backfill has run on this collection; ${counts.notNormalized} items are not normalized`,
          `start with a dry run: ${commands.dryRun}, then ${commands.backfill}`,
        ),
      )
  }
  const bySeverity = [...issues].sort((a, b) => RANK[b.level] - RANK[a.level])
  const recommendations = [...new Set(bySeverity.flatMap((i) => (i.recommendation ? [i.recommendation] : [])))]
  return {status, issues: bySeverity, recommendations}
}
