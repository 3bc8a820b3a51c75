import {DocumentSnapshot, FieldPath, Firestore, Query} from 'firebase-admin/firestore'
import {scanDocuments} from '../../engine/scan'
import {withRetry} from '../../firestore/retry'
import {AUTO_ID_ALPHABET, isAutoId, itemKey, itemsQuery, Target} from '../../firestore/target'

/**
 * Random samples of a collection spread over its whole key space (never the first N by id).
 *
 * key-space: Firestore auto ids are 20 characters drawn uniformly from AUTO_ID_ALPHABET, so a
 *   uniformly random 20-character key lands in the gap before a uniformly random item. The
 *   sampler draws such keys and takes the document(s) at or after each one
 *   (`orderBy(documentId()).startAt(key).limit(k)`), wrapping around to the start of the
 *   collection past the last id, and dedupes. An item's chance is proportional to the gap
 *   before it; gaps come from random ids and are independent of an item's content, so
 *   any share measured on the sample (e.g. the failure rate) is an unbiased estimate.
 *   Cost: one small query per draw (a few per sampled item).
 * scan: when ids are not auto ids (e.g. `item_000123`, which pile random keys onto a few
 *   items), when the sample is at least half the population, or when draws keep hitting
 *   items already taken, the sampler reads the whole collection once (projected) and keeps
 *   an exact uniform reservoir sample (Algorithm R): one read per item, memory of one sample.
 * all: the population is no larger than the sample: every item is taken.
 * Draws run over the whole collection and skip documents outside the population, rather
 * than over a filtered query: an inequality filter with document-id order needs a composite
 * index in production, and would miss exactly the items whose `normalized` is broken.
 */

const MAX_PER_KEY = 25

export type SampleMethod = 'key-space' | 'scan' | 'all'

export interface SampleOptions {
  size: number
  /** Fields to fetch (a projection). */
  select: string[]
  /** Whether a fetched document belongs to the population (e.g. carries `normalized`). */
  include: (doc: DocumentSnapshot) => boolean
  /** A filter whose count() estimates the population; it only picks the strategy, never decides membership. */
  populationFilter?: (q: Query) => Query
  random?: () => number
  /** Draw queries in flight at once. */
  concurrency?: number
  /** Documents per query of a full scan. */
  chunkSize?: number
  signal?: AbortSignal
  onProgress?: (found: number) => void
}

export interface SampleResult {
  docs: DocumentSnapshot[]
  method: SampleMethod
  /** Documents in the collection (count()). */
  collectionTotal: number
  /** Estimated population from count(), or null when that count was not available. */
  population: number | null
  /** Sampling queries run (draws, or scan chunks). */
  queries: number
  note: string
}

export function randomAutoIdKey(random: () => number = Math.random): string {
  let key = ''
  for (let i = 0; i < 20; i++) key += AUTO_ID_ALPHABET[Math.floor(random() * AUTO_ID_ALPHABET.length)]
  return key
}

const count = async (q: Query, signal?: AbortSignal): Promise<number> =>
  (await withRetry(() => q.count().get(), {signal})).data().count

