/** Loads seed items into Firestore through a BulkWriter. */
import type {Firestore} from 'firebase-admin/firestore'
import {SeedItem, unstorableStringPath} from './seed-item'

const FLUSH_EVERY = 5000
const PROGRESS_EVERY = 500

/**
 * Writes items with `set` through an unthrottled BulkWriter (BulkWriter retries retryable
 * errors itself), flushing every 5,000 writes so memory and in-flight writes stay
 * bounded. `onProgress` gets the number of acknowledged writes, every 500 and at the
 * end. Returns the number written. The first write that finally fails stops reading,
 * waits for the writes in flight and rejects with an error naming the document (a failed
 * batch RPC fails all its writes, so the one named is not necessarily the culprit). An
 * item holding a string Firestore cannot store (lone surrogate) is refused before it is
 * sent. An error from `items` (e.g. a SeedFileError) rejects as is; writes enqueued before
 * it are completed, not undone.
 */
export async function writeItems(
  db: Firestore,
  /** A collection path, or one per item (e.g. items spread under many users). */
  collection: string | ((index: number) => string),
  items: Iterable<SeedItem> | AsyncIterable<SeedItem>,
  onProgress?: (written: number) => void,
): Promise<number> {
  const col = typeof collection === 'string' ? db.collection(collection) : null
  const writer = db.bulkWriter({throttling: false})
  let enqueued = 0
  let written = 0
  let reported = 0
  let failure: Error | undefined
  let failures = 0
  let closed = false
  try {
    for await (const item of items) {
      if (failure) break
      const ref = (col ?? db.collection((collection as (index: number) => string)(enqueued))).doc(item.id)
      const bad = unstorableStringPath(item.data)
      // refused up front: Firestore would fail the whole batch RPC, not just this write
      if (bad)
        throw new Error(`cannot write ${ref.path}: ${bad} holds a lone UTF-16 surrogate, which Firestore cannot store`)
      writer.set(ref, item.data).then(
        () => {
          written++
          if (onProgress && written - reported >= PROGRESS_EVERY) {
            reported = written
            onProgress(written)
          }
        },
        (error: unknown) => {
          failures++
          failure ??= new Error(
            `could not write ${ref.path}: ${error instanceof Error ? error.message : String(error)}`,
            {cause: error},
          )
        },
      )
      if (++enqueued % FLUSH_EVERY === 0) await writer.flush()
    }
    closed = true
    await writer.close()
  } finally {
    if (!closed) await writer.close().catch(() => undefined)
  }
  if (failure) {
    if (failures > 1) failure.message += ` (${failures} writes failed in all)`
    throw failure
  }
  if (onProgress && written !== reported) onProgress(written)
  return written
}
