import fs from 'node:fs'
import path from 'node:path'
import {z} from 'zod'
import {LIMIT_REASONS} from '../engine/control'

/** `YYYYMMDD_HHMMSS` in local time, as the seed's file names use. */
export function fileStamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`
}

/** Writes `<prefix>_YYYYMMDD_HHMMSS.json` into dir (never overwriting) after validating it; returns its path. */
export function writeReportFile<T>(
  dir: string,
  prefix: string,
  schema: z.ZodType<T>,
  report: T,
  now = new Date(),
): string {
  const data = schema.parse(report)
  fs.mkdirSync(dir, {recursive: true})
  let file = path.join(dir, `${prefix}_${fileStamp(now)}.json`)
  for (let i = 2; fs.existsSync(file); i++) file = path.join(dir, `${prefix}_${fileStamp(now)}_${i}.json`)
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n')
  return file
}

export const ErrorSampleSchema = z.object({id: z.string(), field: z.string().nullable(), reason: z.string()})

export const UnmappedEntrySchema = z.object({field: z.string(), value: z.string(), count: z.number().int()})
export type UnmappedEntry = z.infer<typeof UnmappedEntrySchema>

/** `field:value` counts → entries, most frequent first. */
export function unmappedEntries(unmapped: Record<string, number>, limit = 200): UnmappedEntry[] {
  return Object.entries(unmapped)
    .map(([key, count]) => {
      const i = key.indexOf(':')
      return {field: key.slice(0, i), value: key.slice(i + 1), count}
    })
    .sort((a, b) => b.count - a.count || a.value.localeCompare(b.value))
    .slice(0, limit)
}

/** Fields every run's stats carry (backfill and rollback). */
export const RunStatsBaseSchema = z.object({
  runId: z.string().nullable(),
  status: z.enum(['completed', 'interrupted', 'failed']),
  dryRun: z.boolean(),
  environment: z.string(),
  projectId: z.string(),
  collection: z.string(),
  /** `collection` names a collection group. */
  collectionGroup: z.boolean(),
  version: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationSeconds: z.number(),
  resumed: z.boolean(),
  /** Items in the collection (or scope) when the run started, from count(). */
  total: z.number().int().nullable(),
  scanned: z.number().int(),
  /** Items this process read; less than scanned when the run resumed from a checkpoint, or other workers shared it. */
  scannedHere: z.number().int(),
  /** Writes this process retried after a retryable answer (RESOURCE_EXHAUSTED, UNAVAILABLE, …), each after its backoff. */
  writeRetries: z.number().int(),
  /** Partitions of a sharded run (its counts are the whole run's, over every worker); 0 for one worker. */
  partitions: z.number().int(),
  updated: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
  conflicts: z.number().int(),
  /** Items per second in this process. */
  rate: z.number(),
  errorSamples: z.array(ErrorSampleSchema),
  error: z.string().nullable(),
  /** The command that resumes an interrupted or failed run. */
  resumeCommand: z.string().nullable(),
  /** What limited this process's writes as it ended (null: a dry run): writes/s (null: no limit), why, and as shown. */
  rateLimit: z.object({perSecond: z.number().nullable(), reason: z.enum(LIMIT_REASONS), text: z.string()}).nullable(),
  /** The reviewed plan applied (`--plan`; null without): its hash, its counts, the drift allowed, why the run stopped at it, and drift found at the end. */
  plan: z
    .object({
      hash: z.string(),
      planned: z.object({update: z.number().int(), error: z.number().int()}),
      maxDriftPercent: z.number(),
      exceeded: z.string().nullable(),
      warnings: z.array(z.string()),
    })
    .nullable(),
})

export const EstimateSchema = z.object({
  reads: z.number().int(),
  writes: z.number().int(),
  seconds: z.number(),
  rateAssumption: z.string(),
})

export const BackfillStatsSchema = RunStatsBaseSchema.extend({
  kind: z.literal('backfill'),
  force: z.boolean(),
  unmapped: z.array(UnmappedEntrySchema),
  unmappedDistinct: z.number().int(),
  /** Items with a value meaning "nothing" (NA, none, null, -, unknown, ...), treated as missing. */
  placeholder: z.number().int(),
  estimate: EstimateSchema.nullable(),
})
export type BackfillStats = z.infer<typeof BackfillStatsSchema>

export const RollbackStatsSchema = RunStatsBaseSchema.extend({
  kind: z.literal('rollback'),
  scope: z.object({
    version: z.string().nullable(),
    run: z.string().nullable(),
    /** The backfill runs a scoped rollback undoes (empty: all already undone, nothing to do); null when unscoped or the ledger could not be read. */
    targets: z.array(z.string()).nullable(),
  }),
  /** Items whose `normalized` was deleted (no earlier value to go back to). */
  removed: z.number().int(),
  /** Items whose earlier `normalized` (from before the rolled-back run) was put back. */
  restored: z.number().int(),
  /** Items whose `normalized` this tool did not write (no backfill run of the ledger): left exactly as they are. */
  foreign: z.number().int(),
})
export type RollbackStats = z.infer<typeof RollbackStatsSchema>
