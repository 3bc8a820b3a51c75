import {errorMessage} from '../errors'
import {Ledger, RunRecordSchema} from './ledger'
import type {RunContext} from './run-context'
import {withRetry} from '../firestore/retry'

/** What a run needs of the collection's earlier runs: a few fields of each record. */
const HistoryRecordSchema = RunRecordSchema.pick({runId: true, kind: true, status: true, version: true, options: true})

export interface RunHistory {
  /** Every backfill run of the collection (any status: each may have written values): id → version. */
  backfills: ReadonlyMap<string, string | null>
  /** Backfill runs a completed rollback undid: the targets it recorded. */
  rolledBack: ReadonlySet<string>
}

/** The backfill runs a rollback undoes, as it records them in its run's options (`targets`). */
export function recordedTargets(options: Record<string, unknown>): string[] {
  const targets = options.targets
  return Array.isArray(targets) ? targets.filter((t): t is string => typeof t === 'string') : []
}

/**
 * The collection's runs from the ledger, read once at a run's start (one writing run at a
 * time: no backfill can start meanwhile). Null when the ledger cannot be read: callers then
 * know the tool's values by their run-id format only.
 */
export async function readRunHistory(ctx: RunContext): Promise<RunHistory | null> {
  const {db, settings} = ctx
  const ledger = new Ledger(db, settings.ledgerCollection)
  try {
    const snap = await withRetry(
      () =>
        ledger
          .runs()
          .where('collection', '==', settings.collection)
          .select('runId', 'kind', 'status', 'version', 'options')
          .get(),
      {
        signal: ctx.signal,
        budgetMs: settings.outageAfterMs,
      },
    )
    const backfills = new Map<string, string | null>()
    const rolledBack = new Set<string>()
    for (const doc of snap.docs) {
      const parsed = HistoryRecordSchema.safeParse(doc.data())
      // A record that is not a run's is no evidence of ownership: its values stay foreign.
      if (!parsed.success) continue
      const run = parsed.data
      if (run.kind === 'backfill') backfills.set(run.runId, run.version)
      else if (run.status === 'completed') for (const id of recordedTargets(run.options)) rolledBack.add(id)
    }
    return {backfills, rolledBack}
  } catch (err) {
    ctx.logger?.warn("the ledger cannot be read: values count as the tool's by their run-id format", {
      error: errorMessage(err),
    })
    return null
  }
}
