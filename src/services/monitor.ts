import path from 'node:path'
import {Firestore, Query, Timestamp, Transaction} from 'firebase-admin/firestore'
import {z} from 'zod'
import {DEFAULT_LEDGER, Settings} from '../config'
import {ACK_TIMEOUT_MS} from '../engine/control'
import {RUN_SUBCOLLECTIONS} from '../engine/ledger-layout'
import {describeOwner, ErrorRecordSchema, holderGone, Ledger, MemberRecord, MemberRecordSchema, PartitionRecord, PartitionRecordSchema, RUN_KINDS, RUN_STATUSES, RunRecord, RunRecordSchema, shardedRunGone, summarize, sumProgress} from '../engine/ledger'
import {formatDuration} from '../cli/progress'
import {UnmappedEntrySchema, unmappedEntries} from './reports'
import {controlView, ControlViewSchema} from './runs'
import {withRetry} from '../engine/scan'
import {CommandContext, commandLine, resumeCommandFor, taxonomyArgs} from '../engine/run-identity'
import {itemKey, itemsQuery, targetOf} from '../firestore/target'
import {loadVocabulary} from '../domain/vocabulary'

/**
 * `wardrobe monitor`: progress and health of the backfill, from aggregation queries and
 * the run ledger. Every number comes from `count()` or from a bounded query (recent items,
 * run records, latest error records), all read in one read-only transaction, so the counts
 * are one consistent snapshot (they add up to the total even while a backfill writes).
 *
 * Definitions (README "Monitor"):
 * - normalized (at some version): `normalized.normalized_version` is a non-empty string.
 * - current: that version equals the version monitor judges by (see `judgeVersion`: --taxonomy,
 *   the config file's taxonomy, else the newer of the latest completed backfill's version and
 *   the shipped one). This does not check that the originals are unchanged since (that needs
 *   every item read: `wardrobe validate` does it).
 * - newer: at a version the ledger names that is newer than (or, not numeric, not comparable
 *   with) the judged one. A backfill at the judged version would rewrite these items to an
 *   older vocabulary, so monitor never recommends one while they exist.
 * - outdated: normalized at any other version (older, or one no run record names).
 * - not normalized: everything else = total − normalized. No `normalized` field, a
 *   `normalized` without a version (e.g. written by the app), or a non-string version:
 *   exactly the items a backfill would write whatever its version. Range and `!=` filters
 *   never match a missing field, so this is the only count that includes them.
 */

export const HEALTH_STATUSES = ['idle', 'healthy', 'warning', 'critical'] as const
export type HealthStatus = (typeof HEALTH_STATUSES)[number]
export const FAIL_ON_LEVELS = ['warning', 'critical'] as const
export type FailOnLevel = (typeof FAIL_ON_LEVELS)[number]
const ISSUE_LEVELS = ['info', 'warning', 'critical'] as const
type IssueLevel = (typeof ISSUE_LEVELS)[number]

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

const iso = z.string()

/**
 * Dotted numeric versions compared part by part ("1.10" > "1.9", "1.0" = "1"); null when
 * either is not numeric and they differ: such versions are only ever equal or unrelated.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  if (a === b) return 0
  const numeric = /^\d+(\.\d+)*$/
  if (!numeric.test(a) || !numeric.test(b)) return null
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d > 0 ? 1 : -1
  }
  return 0
}

export const VERSION_RELATIONS = ['current', 'older', 'newer', 'incomparable'] as const
export type VersionRelation = (typeof VERSION_RELATIONS)[number]

/** How `version` stands to the judged one. */
export function versionRelation(version: string, judged: string): VersionRelation {
  const c = compareVersions(version, judged)
  return c === 0 ? 'current' : c === null ? 'incomparable' : c > 0 ? 'newer' : 'older'
}

export const VERSION_SOURCES = ['flag', 'config', 'ledger', 'shipped'] as const

