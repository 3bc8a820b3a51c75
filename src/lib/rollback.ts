import {DocumentData, FieldValue} from 'firebase-admin/firestore'
import {isMap} from './backfill'
import type {Plan} from './job'
import {RollbackStats, RollbackStatsSchema} from './reports'
import {baseStats, executeRun, RunContext} from './run'

export interface RollbackOptions {
  /** Only items whose `normalized` is at this version. */
  version?: string
  /** Only items whose `normalized` this run wrote. */
  run?: string
  batchSize: number
  dryRun: boolean
  fromStart: boolean
  maxRate?: number
}

/** A `normalized` this tool wrote carries the id of its run. */
export function writtenByTool(value: unknown): value is Record<string, unknown> {
  return isMap(value) && typeof value.run_id === 'string'
}

/**
 * Decides one item. Scoped (--version/--run): undo that one write, putting back what it
 * replaced. Unscoped: undo every write of this tool, back to the value from before it.
 */
export function planRollback(data: DocumentData, options: Pick<RollbackOptions, 'version' | 'run'>): Plan {
  const current: unknown = data.normalized
  if (!writtenByTool(current)) return {action: 'skip'}
  if (options.version !== undefined && current.normalized_version !== options.version) return {action: 'skip'}
  if (options.run !== undefined && current.run_id !== options.run) return {action: 'skip'}
  let target: Record<string, unknown> = current
  const scoped = options.version !== undefined || options.run !== undefined
  for (;;) {
    if (!('previous' in target)) return {action: 'write', data: {normalized: FieldValue.delete()}, tag: 'removed'}
    const previous = target.previous
    if (scoped || !writtenByTool(previous)) return {action: 'write', data: {normalized: previous}, tag: 'restored'}
    target = previous
  }
}

/** `wardrobe rollback`: removes (or restores) what the backfill wrote, with the backfill's safety. */
export async function runRollback(ctx: RunContext, options: RollbackOptions): Promise<RollbackStats> {
  const {version, run} = options
  const spec = {
    kind: 'rollback' as const,
    version: version ?? null,
    resumeKey: `rollback|version=${version ?? '*'}|run=${run ?? '*'}`,
    options: {batchSize: options.batchSize, version: version ?? null, run: run ?? null, maxRate: options.maxRate ?? null},
    select: ['normalized'],
    // Scoped rollbacks read only their items: equality on one field keeps document-id order on its single-field index.
    filter:
      run !== undefined
        ? (q: FirebaseFirestore.Query) => q.where('normalized.run_id', '==', run)
        : version !== undefined
          ? (q: FirebaseFirestore.Query) => q.where('normalized.normalized_version', '==', version)
          : undefined,
    plan: (doc: {data(): DocumentData | undefined}) => planRollback(doc.data() ?? {}, options),
    dryRun: options.dryRun,
    fromStart: options.fromStart,
    batchSize: options.batchSize,
    maxRate: options.maxRate,
  }
  const outcome = await executeRun(ctx, spec)
  const stats = RollbackStatsSchema.parse({
    kind: 'rollback',
    ...baseStats(ctx, spec, outcome),
    scope: {version: version ?? null, run: run ?? null},
    removed: outcome.result.tags.removed ?? 0,
    restored: outcome.result.tags.restored ?? 0,
  })
  ctx.logger?.info('rollback finished', {...stats, errorSamples: undefined})
  return stats
}
