/**
 * Where the ledger keeps what, beside the run records in the ledger collection: one home for
 * these names, so the rule that keeps items out of them cannot fall behind the ledger.
 */

/** The lock documents of ledger `L` live in `L_locks`, one per target collection. */
export function lockCollectionOf(ledger: string): string {
  return `${ledger}_locks`
}

/** Subcollections of every run record: `L/{runId}/errors`, `L/{runId}/partitions`. */
export const RUN_SUBCOLLECTIONS = ['errors', 'partitions'] as const

/**
 * How a target would take in the ledger's own documents (a backfill would then write items'
 * fields into run records, locks or error records), or null when it stays apart.
 * A top-level target meets only top-level collections; a collection group meets every
 * collection of its id at any depth, the runs' subcollections included, whatever the
 * ledger is called (`ledgerNameMatters: false`).
 */
export function ledgerOverlap(target: {collection: string; group: boolean}, ledger: string): {relation: string; ledgerNameMatters: boolean} | null {
  const {collection, group} = target
  if (collection === ledger) return {relation: 'is', ledgerNameMatters: true}
  if (collection === lockCollectionOf(ledger)) return {relation: 'holds the run locks of', ledgerNameMatters: true}
  if (group && (RUN_SUBCOLLECTIONS as readonly string[]).includes(collection)) return {relation: `takes in the ${collection} records of every run (${ledger}/{runId}/${collection}) of`, ledgerNameMatters: false}
  return null
}