/** A uniformly random sample of `size` documents of the population, spread over the whole key space. */
export async function sampleDocuments(db: Firestore, target: Target, options: SampleOptions): Promise<SampleResult> {
  const random = options.random ?? Math.random
  const col = itemsQuery(db, target)
  const collectionTotal = await count(col, options.signal)
  let population: number | null = null
  if (options.populationFilter) {
    // Only a hint: if the index cannot serve it, sampling still works without it.
    population = await count(options.populationFilter(col), options.signal).catch(() => null)
  }
  const base = {collectionTotal, population}
  if (collectionTotal === 0) return {...base, docs: [], method: 'all', queries: 0, note: 'the collection is empty'}
  const known = population ?? collectionTotal
  if (known <= options.size) {
    const r = await reservoir(db, target, options, random)
    return {
      ...base,
      ...r,
      method: 'all',
      note: `the population (${known}) is not larger than the sample: every item taken, by a full scan`,
    }
  }
  if (options.size * 2 >= known) {
    const r = await reservoir(db, target, options, random)
    return {
      ...base,
      ...r,
      method: 'scan',
      note: `the sample is at least half the population (${known}): exact uniform sample by one full scan`,
    }
  }

  const byId = col.orderBy(FieldPath.documentId())
  // The first documents in id order, for draws that run past the last id.
  let head: Promise<DocumentSnapshot[]> | undefined
  const headDocs = (n: number) => {
    head ??= withRetry(
      () =>
        byId
          .select(...options.select)
          .limit(MAX_PER_KEY)
          .get(),
      {signal: options.signal},
    ).then((s) => s.docs)
    return head.then((docs) => docs.slice(0, n))
  }
  if (target.group) {
    const r = await reservoir(db, target, options, random)
    return {
      ...base,
      ...r,
      method: 'scan',
      note: 'a collection group is ordered by path, not by random ids: exact uniform sample by one full scan',
    }
  }
  const first = await headDocs(1)
  if (first.length > 0 && !isAutoId(first[0].id)) {
    const r = await reservoir(db, target, options, random)
    return {
      ...base,
      ...r,
      method: 'scan',
      note: `ids are not Firestore auto ids (e.g. "${first[0].id}"), so random keys would not spread evenly: exact uniform sample by one full scan`,
    }
  }

  // Enough consecutive documents per draw to expect about one member of the population.
  const share = population === null ? 1 : Math.max(population / collectionTotal, 1e-6)
  const perKey = Math.min(MAX_PER_KEY, Math.max(1, Math.round(1 / share)))
  const concurrency = options.concurrency ?? 16
  const maxQueries = 20 * options.size + 100
  const taken = new Map<string, DocumentSnapshot>()
  let queries = 0
  let nonAuto: string | undefined
  while (taken.size < options.size && queries < maxQueries && !options.signal?.aborted) {
    const wanted = Math.ceil((options.size - taken.size) / (perKey * share))
    const batch = Math.max(1, Math.min(concurrency, wanted, maxQueries - queries))
    queries += batch
    const results = await Promise.all(
      Array.from({length: batch}, async () => {
        const key = randomAutoIdKey(random)
        const snap = await withRetry(
          () =>
            byId
              .startAt(key)
              .select(...options.select)
              .limit(perKey)
              .get(),
          {signal: options.signal},
        )
        // Past the last id: wrap around to the start of the key space.
        return snap.size < perKey ? [...snap.docs, ...(await headDocs(perKey - snap.size))] : snap.docs
      }),
    )
    for (const docs of results) {
      for (const doc of docs) {
        if (!isAutoId(doc.id)) nonAuto ??= doc.id
        if (taken.size < options.size && !taken.has(itemKey(doc, target)) && options.include(doc))
          taken.set(itemKey(doc, target), doc)
      }
    }
    options.onProgress?.(taken.size)
    if (nonAuto !== undefined) {
      const r = await reservoir(db, target, options, random)
      return {
        ...base,
        ...r,
        method: 'scan',
        note: `some ids are not Firestore auto ids (e.g. "${nonAuto}"), so random keys would not spread evenly: exact uniform sample by one full scan`,
      }
    }
  }
  if (taken.size < options.size && !options.signal?.aborted) {
    const r = await reservoir(db, target, options, random)
    return {
      ...base,
      ...r,
      queries: r.queries + queries,
      method: 'scan',
      note: `${queries} random draws found only ${taken.size} distinct items: exact uniform sample by one full scan instead`,
    }
  }
  return {
    ...base,
    docs: [...taken.values()],
    method: 'key-space',
    queries,
    note: `${queries} random auto-id keys, ${perKey} document(s) at or after each, over the whole key space`,
  }
}

/** Algorithm R over one projected scan of the collection: an exact uniform sample, bounded memory. */
async function reservoir(
  db: Firestore,
  target: Target,
  options: SampleOptions,
  random: () => number,
): Promise<{docs: DocumentSnapshot[]; queries: number}> {
  const chunkSize = options.chunkSize ?? 5000
  const docs: DocumentSnapshot[] = []
  let seen = 0
  let scanned = 0
  for await (const doc of scanDocuments(db, target, {
    select: options.select,
    startAfter: null,
    chunkSize,
    signal: options.signal,
  })) {
    scanned++
    if (!options.include(doc)) continue
    seen++
    if (docs.length < options.size) docs.push(doc)
    else {
      const j = Math.floor(random() * seen)
      if (j < options.size) docs[j] = doc
    }
    if (seen % 1000 === 0) options.onProgress?.(Math.min(seen, options.size))
  }
  options.onProgress?.(docs.length)
  return {docs, queries: Math.max(1, Math.ceil(scanned / chunkSize))}
}
