import {z} from 'zod'
import type {Settings} from '../../config'
import {RUN_KINDS, RUN_STATUSES} from '../../engine/ledger'
import {UnmappedEntrySchema} from '../reports'
import {ControlViewSchema} from '../runs/schema'
import {VERSION_RELATIONS, VersionBasisSchema} from './versions'

/** The monitor report (`monitor --json`, backfill_report_*.json) and what it is made of. */

export const HEALTH_STATUSES = ['idle', 'healthy', 'warning', 'critical'] as const
export type HealthStatus = (typeof HEALTH_STATUSES)[number]
export const FAIL_ON_LEVELS = ['warning', 'critical'] as const
export type FailOnLevel = (typeof FAIL_ON_LEVELS)[number]
export const ISSUE_LEVELS = ['info', 'warning', 'critical'] as const
export type IssueLevel = (typeof ISSUE_LEVELS)[number]

export type MonitorSettings = Pick<
  Settings,
  'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'
> &
  Partial<Pick<Settings, 'emulatorHost' | 'configFile' | 'group'>>

// The epsilon keeps 58.3 from showing as 58.2 through binary rounding.
export const floor1 = (x: number) => Math.floor(x * 10 + 1e-9) / 10

const iso = z.string()

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
  versions: z.array(
    z.object({version: z.string(), count: z.number().int(), current: z.boolean(), relation: z.enum(VERSION_RELATIONS)}),
  ),
  /** Outdated items at versions no run record names (written by something else). */
  outdatedUnknownVersions: z.number().int(),
})
export type Counts = z.infer<typeof CountsSchema>

export const RecentItemSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  normalizedAt: iso.nullable(),
  version: z.string().nullable(),
})

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
