import {DocumentData, FieldValue} from 'firebase-admin/firestore'
import {UsageError} from '../errors'
import type {Plan} from '../engine/job'
import {zeroCounters} from '../engine/ledger'
import {ownedByTool, Owns, ownsFrom, toolChain} from '../domain/normalized'
import {RollbackStats, RollbackStatsSchema} from './reports'
import {baseStats, executeRun, RunOutcome} from '../engine/run'
import type {RunContext} from '../engine/run-context'
import {readRunHistory, RunHistory} from '../engine/run-history'
import {resumeKey} from '../engine/run-identity'
import {targetOf} from '../firestore/target'

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

/** What one rollback undoes. */
export interface RollbackScope {
  owns: Owns
  /**
   * Scoped (--version/--run): whether the item's current tool value is one this rollback
   * undoes, one step. Null: unscoped, every tool value down to the one from before the tool.
   */
  undoes: ((value: Record<string, unknown>) => boolean) | null
}

const restore = (value: unknown): Plan => ({action: 'write', data: {normalized: value}, tag: 'restored'})
const REMOVE: Plan = {action: 'write', data: {normalized: FieldValue.delete()}, tag: 'removed'}

/**
 * Decides one item. A value the tool does not own is left as it is (counted `foreign`).
 * Scoped: undo the current value if it is in scope, putting back what it replaced. Unscoped:
 * put back what lies under the tool's chain (a foreign value, exactly), or remove the field.
 */
export function planRollback(data: DocumentData, scope: RollbackScope): Plan {
  const current: unknown = data.normalized
  if (current === undefined) return {action: 'skip'}
  if (!ownedByTool(current, scope.owns)) return {action: 'skip', tag: 'foreign'}
  if (scope.undoes) {
    if (!scope.undoes(current)) return {action: 'skip'}
    return 'previous' in current ? restore(current.previous) : REMOVE
  }
  const {base} = toolChain(current, scope.owns)
  return base ? restore(base.value) : REMOVE
}

/**
 * The backfill runs a scoped rollback undoes: the named run, or every run at the version,
 * less those a completed rollback already undid, so re-running a completed rollback
 * undoes nothing more. Null when the ledger could not be read.
 */
export function rollbackTargets(
  history: RunHistory | null,
  options: Pick<RollbackOptions, 'version' | 'run'>,
  collection: string,
): string[] | null {
  const {version, run} = options
  if (history === null) return run === undefined ? null : [run]
  if (run !== undefined && !history.backfills.has(run)) {
    throw new UsageError(
      `run ${run} is not a backfill run of ${collection} in the ledger`,
      'list runs with `wardrobe monitor`, or use --version',
    )
  }
  const candidates =
    run !== undefined ? [run] : [...history.backfills].filter(([, v]) => v === version).map(([id]) => id)
  return candidates.filter((id) => !history.rolledBack.has(id)).sort()
}

/** `wardrobe rollback`: removes (or restores) what the backfill wrote, with the backfill's safety. */
export async function runRollback(ctx: RunContext, options: RollbackOptions): Promise<RollbackStats> {
  const {version, run} = options
  const scoped = version !== undefined || run !== undefined
  const history = await readRunHistory(ctx)
  const owns = ownsFrom(history && new Set(history.backfills.keys()))
  const targets = scoped ? rollbackTargets(history, options, ctx.settings.collection) : null
  const undoes = scoped ? undoing(targets, version) : null
  const spec = {
    kind: 'rollback' as const,
    version: version ?? null,
    resumeKey: resumeKey({
      kind: 'rollback',
      version: version ?? null,
      run: run ?? null,
      targets,
      group: targetOf(ctx.settings).group,
    }),
    // `targets`: what this rollback undoes, for later rollbacks to leave alone once it completes.
    options: {
      batchSize: options.batchSize,
      version: version ?? null,
      run: run ?? null,
      maxRate: options.maxRate ?? null,
      targets,
    },
    select: ['normalized'],
    // Scoped rollbacks read only their items: equality on one field keeps document-id order on its single-field index.
    filter:
      run !== undefined
        ? (q: FirebaseFirestore.Query) => q.where('normalized.run_id', '==', run)
        : version !== undefined
          ? (q: FirebaseFirestore.Query) => q.where('normalized.normalized_version', '==', version)
          : undefined,
    plan: (doc: {data(): DocumentData | undefined}) => planRollback(doc.data() ?? {}, {owns, undoes}),
    dryRun: options.dryRun,
    fromStart: options.fromStart,
    batchSize: options.batchSize,
    // Unscoped (or scoped without a readable ledger): every backfill run.
    undoes: {runIds: targets},
  }
  // Every run in scope already undone: nothing to read, nothing to record.
  const outcome = targets?.length === 0 ? nothingToDo() : await executeRun(ctx, spec)
  const stats = RollbackStatsSchema.parse({
    kind: 'rollback',
    ...baseStats(ctx, spec, outcome),
    scope: {version: version ?? null, run: run ?? null, targets},
    removed: outcome.result.tags.removed ?? 0,
    restored: outcome.result.tags.restored ?? 0,
    foreign: outcome.result.tags.foreign ?? 0,
  })
  ctx.logger?.info('rollback finished', {...stats, errorSamples: undefined})
  return stats
}

/** A scoped rollback undoes values of its target runs; without a readable ledger, every tool value at the version. */
function undoing(targets: string[] | null, version: string | undefined): NonNullable<RollbackScope['undoes']> {
  if (targets === null) return (value) => value.normalized_version === version
  const set = new Set(targets)
  return (value) => set.has(value.run_id as string)
}

function nothingToDo(): RunOutcome {
  const now = new Date()
  const result = {
    status: 'completed' as const,
    counters: zeroCounters(),
    unmapped: {},
    tags: {},
    errorSamples: [],
    cursor: null,
  }
  return {
    result,
    runId: null,
    resumed: false,
    total: 0,
    scannedHere: 0,
    partitions: 0,
    startedAt: now,
    finishedAt: now,
    writeRetries: 0,
  }
}