/** The version monitor measures items against, and where it came from. */
export const VersionBasisSchema = z.object({
  version: z.string(),
  /** --taxonomy, the config file's taxonomy, the latest completed backfill (ledger), or the vocabulary shipped with the package. */
  source: z.enum(VERSION_SOURCES),
  /** The latest completed backfill run, when the ledger has one. */
  runId: z.string().nullable(),
  /** The content hash of that vocabulary (`normalized.taxonomy_hash`), when known: an edited file of the same version is another vocabulary. */
  hash: z.string().nullable().default(null),
  note: z.string(),
})
export type VersionBasis = z.infer<typeof VersionBasisSchema>

/**
 * Without --taxonomy (or a config taxonomy), "current" is what the ledger's latest completed
 * backfill wrote, so a backfill at a custom 1.1 vocabulary is not measured (and re-run)
 * against the shipped 1.0. The shipped version wins only when it is newer: a backfill
 * without --taxonomy then moves items forward, never back.
 */
export function judgeVersion(
  explicit: {version: string; source: 'flag' | 'config'; hash?: string} | undefined,
  runs: readonly RunRecord[],
  shippedVersion: string,
  shippedHash: string | null = null,
): VersionBasis {
  // Newest first: the runs as monitor sorts them.
  const latest = runs.find((r) => r.kind === 'backfill' && r.status === 'completed' && typeof r.version === 'string' && r.version !== '') ?? null
  const runId = latest?.runId ?? null
  if (explicit) {
    const from = explicit.source === 'flag' ? 'from --taxonomy' : "from the config file's taxonomy"
    return {version: explicit.version, source: explicit.source, hash: explicit.hash ?? null, runId, note: from + (latest ? `; the latest completed backfill (${latest.runId}) wrote ${latest.version}` : '')}
  }
  const shipped = {version: shippedVersion, source: 'shipped' as const, hash: shippedHash, runId}
  if (!latest) return {...shipped, note: 'the vocabulary shipped with the package: no completed backfill in the ledger'}
  const ledgerVersion = latest.version!
  if (compareVersions(shippedVersion, ledgerVersion) === 1) {
    return {...shipped, note: `the vocabulary shipped with the package, newer than ${ledgerVersion} that the latest completed backfill (${latest.runId}) wrote`}
  }
  // A run from before content hashes were recorded: its version alone.
  const hash = typeof latest.options.taxonomyHash === 'string' ? latest.options.taxonomyHash : null
  return {version: ledgerVersion, source: 'ledger', hash, runId, note: `the version the latest completed backfill (${latest.runId}) wrote`}
}

export const RunViewSchema = z.object({
  runId: z.string(),
  kind: z.enum(RUN_KINDS),
  /** The ledger status, or `stalled`: recorded as running but its process is gone or its heartbeat stale. */
  status: z.enum([...RUN_STATUSES, 'stalled']),
  stalledReason: z.string().nullable(),
  environment: z.string(),
  version: z.string().nullable(),
  force: z.boolean().nullable(),
  batchSize: z.number().int().nullable(),
  owner: z.string(),
  startedAt: iso,
  heartbeatAt: iso,
  heartbeatAgeSeconds: z.number(),
  finishedAt: iso.nullable(),
  total: z.number().int().nullable(),
  scanned: z.number().int(),
  updated: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  conflicts: z.number().int(),
  percent: z.number().nullable(),
  /** Items per second: between the last two samples in watch mode, else averaged over the run. */
  rate: z.number(),
  etaSeconds: z.number().nullable(),
  resumes: z.number().int(),
  error: z.string().nullable(),
  /** For a stalled, interrupted or failed run: the command that resumes it from its checkpoint. */
  resumeCommand: z.string().nullable(),
  /** A sharded run: its partitions by state (counters and heartbeat above are theirs, summed). Null for one worker. */
  partitions: z
    .object({
      total: z.number().int(),
      done: z.number().int(),
      running: z.number().int(),
      /** Running, but their owner's lease is gone: another worker (or a re-run) takes them over. */
      stalled: z.number().int(),
      pending: z.number().int(),
      interrupted: z.number().int(),
      failed: z.number().int(),
      /** Distinct processes holding live leases. */
      workers: z.number().int(),
    })
    .nullable()
    .default(null),
  /** A running run's live control (`wardrobe runs`): state, limits, windows, each live process's limit and why, the last change's acknowledgement. */
  control: ControlViewSchema.nullable().default(null),
})
export type RunView = z.infer<typeof RunViewSchema>

