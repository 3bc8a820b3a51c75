import {DocumentSnapshot, FieldPath, Firestore, Query} from 'firebase-admin/firestore'
import {errorMessage, isRetryable} from './errors'

export interface ScanOptions {
  /** Narrows the traversal (e.g. `normalized.run_id == X`); must keep document-id order usable. */
  filter?: (q: Query) => Query
  /** Fields to fetch; a projection cuts what each page transfers. */
  select: string[]
  /** Resume strictly after this document id. */
  startAfter: string | null
  /** Documents per query. Each query pays a fixed cost, so chunks are large; the next is read while this one is processed. */
  chunkSize: number
  signal?: AbortSignal
  /** Reports a retried read failure (for logs). */
  onRetry?: (attempt: number, err: unknown) => void
  maxAttempts?: number
}

/**
 * Yields the documents of a collection in document-id order, in resumable chunks,
 * reading the next chunk while the caller works on the current one.
 */
export async function* scanDocuments(db: Firestore, collection: string, options: ScanOptions): AsyncGenerator<DocumentSnapshot> {
  const base = (options.filter ?? ((q: Query) => q))(db.collection(collection)).orderBy(FieldPath.documentId())
  const fetchChunk = (after: string | null) => {
    let q = base.select(...options.select).limit(options.chunkSize)
    if (after !== null) q = q.startAfter(after)
    return withRetry(() => q.get(), options)
  }
  let next: Promise<DocumentSnapshot[]> | null = fetchChunk(options.startAfter).then((s) => s.docs)
  while (next) {
    const docs: DocumentSnapshot[] = await next
    if (options.signal?.aborted) return
    next = docs.length === options.chunkSize ? fetchChunk(docs[docs.length - 1].id).then((s) => s.docs) : null
    // A read-ahead that fails while nobody awaits it must not crash the process.
    next?.catch(() => {})
    for (const doc of docs) {
      if (options.signal?.aborted) return
      yield doc
    }
  }
}

/** Retries retryable Firestore errors with exponential backoff; rethrows the rest at once. */
export async function withRetry<T>(fn: () => Promise<T>, options: {maxAttempts?: number; onRetry?: (attempt: number, err: unknown) => void; signal?: AbortSignal} = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 8
  let delay = 500
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!isRetryable(err) || attempt >= maxAttempts || options.signal?.aborted) {
        if (isRetryable(err)) throw new OutageError(`Firestore unavailable after ${attempt} attempts: ${errorMessage(err)}`, err)
        throw err
      }
      options.onRetry?.(attempt, err)
      await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() / 2)))
      delay = Math.min(delay * 2, 30_000)
    }
  }
}

/** A persistent outage: the run ends as failed, with its checkpoint. */
export class OutageError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, {cause})
    this.name = 'OutageError'
  }
}
