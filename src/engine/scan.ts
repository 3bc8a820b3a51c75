import type {Readable} from 'node:stream'
import {finished as streamEnd} from 'node:stream/promises'
import {DocumentSnapshot, FieldPath, Firestore, Query} from 'firebase-admin/firestore'
import {accessError, errorMessage, isRetryable, WardrobeError} from '../errors'
import {OutageError} from '../firestore/retry'
import {compareKeys, describeTarget, itemKey, itemsQuery, Target} from '../firestore/target'

export interface ScanOptions {
  /** Narrows the traversal (e.g. `normalized.run_id == X`); must keep document-id order usable. */
  filter?: (q: Query) => Query
  /** Fields to fetch; a projection cuts what each query transfers. */
  select: string[]
  /** Resume strictly after this key (document id, or path in a collection group). */
  startAfter: string | null
  /** Stop after this key, inclusive (a partition's upper bound); null = to the end. */
  endAt?: string | null
  /**
   * Most documents per query. Each query pays a fixed cost (on the emulator about the cost of
   * reading the whole collection), so chunks are large; every position is resumable anyway.
   */
  chunkSize: number
  /**
   * After the first chunk, size each next one to last about this long at the rate the caller
   * consumes (a streamed query must end well inside RunQuery's 300 s deadline). Default 120 s.
   */
  chunkSeconds?: number
  /** Documents read ahead of the caller, so a slow query start overlaps with its work. Default 2000. */
  readAhead?: number
  signal?: AbortSignal
  /** Reports a retried read failure (for logs). */
  onRetry?: (attempt: number, err: unknown) => void
  maxAttempts?: number
}

const MIN_CHUNK = 1000

/**
 * Yields the documents of a target in key order from streamed queries of up to
 * `chunkSize` documents, reading ahead of the caller. A query that fails mid-stream is
 * restarted after the last document received (retryable errors, with backoff), so no
 * document is skipped or yielded twice.
 */
export async function* scanDocuments(
  db: Firestore,
  target: Target,
  options: ScanOptions,
): AsyncGenerator<DocumentSnapshot> {
  for await (const docs of scanBatches(db, target, options)) {
    for (const doc of docs) {
      if (options.signal?.aborted) return
      yield doc
    }
  }
}

/**
 * scanDocuments in batches: whatever has been read ahead when the caller asks, in key order.
 * For callers that spend little time per document, where an await per document would cost
 * as much as the work.
 */
