import crypto from 'node:crypto'
import fs from 'node:fs'
import {z} from 'zod'
import {stableJson} from '../domain/normalization'
import {UsageError} from '../errors'
import {EstimateSchema, RunStatsBaseSchema, UnmappedEntrySchema} from './reports'

/**
 * What a dry run found, saved for review (`--dry-run --save-plan FILE`): the target, the tool and
 * vocabulary that would run, the counts, and a hash of all of it, so that what runs later can be
 * tied to what was reviewed. `--plan FILE` applies it: the run must target what it names (checkPlan),
 * and the run stops before it writes more items than the plan counted plus `--max-drift`
 * (engine/run.ts driftGuard).
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
  counts: z.object({
    scanned: z.number().int(),
    update: z.number().int(),
    skip: z.number().int(),
    error: z.number().int(),
  }),
  unmapped: z.array(UnmappedEntrySchema),
  estimate: EstimateSchema.nullable(),
  /** sha256 of the plan's canonical JSON (keys sorted: domain's stableJson) without this field. */
  planHash: z.string(),
})
export type Plan = z.infer<typeof PlanSchema>

/** `--max-drift`'s default: a run applying a plan may update up to 5% more items than it counted. */
export const DEFAULT_MAX_DRIFT_PERCENT = 5

type Stats = z.infer<typeof RunStatsBaseSchema> & {
  unmapped?: z.infer<typeof UnmappedEntrySchema>[]
  estimate?: z.infer<typeof EstimateSchema> | null
}

export function planHash(plan: Omit<Plan, 'planHash'> | Plan): string {
  const {planHash: _ignored, ...rest} = plan as Plan
  return crypto.createHash('sha256').update(stableJson(rest)).digest('hex')
}

/** What only the command knows of its plan: the vocabulary it writes with, or what a rollback undoes. */
export interface PlanContext {
  vocabulary: Plan['vocabulary']
  rollbackScope?: {version: string | null; run: string | null}
}

/** What a run targets and runs with, as a plan records it: the same for saving and for checking. */
export interface PlanTarget extends PlanContext {
  command: Plan['command']
  toolVersion: string
  environment: string
  projectId: string
  collection: string
  collectionGroup: boolean
  ledgerCollection: string
}

type Targeted = Pick<
  Plan,
  'command' | 'toolVersion' | 'environment' | 'projectId' | 'scope' | 'ledgerCollection' | 'vocabulary'
>

function targeted(t: PlanTarget): Targeted {
  return {
    command: t.command,
    toolVersion: t.toolVersion,
    environment: t.environment,
    projectId: t.projectId,
    scope: {
      collection: t.collection,
      collectionGroup: t.collectionGroup,
      version: t.rollbackScope?.version ?? null,
      run: t.rollbackScope?.run ?? null,
    },
    ledgerCollection: t.ledgerCollection,
    vocabulary: t.vocabulary,
  }
}

export function buildPlan(
  stats: Stats,
  input: Omit<PlanTarget, 'environment' | 'projectId' | 'collection' | 'collectionGroup'>,
): Plan {
  const plan: Omit<Plan, 'planHash'> = {
    kind: 'plan',
    createdAt: stats.finishedAt,
    ...targeted({
      ...input,
      environment: stats.environment,
      projectId: stats.projectId,
      collection: stats.collection,
      collectionGroup: stats.collectionGroup,
    }),
    counts: {scanned: stats.scanned, update: stats.updated, skip: stats.skipped, error: stats.failed},
    unmapped: stats.unmapped ?? [],
    estimate: stats.estimate ?? null,
  }
  return PlanSchema.parse({...plan, planHash: planHash(plan)})
}

export function writePlan(file: string, plan: Plan): void {
  fs.writeFileSync(file, JSON.stringify(plan, null, 2) + '\n')
}

/** Reads a plan file; an unreadable, malformed or edited one is refused (exit 2). */
export function readPlan(file: string): Plan {
  let json: unknown
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(
      `${file} is not a readable plan: ${(err as Error).message.split('\n')[0]}`,
      'make one with --dry-run --save-plan FILE',
    )
  }
  const parsed = PlanSchema.safeParse(json)
  if (!parsed.success)
    throw new UsageError(
      `${file} is not a plan: ${parsed.error.issues[0].path.join('.') || 'file'}: ${parsed.error.issues[0].message}`,
      'make one with --dry-run --save-plan FILE',
    )
  const plan = parsed.data
  if (planHash(plan) !== plan.planHash)
    throw new UsageError(
      `${file} was changed after it was saved: its content does not match its planHash`,
      'review a new plan: --dry-run --save-plan FILE',
    )
  return plan
}

const scopeText = (s: Plan['scope']) =>
  `${s.collectionGroup ? 'collection group ' : ''}${s.collection}${s.version !== null ? ` version ${s.version}` : ''}${s.run !== null ? ` run ${s.run}` : ''}`
const vocabularyText = (v: Plan['vocabulary']) => (v ? `${v.version} (content hash ${v.hash.slice(0, 12)})` : 'none')
const major = (version: string) => version.split('.')[0]

/**
 * Refuses (exit 2, one line naming the first difference) a plan made for another command,
 * environment, project, scope, ledger, vocabulary content or major version of the tool.
 */
export function checkPlan(file: string, plan: Plan, target: PlanTarget): void {
  const now = targeted(target)
  // [what, the plan's, this run's, whether they agree]
  const checks: [string, string, string, boolean?][] = [
    ['command', plan.command, now.command],
    ['environment', plan.environment, now.environment],
    ['project', plan.projectId, now.projectId],
    ['scope', scopeText(plan.scope), scopeText(now.scope)],
    ['ledger collection', plan.ledgerCollection, now.ledgerCollection],
    [
      'vocabulary',
      vocabularyText(plan.vocabulary),
      vocabularyText(now.vocabulary),
      plan.vocabulary?.hash === now.vocabulary?.hash,
    ],
    ['tool version', plan.toolVersion, now.toolVersion, major(plan.toolVersion) === major(now.toolVersion)],
  ]
  const diff = checks.find(([, planned, is, same]) => !(same ?? planned === is))
  if (diff)
    throw new UsageError(
      `${file} was made for ${diff[0]} ${diff[1]}, this run targets ${diff[2]}`,
      'run what the plan was made for, or review a new plan: --dry-run --save-plan FILE',
    )
}

/**
 * What only the end of a run applying a plan shows: fewer items updated than the plan counted
 * (by more than the drift allowed), or error items off the plan's count either way. Neither
 * stops a run: they are warnings in the stats and the output.
 */
export function planWarnings(
  stats: Pick<Stats, 'status' | 'updated' | 'failed'> & {
    plan: {planned: {update: number; error: number}; maxDriftPercent: number; exceeded: string | null} | null
  },
): string[] {
  const {plan} = stats
  if (!plan || plan.exceeded || stats.status !== 'completed') return []
  const off = (actual: number, planned: number) => Math.abs(actual - planned) > (planned * plan.maxDriftPercent) / 100
  const out: string[] = []
  if (stats.updated < plan.planned.update && off(stats.updated, plan.planned.update))
    out.push(
      `updated ${stats.updated} items, fewer than the plan's ${plan.planned.update} by more than ${plan.maxDriftPercent}%: items changed since the plan was made`,
    )
  if (off(stats.failed, plan.planned.error))
    out.push(
      `${stats.failed} error items, the plan counted ${plan.planned.error} (more than ${plan.maxDriftPercent}% off): items changed since the plan was made`,
    )
  return out
}