export const IssueSchema = z.object({
  level: z.enum(ISSUE_LEVELS),
  code: z.string(),
  message: z.string(),
  recommendation: z.string().nullable(),
})
export type Issue = z.infer<typeof IssueSchema>

export const HealthSchema = z.object({
  status: z.enum(HEALTH_STATUSES),
  issues: z.array(IssueSchema),
  recommendations: z.array(z.string()),
})
export type Health = z.infer<typeof HealthSchema>

export const CountsSchema = z.object({
  total: z.number().int(),
  normalizedCurrent: z.number().int(),
  /** Older versions, and versions no run record names. */
  normalizedOutdated: z.number().int(),
  /** At versions newer than (or not comparable with) the judged one: a backfill at that version would rewrite them, so none is recommended. */
  normalizedNewer: z.number().int().default(0),
  notNormalized: z.number().int(),
  /** normalizedCurrent / total, floored to 0.1 (100 for an empty collection). */
  completionPercent: z.number(),
  /** The current version and every version the ledger knows with items at it. */
  versions: z.array(z.object({version: z.string(), count: z.number().int(), current: z.boolean(), relation: z.enum(VERSION_RELATIONS)})),
  /** Outdated items at versions no run record names (written by something else). */
  outdatedUnknownVersions: z.number().int(),
})
export type Counts = z.infer<typeof CountsSchema>

export const RecentItemSchema = z.object({id: z.string(), name: z.string().nullable(), normalizedAt: iso.nullable(), version: z.string().nullable()})

export const ErrorSummarySchema = z.object({
  /** The latest backfill run, whose error records these are; null when no backfill has run. */
  runId: z.string().nullable(),
  total: z.number().int(),
  /** Items that run has processed: its checkpointed scanned count, or, while it is not completed, its live writes plus error items when more (the checkpoint lags). */
  processed: z.number().int().nullable(),
  /** total / processed. */
  rate: z.number().nullable(),
  latest: z.array(z.object({itemId: z.string(), field: z.string().nullable(), reason: z.string(), at: iso})),
})
export type ErrorSummary = z.infer<typeof ErrorSummarySchema>

export const UnmappedSummarySchema = z.object({
  runId: z.string().nullable(),
  distinct: z.number().int(),
  occurrences: z.number().int(),
  /** occurrences / items that run scanned. */
  rate: z.number().nullable(),
  top: z.array(UnmappedEntrySchema),
})
export type UnmappedSummary = z.infer<typeof UnmappedSummarySchema>

/** `backfill_report_YYYYMMDD_HHMMSS.json`, and what `monitor --json` prints. */
export const MonitorReportSchema = z.object({
  kind: z.literal('monitor'),
  generatedAt: iso,
  /** The snapshot every count, item and run record was read at. */
  readTime: iso,
  environment: z.string(),
  projectId: z.string(),
  collection: z.string(),
  /** `collection` names a collection group. */
  collectionGroup: z.boolean().default(false),
  ledgerCollection: z.string(),
  /** The vocabulary version items are measured against (versionBasis.version). */
  version: z.string(),
  versionBasis: VersionBasisSchema,
  counts: CountsSchema,
  recent: z.array(RecentItemSchema),
  errors: ErrorSummarySchema,
  unmapped: UnmappedSummarySchema,
  runs: z.object({
    /** Runs the ledger records as running, live or stalled. */
    active: z.array(RunViewSchema),
    /** The last finished runs, newest first. */
    recent: z.array(RunViewSchema),
    /** Run records that could not be read (skipped). */
    unreadable: z.number().int(),
  }),
  health: HealthSchema,
  /** What this report cost: aggregation queries and documents read (bounded whatever the collection size). */
  reads: z.object({aggregations: z.number().int(), documents: z.number().int()}),
})
export type MonitorReport = z.infer<typeof MonitorReportSchema>