export async function* scanBatches(
  db: Firestore,
  target: Target,
  options: ScanOptions,
): AsyncGenerator<DocumentSnapshot[]> {
  let base = (options.filter ?? ((q: Query) => q))(itemsQuery(db, target))
    .orderBy(FieldPath.documentId())
    .select(...options.select)
  if (options.endAt != null) base = base.endAt(options.endAt)
  const readAhead = Math.max(1, options.readAhead ?? 2000)
  const maxAttempts = options.maxAttempts ?? 8
  const {signal} = options

  let buffer: DocumentSnapshot[] = []
  let finished = false
  let failure: unknown = null
  let stopped = false
  let wakeConsumer: (() => void) | null = null
  let current: Readable | null = null
  const wake = () => {
    const w = wakeConsumer
    wakeConsumer = null
    w?.()
  }
  const resume = () => {
    if (current?.isPaused()) current.resume()
  }
  const stop = () => {
    stopped = true
    if (current && !current.readableEnded) cancelStream(current)
    wake()
  }
  const onAbort = stop
  signal?.addEventListener('abort', onAbort, {once: true})

  const pump = async () => {
    let after = options.startAfter
    let limit = options.chunkSize
    let attempt = 0
    let delay = 500
    while (!stopped) {
      let q = base.limit(limit)
      if (after !== null) q = q.startAfter(after)
      const started = Date.now()
      let received = 0
      const stream = q.stream() as unknown as Readable
      current = stream
      let misordered: WardrobeError | null = null
      // The newest document is held back until the next one (or the stream's end) confirms the
      // order: a key at or before the last one (a duplicate, a document out of order) or past
      // the range's end would move the cursor, and the checkpoint after it, where the scan has
      // not been, skipping items for good. Such an answer stops the scan before either
      // document reaches the caller.
      let held: {doc: DocumentSnapshot; key: string} | null = null
      const accept = () => {
        received++
        after = held!.key
        buffer.push(held!.doc)
        held = null
        if (buffer.length === 1) setImmediate(wake)
      }
      try {
        // The client hands documents over one by one, a few microtasks apart: the caller wakes
        // once those of one network read are all in the buffer, and takes them as one batch.
        stream.on('data', (doc: DocumentSnapshot) => {
          if (misordered) return
          const key = itemKey(doc, target)
          const last = held?.key ?? after
          if (
            (last !== null && compareKeys(key, last) <= 0) ||
            (options.endAt != null && compareKeys(key, options.endAt) > 0)
          ) {
            misordered = new WardrobeError(
              `Firestore answered ${key} after ${last ?? 'the start'} in a scan of ${describeTarget(target)} in key order${options.endAt != null ? ` up to ${options.endAt}` : ''} (a duplicate, or a document out of order or outside the range); stopped without checkpointing past ${after ?? 'the start'}: run the same command again to resume from there`,
            )
            return cancelStream(stream)
          }
          if (held) accept()
          held = {doc, key}
          // Backpressure: the stream (and the server behind it) waits while the caller catches up.
          if (buffer.length >= readAhead) stream.pause()
        })
        await streamEnd(stream).catch((err: unknown) => {
          if (!misordered) throw err
        })
        if (misordered) throw misordered
        if (held) accept()
        if (stopped) return
      } catch (err) {
        if (err === misordered) throw err
        if (stopped) return
        if (received > 0) {
          attempt = 0
          delay = 500
        }
        attempt++
        if (!isRetryable(err) || attempt >= maxAttempts) {
          if (isRetryable(err))
            throw new OutageError(`Firestore unavailable after ${attempt} attempts: ${errorMessage(err)}`, err)
          throw accessError(err, 'reading', describeTarget(target)) ?? err
        }
        options.onRetry?.(attempt, err)
        await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() / 2)))
        delay = Math.min(delay * 2, 30_000)
        // Resumes after the last document received (a held one is asked for again), with a fresh limit.
        continue
      }
      if (received < limit) return
      const seconds = (Date.now() - started) / 1000
      const rate = received / Math.max(seconds, 0.001)
      limit = Math.round(Math.min(options.chunkSize, Math.max(MIN_CHUNK, rate * (options.chunkSeconds ?? 120))))
    }
  }
  const pumping = pump().then(
    () => {
      finished = true
      wake()
    },
    (err: unknown) => {
      failure = err
      finished = true
      wake()
    },
  )

  try {
    for (;;) {
      if (stopped) return
      if (buffer.length > 0) {
        const docs = buffer
        buffer = []
        resume()
        yield docs
        continue
      }
      if (finished) {
        if (failure) throw failure
        return
      }
      await new Promise<void>((r) => (wakeConsumer = r))
    }
  } finally {
    stop()
    signal?.removeEventListener('abort', onAbort)
    void pumping
  }
}

/**
 * Abandons a query stream midway. Destroying the stream the client returns does not end the
 * RPC behind it: the client keeps waiting for the server, and Firestore.terminate() (the
 * commands' exit) would wait for it too, up to the RunQuery deadline. So every stream up the
 * pipe chain is destroyed, including sources that attach later (a query not started yet),
 * and the RPC stream at its top is cancelled.
 */
function cancelStream(stream: Readable): void {
  const seen = new Set<Readable>()
  const end = (s: Readable & {cancel?: () => void}) => {
    if (seen.has(s)) return
    seen.add(s)
    if (typeof s.cancel === 'function') s.cancel()
    s.on('unpipe', end)
    s.on('pipe', end)
    s.destroy()
  }
  end(stream)
}
