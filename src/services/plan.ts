import crypto from 'node:crypto'
import fs from 'node:fs'
import {z} from 'zod'
import {EstimateSchema, RunStatsBaseSchema, UnmappedEntrySchema} from './reports'

/**
 * What a dry run found, saved for review (`--dry-run --save-plan FILE`): the target, the tool and
 * vocabulary that would run, the counts, and a hash of all of it, so that what runs later can be
 * tied to what was reviewed. (Applying a plan with `--plan` is not built yet.)
 */
export const PlanSchema = z.object({
  kind: z.literal('plan'),
  command: z.enum(['backfill', 'rollback']),
  createdAt: z.string(),
  toolVersion: z.string(),
  environment: z.string(),
  projectId: z.string(),
  scope: z.object({
    collection: z.string(),
    collectionGroup: z.boolean(),
    /** Rollback only: the version or run it undoes (both null: every backfill). */
    version: z.string().nullable(),
    run: z.string().nullable(),
  }),
  ledgerCollection: z.string(),
  /** The vocabulary a backfill would write with (null for a rollback). */
  vocabulary: z.object({version: z.string(), hash: z.string()}).nullable(),
  counts: z.object({scanned: z.number().int(), update: z.number().int(), skip: z.number().int(), error: z.number().int()}),
  unmapped: z.array(UnmappedEntrySchema),
  estimate: EstimateSchema.nullable(),
  /** sha256 of the plan's canonical JSON without this field. */
  planHash: z.string(),
})
export type Plan = z.infer<typeof PlanSchema>

type Stats = z.infer<typeof RunStatsBaseSchema> & {unmapped?: z.infer<typeof UnmappedEntrySchema>[]; estimate?: z.infer<typeof EstimateSchema> | null}

/** Keys sorted at every level, so the hash does not depend on the order fields were set in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
  return JSON.stringify(value)
}

export function planHash(plan: Omit<Plan, 'planHash'> | Plan): string {
  const {planHash: _ignored, ...rest} = plan as Plan
  return crypto.createHash('sha256').update(canonicalJson(rest)).digest('hex')
}

/** What only the command knows of its plan: the vocabulary it writes with, or what a rollback undoes. */
export interface PlanContext {
  vocabulary: Plan['vocabulary']
  rollbackScope?: {version: string | null; run: string | null}
}

export function buildPlan(stats: Stats, input: PlanContext & {command: Plan['command']; toolVersion: string; ledgerCollection: string}): Plan {
  const plan: Omit<Plan, 'planHash'> = {
    kind: 'plan',
    command: input.command,
    createdAt: stats.finishedAt,
    toolVersion: input.toolVersion,
    environment: stats.environment,
    projectId: stats.projectId,
    scope: {collection: stats.collection, collectionGroup: stats.collectionGroup, version: input.rollbackScope?.version ?? null, run: input.rollbackScope?.run ?? null},
    ledgerCollection: input.ledgerCollection,
    vocabulary: input.vocabulary,
    counts: {scanned: stats.scanned, update: stats.updated, skip: stats.skipped, error: stats.failed},
    unmapped: stats.unmapped ?? [],
    estimate: stats.estimate ?? null,
  }
  return PlanSchema.parse({...plan, planHash: planHash(plan)})
}

export function writePlan(file: string, plan: Plan): void {
  fs.writeFileSync(file, JSON.stringify(plan, null, 2) + '\n')
}