export interface MonitorOptions {
  /** The version to measure against, when given (--taxonomy, or the config file's taxonomy); else judged from the ledger (`judgeVersion`). */
  vocabularyVersion?: string
  /** That vocabulary's content hash. */
  vocabularyHash?: string
  /** Where vocabularyVersion came from (default: flag). */
  versionSource?: 'flag' | 'config'
  commands?: CommandContext
  thresholds?: Partial<HealthThresholds>
  recentLimit?: number
  errorLimit?: number
  finishedRunLimit?: number
  /** The previous sample (watch mode): run rates are measured between the two. */
  previous?: MonitorReport
  signal?: AbortSignal
  now?: () => number
}

export type MonitorSettings = Pick<Settings, 'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'> & Partial<Pick<Settings, 'emulatorHost' | 'configFile' | 'group'>>

/** Flags that point another command at the monitor's target (emulator, ledger, config file). */
export function targetArgsFor(settings: MonitorSettings, cwd = process.cwd()): string[] {
  const args: string[] = []
  if (settings.emulatorHost) args.push('--emulator-host', settings.emulatorHost)
  if (settings.ledgerCollection !== DEFAULT_LEDGER) args.push('--ledger-collection', settings.ledgerCollection)
  // The cwd's wardrobe.config.json is found again without the flag.
  if (settings.configFile && path.resolve(settings.configFile) !== path.join(cwd, 'wardrobe.config.json')) args.push('--config', settings.configFile)
  return args
}

// The epsilon keeps 58.3 from showing as 58.2 through binary rounding.
const floor1 = (x: number) => Math.floor(x * 10 + 1e-9) / 10
const round4 = (x: number) => Math.round(x * 10_000) / 10_000
const seconds = (ms: number) => Math.max(0, ms) / 1000

/** A running sharded run seen through its partitions: their newest heartbeat, and stalled only when no lease on it is live. */
function shardedView(recorded: RunRecord, partitions: PartitionRecord[], members: MemberRecord[] | undefined, staleAfterMs: number, now: number): {run: RunRecord; stalledReason: string | null; partitions: RunView['partitions']} {
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

function runView(recorded: RunRecord, settings: MonitorSettings, ctx: CommandContext, currentVersion: string, now: number, previous?: RunView, partitions?: PartitionRecord[], members?: MemberRecord[]): RunView {
  const sharded = recorded.status === 'running' && recorded.partitions > 0 ? shardedView(recorded, partitions ?? [], members, settings.staleAfterMs, now) : null
  const run = sharded?.run ?? recorded
  const stalledReason = sharded ? sharded.stalledReason : run.status === 'running' ? holderGone(run, settings.staleAfterMs, now) : null
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
    partitions: sharded?.partitions ?? (run.partitions > 0 ? {total: run.partitions, done: 0, running: 0, stalled: 0, pending: 0, interrupted: 0, failed: 0, workers: 0} : null),
    resumeCommand: resumable ? resumeCommandFor(run, ctx, currentVersion) : null,
    control: recorded.status === 'running' ? controlView(recorded, members ?? [], settings.staleAfterMs, now) : null,
  }
}

const MIN_TIMESTAMP = new Timestamp(-62135596800, 0) // 0001-01-01: `>=` keeps only Timestamp values

const [ERRORS] = RUN_SUBCOLLECTIONS

const asIso = (v: unknown): string | null => (v instanceof Timestamp ? v.toDate().toISOString() : null)
const asString = (v: unknown): string | null => (typeof v === 'string' ? v : null)

/**
 * Reads the monitor report: counts by aggregation, the latest normalized items, the
 * runs and the latest backfill run's error records, all at one snapshot; then health.
 */
