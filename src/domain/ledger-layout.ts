/**
 * Where the ledger keeps what, beside the run records in the ledger collection: one home for
 * these names, so the rule that keeps items out of them cannot fall behind the ledger.
 */

/**
 * The lock documents, one per target collection, in one place whatever the ledger
 * collection: two ledgers must not mean two locks on one collection. A lock names the
 * ledger its run lives in.
 */
export const LOCK_COLLECTION = '_backfill_locks'

/** Subcollections of every run record: `L/{runId}/errors`, `L/{runId}/partitions`, `L/{runId}/processes` (a sharded run's processes). */
export const RUN_SUBCOLLECTIONS = ['errors', 'partitions', 'processes'] as const

/**
 * How a target would take in the ledger's own documents (a backfill would then write items'
 * fields into run records, locks or error records), or null when it stays apart.
 * A top-level target meets only top-level collections; a collection group meets every
 * collection of its id at any depth, the runs' subcollections included, whatever the
 * ledger is called (`ledgerNameMatters: false`).
 */
export function ledgerOverlap(
  target: {collection: string; group: boolean},
  ledger: string,
): {relation: string; ledgerNameMatters: boolean} | null {
  const {collection, group} = target
  if (collection === ledger) return {relation: 'is', ledgerNameMatters: true}
  if (collection === LOCK_COLLECTION)
    return {relation: 'is the lock collection of every ledger, including', ledgerNameMatters: false}
  if (group && (RUN_SUBCOLLECTIONS as readonly string[]).includes(collection))
    return {
      relation: `takes in the ${collection} records of every run (${ledger}/{runId}/${collection}) of`,
      ledgerNameMatters: false,
    }
  return null
}