export async function collectMonitorReport(db: Firestore, settings: MonitorSettings, options: MonitorOptions): Promise<MonitorReport> {

  const explicit = options.vocabularyVersion === undefined ? undefined : {version: options.vocabularyVersion, hash: options.vocabularyHash, source: options.versionSource ?? 'flag'}
  const thresholds = {...DEFAULT_THRESHOLDS, ...options.thresholds}
  const ctx: CommandContext = options.commands ?? {bin: 'wardrobe', targetArgs: targetArgsFor(settings), shippedVersion: options.vocabularyVersion ?? loadVocabulary().version}
  const target = targetOf(settings)
  const items = itemsQuery(db, target)
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runsCol = ledger.runs()
  const reads = {aggregations: 0, documents: 0}
  const count = async (tx: Transaction, q: Query): Promise<number> => {
    reads.aggregations++
    return (await tx.get(q.count())).data().count
  }

  const snapshot = await withRetry(
    () =>
      db.runTransaction(
        async (tx) => {
          reads.aggregations = 0
          reads.documents = 0
          const [total, normalized, recent, runDocs] = await Promise.all([
            count(tx, items),
            // Every non-empty string; a range filter matches strings only, never a missing field.
            count(tx, items.where('normalized.normalized_version', '>', '')),
            tx.get(
              items
                .where('normalized.normalized_at', '>=', MIN_TIMESTAMP)
                .orderBy('normalized.normalized_at', 'desc')
                .limit(options.recentLimit ?? 10)
                .select('name', 'normalized.normalized_at', 'normalized.normalized_version'),
            ),
            tx.get(runsCol.where('collection', '==', settings.collection)),
          ])
          reads.documents += recent.size + runDocs.size
          const readTime = recent.readTime
          const runs: RunRecord[] = []
          let unreadable = 0
          for (const d of runDocs.docs) {
            const parsed = RunRecordSchema.safeParse(d.data())
            if (!parsed.success) unreadable++
            // The collection and the collection group of one name are different scopes.
            else if (parsed.data.group === target.group) runs.push(parsed.data)
          }
          // Running sharded runs are measured by their partitions (at most a few hundred records each); every running run's processes say what control they apply. Read beside the counts below.
          const partitionsOf = new Map<string, PartitionRecord[]>()
          const membersOf = new Map<string, MemberRecord[]>()
          const details = Promise.all(
            runs
              .filter((r) => r.status === 'running')
              .map(async (r) => {
                const [snap, members] = await Promise.all([r.partitions > 0 ? tx.get(ledger.partitionsOf(r.runId)) : null, tx.get(ledger.membersOf(r.runId))])
                reads.documents += (snap?.size ?? 0) + members.size
                if (snap) {
                  const parts = snap.docs.map((d) => PartitionRecordSchema.parse(d.data()))
                  partitionsOf.set(r.runId, parts)
                  // Their record's counters are written at the end only: until then, the partitions' sum (in place: latestBackfill may be this very record).
                  Object.assign(r, sumProgress(parts))
                }
                membersOf.set(r.runId, members.docs.map((d) => MemberRecordSchema.parse(d.data())))
              }),
          )
          runs.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
          // The judged version comes from the run records, so its count follows them (same snapshot).
          const basis = judgeVersion(explicit, runs, ctx.shippedVersion, ctx.shippedHash ?? null)
          const otherVersions = [...new Set(runs.map((r) => r.version).filter((v): v is string => typeof v === 'string' && v !== '' && v !== basis.version))].sort()
          const latestBackfill = runs.find((r) => r.kind === 'backfill' && r.status !== 'superseded') ?? null
          const errorsCol = latestBackfill ? ledger.runRef(latestBackfill.runId).collection(ERRORS) : null
          const [current, versionCounts, writtenByLatest, errorTotal, errorDocs] = await Promise.all([
            // Current: the judged version, and its very content when known (an edited file that kept its version is not current).
            count(tx, basis.hash === null ? items.where('normalized.normalized_version', '==', basis.version) : items.where('normalized.normalized_version', '==', basis.version).where('normalized.taxonomy_hash', '==', basis.hash)),
            Promise.all(otherVersions.map((v) => count(tx, items.where('normalized.normalized_version', '==', v)))),
            // Only while the checkpoint may lag the writes: a completed run's checkpoint (a sharded
            // run's: its partitions' sum) covers every item it settled. (On the emulator each count
            // walks the whole collection.)
            latestBackfill && latestBackfill.status !== 'completed' ? count(tx, items.where('normalized.run_id', '==', latestBackfill.runId)) : Promise.resolve(0),
            errorsCol ? count(tx, errorsCol) : Promise.resolve(0),
            errorsCol ? tx.get(errorsCol.orderBy('at', 'desc').limit(options.errorLimit ?? 10)) : Promise.resolve(null),
            details,
          ])
          reads.documents += errorDocs?.size ?? 0
          return {readTime, basis, total, current, normalized, recent, runs, partitionsOf, membersOf, unreadable, otherVersions, versionCounts, latestBackfill, writtenByLatest, errorTotal, errorDocs}
        },
        {readOnly: true},
      ),
    {signal: options.signal},
  )

  const {basis, total, current, normalized, runs, latestBackfill} = snapshot
  const version = basis.version
  const versions: Counts['versions'] = [
    {version, count: current, current: true, relation: 'current'},
    ...snapshot.otherVersions.map((v, i) => ({version: v, count: snapshot.versionCounts[i], current: false, relation: versionRelation(v, version)})).filter((v) => v.count > 0),
  ]
  const sum = (vs: Counts['versions']) => vs.reduce((s, v) => s + v.count, 0)
  const newer = sum(versions.filter((v) => v.relation === 'newer' || v.relation === 'incomparable'))
  const outdated = Math.max(0, normalized - current - newer)
  const counts: Counts = {
    total,
    normalizedCurrent: current,
    normalizedOutdated: outdated,
    normalizedNewer: newer,
    notNormalized: Math.max(0, total - normalized),
    completionPercent: total === 0 ? 100 : floor1((100 * current) / total),
    versions,
    outdatedUnknownVersions: Math.max(0, outdated - sum(versions.filter((v) => v.relation === 'older'))),
  }

  // Liveness is judged on Firestore's clock (heartbeats are server timestamps), never this machine's.
  const t = options.now?.() ?? snapshot.readTime.toMillis()
  const previousRuns = new Map([...(options.previous?.runs.active ?? []), ...(options.previous?.runs.recent ?? [])].map((r) => [r.runId, r]))
  const views = runs.map((r) => runView(r, settings, ctx, version, t, previousRuns.get(r.runId), snapshot.partitionsOf.get(r.runId), snapshot.membersOf.get(r.runId)))
  const active = views.filter((v) => v.status === 'running' || v.status === 'stalled')
  const finished = views.filter((v) => !(v.status === 'running' || v.status === 'stalled')).slice(0, options.finishedRunLimit ?? 5)

  const scannedByLatest = latestBackfill?.counters.scanned ?? 0
  const processed = latestBackfill ? Math.max(scannedByLatest, snapshot.writtenByLatest + snapshot.errorTotal) : null
  const errors: ErrorSummary = {
    runId: latestBackfill?.runId ?? null,
    total: snapshot.errorTotal,
    processed,
    rate: processed ? round4(snapshot.errorTotal / processed) : null,
    latest: (snapshot.errorDocs?.docs ?? []).flatMap((d) => {
      const e = ErrorRecordSchema.safeParse(d.data())
      return e.success ? [{itemId: e.data.itemId, field: e.data.field, reason: e.data.reason, at: e.data.at.toISOString()}] : []
    }),
  }
  const occurrences = Object.values(latestBackfill?.unmapped ?? {}).reduce((s, n) => s + n, 0)
  const unmapped: UnmappedSummary = {
    runId: latestBackfill?.runId ?? null,
    distinct: Object.keys(latestBackfill?.unmapped ?? {}).length,
    occurrences,
    rate: latestBackfill && scannedByLatest > 0 ? round4(occurrences / scannedByLatest) : null,
    top: unmappedEntries(latestBackfill?.unmapped ?? {}, 10),
  }

  const commandTarget = {environment: settings.environment, projectId: settings.projectId, collection: settings.collection, group: target.group}
  const tax = taxonomyArgs(ctx, version, version)
  const health = assessHealth(
    {
      counts,
      active,
      latestBackfill: latestBackfill ? views.find((v) => v.runId === latestBackfill.runId)! : null,
      errors,
      unmapped,
      staleAfterSeconds: settings.staleAfterMs / 1000,
      ledgerCollection: settings.ledgerCollection,
      version,
      basis,
      commands: {
        backfill: commandLine(ctx, 'backfill', commandTarget, tax.args, tax.placeholder),
        dryRun: commandLine(ctx, 'backfill', commandTarget, ['--dry-run', ...tax.args], tax.placeholder),
      },
    },
    thresholds,
  )

  return MonitorReportSchema.parse({
    kind: 'monitor',
    generatedAt: new Date(t).toISOString(),
    readTime: snapshot.readTime.toDate().toISOString(),
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    collectionGroup: target.group,
    ledgerCollection: settings.ledgerCollection,
    version,
    versionBasis: basis,
    counts,
    recent: snapshot.recent.docs.map((d) => ({
      id: itemKey(d, target),
      name: asString(d.get('name')),
      normalizedAt: asIso(d.get('normalized.normalized_at')),
      version: asString(d.get('normalized.normalized_version')),
    })),
    errors,
    unmapped,
    runs: {active, recent: finished, unreadable: snapshot.unreadable},
    health,
    reads,
  })
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
  const add = (level: IssueLevel, code: string, message: string, recommendation: string | null = null) => issues.push({level, code, message, recommendation})
  const live = active.filter((r) => r.status === 'running')
  const liveBackfills = live.filter((r) => r.kind === 'backfill')
  const stalledBackfill = active.some((r) => r.status === 'stalled' && r.kind === 'backfill')

  // A backfill writing `version` rewrites every item at another version: never recommend one over newer items.
  const newerThan = (version: string | null) => (version === null ? [] : counts.versions.filter((v) => v.count > 0 && (compareVersions(v.version, version) ?? 1) > 0))
  const listed = (vs: Counts['versions']) => vs.map((v) => `${v.version}: ${v.count}`).join(', ')
  /** The recommendation, or null with the reason appended to the message when it would downgrade items. */
  const unlessDowngrade = (version: string | null, message: string, recommendation: string): [string, string | null] => {
    const above = newerThan(version)
    if (above.length === 0) return [message, recommendation]
    return [`${message}; a backfill at ${version} would rewrite the items at newer versions (${listed(above)}), so none is recommended`, null]
  }
  const resume = (r: RunView, message: string, advice: string) => (r.kind === 'backfill' ? unlessDowngrade(r.version, message, advice) : ([message, advice] as [string, string]))

  for (const r of active) {
    if (r.status === 'stalled') {
      add('critical', 'run-stalled', ...resume(r, `${r.kind} run ${r.runId} stalled (${r.stalledReason}); last checkpoint at ${of(r)}; ${r.owner}`, `resume it: ${r.resumeCommand}`))
    } else if (r.heartbeatAgeSeconds > facts.staleAfterSeconds * thresholds.heartbeatWarningFraction) {
      add('warning', 'heartbeat-late', `${r.kind} run ${r.runId} last reported ${formatDuration(r.heartbeatAgeSeconds)} ago; it counts as stalled after ${formatDuration(facts.staleAfterSeconds)}`, `check its process (${r.owner})`)
    } else {
      const held = r.control && r.control.state !== 'running' ? ` (${r.control.state}: ${r.control.lastChange})` : ''
      add('info', 'run-active', `${r.kind} run ${r.runId} running${held}: ${r.percent ?? '?'}% (${of(r)}), ${r.rate}/s, ETA ${formatDuration(r.etaSeconds)}`)
    }
    const ack = r.control?.ack
    if (ack?.status === 'not acknowledged') {
      add('warning', 'control-not-acknowledged', `${r.kind} run ${r.runId}: change #${ack.seq} (${ack.change}) not applied after ${ACK_TIMEOUT_MS / 1000} s by ${ack.waitingOn.join(', ')}`, `check those processes (frozen, or cut off from Firestore?); \`wardrobe runs show ${r.runId}\` lists what each has applied`)
    }
    if (r.status === 'running' && r.kind === 'backfill' && r.version !== facts.version) {
      add('warning', 'version-mismatch', `backfill run ${r.runId} writes version ${r.version} but monitor measures against ${facts.version}`, `monitor with --taxonomy <taxonomy file with version ${r.version}>`)
    }
  }

  const unfinished = latestBackfill && liveBackfills.length === 0 && !stalledBackfill && (latestBackfill.status === 'failed' || latestBackfill.status === 'interrupted') ? latestBackfill : null
  if (unfinished?.status === 'failed') {
    add('critical', 'run-failed', ...resume(unfinished, `backfill run ${unfinished.runId} failed at ${of(unfinished)}: ${unfinished.error ?? 'no reason recorded'}`, `fix the cause, then resume it: ${unfinished.resumeCommand}`))
  } else if (unfinished) {
    add('warning', 'run-interrupted', ...resume(unfinished, `backfill run ${unfinished.runId} was interrupted at ${of(unfinished)}`, `resume it: ${unfinished.resumeCommand}`))
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
    const message = `${errors.total} error items in run ${errors.runId}` + (rate === null ? '' : ` (${pct(rate)} of the ${errors.processed} items it processed)`)
    const level: IssueLevel = rate === null ? 'info' : rate > Math.max(thresholds.errorRateCritical, thresholds.errorRateWarning) ? 'critical' : rate > thresholds.errorRateWarning ? 'warning' : 'info'
    const where = `${facts.ledgerCollection}/${errors.runId}/errors`
    if (level === 'info') {
      add('info', 'error-items', message, `error items are left untouched: fix their data (reasons under ${where}), then re-run the backfill`)
    } else {
      const batch = Math.max(1, Math.floor((latestBackfill?.batchSize ?? 500) / 2))
      const advice = `inspect the error items (listed by monitor; all under ${where}), fix their data, then re-run with a lower batch size: ${commands.backfill} --batch-size ${batch}`
      add(level, 'error-rate', ...atJudged(`${message}, over the ${pct(thresholds.errorRateWarning)} threshold`, advice))
    }
  }

  // A backfill running, or one to resume, will take care of outdated and missing items.
  const backfillPending = liveBackfills.length > 0 || stalledBackfill || unfinished !== null
  if (counts.normalizedOutdated > 0 && !backfillPending) {
    const byVersion = counts.versions.filter((v) => v.relation === 'older').map((v) => `${v.version}: ${v.count}`)
    if (counts.outdatedUnknownVersions > 0) byVersion.push(`versions no run recorded: ${counts.outdatedUnknownVersions}`)
    add('warning', 'outdated-versions', ...atJudged(`${counts.normalizedOutdated} items are normalized at an older version than ${facts.version} (${byVersion.join(', ')})`, `re-run the backfill at ${facts.version}: ${commands.backfill}`))
  }

  // Error items stay without `normalized` by design; anything beyond them is new, changed or not reached.
  const missing = Math.max(0, counts.notNormalized - errors.total)
  if (missing > 0 && !backfillPending && latestBackfill) {
    add('warning', 'not-normalized', ...atJudged(`${missing} items have no normalized value beyond the ${errors.total} error items (added since run ${latestBackfill.runId}, or not reached)`, `run the backfill: ${commands.backfill}`))
  }

  if (unmapped.rate !== null && unmapped.rate > thresholds.unmappedRateWarning) {
    const top = unmapped.top.slice(0, 5).map((u) => `${u.field}:"${u.value}" ×${u.count}`).join(', ')
    add('warning', 'unmapped-values', `${unmapped.occurrences} unmapped values in run ${unmapped.runId} (${unmapped.distinct} distinct, ${floor1(unmapped.rate * 100)} per 100 items; top: ${top})`, 'extend the vocabulary: add these values as aliases or terms in a taxonomy file with a new version, then run the backfill with --taxonomy <that file>')
  }

  let status: HealthStatus = issues.some((i) => i.level === 'critical') ? 'critical' : issues.some((i) => i.level === 'warning') ? 'warning' : 'healthy'
  if (status === 'healthy' && live.length === 0 && (counts.total === 0 || !latestBackfill)) {
    status = 'idle'
    if (counts.total === 0) add('info', 'empty', 'the collection has no items', 'check --project and --collection')
    else if (counts.notNormalized > 0) add('info', 'no-backfill', ...atJudged(`no backfill has run on this collection; ${counts.notNormalized} items are not normalized`, `start with a dry run: ${commands.dryRun}, then ${commands.backfill}`))
  }
  const bySeverity = [...issues].sort((a, b) => RANK[b.level] - RANK[a.level])
  const recommendations = [...new Set(bySeverity.flatMap((i) => (i.recommendation ? [i.recommendation] : [])))]
  return {status, issues: bySeverity, recommendations}
}
