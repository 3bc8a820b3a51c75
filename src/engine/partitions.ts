import {FieldPath, Firestore, Query} from 'firebase-admin/firestore'
import {GrpcCode} from '../errors'
import type {KeyRange} from './checkpoint'
import {scanDocuments} from './scan'
import {withRetry} from '../firestore/retry'
import {AUTO_ID_ALPHABET, isAutoId, itemKey, itemsQuery, Target} from '../firestore/target'

/** A transaction creates every partition record with the run; Firestore allows 500 writes in one. */
export const MAX_PARTITIONS = 400

export type SplitMethod = 'single' | 'partition-query' | 'even-auto-id' | 'sampled'

export interface PartitionPlan {
  ranges: KeyRange[]
  method: SplitMethod
}

export interface PlanOptions {
  count: number
  /** Items in scope (from count()): the stride of a sampled split. */
  total: number
  filter?: (q: Query) => Query
  signal?: AbortSignal
}

/**
 * Splits the target's key space into at most `count` contiguous ranges. Split points come
 * from Firestore's PartitionQuery where the service offers it; otherwise from an even split
 * of the auto-id alphabet when ids are generated, or from every n-th key of the scope.
 * Any increasing split points are correct (ranges are contiguous and cover everything);
 * their choice only decides how evenly work spreads.
 */
export async function planPartitions(db: Firestore, target: Target, options: PlanOptions): Promise<PartitionPlan> {
  const count = Math.min(MAX_PARTITIONS, Math.max(1, Math.floor(options.count)))
  if (count === 1 || options.total < 2) return {ranges: [{startAfter: null, endAt: null}], method: 'single'}
  // Asked of the emulator too (one call answered UNIMPLEMENTED): a test-side proxy in front of
  // it answers the way the service does, so this path runs end to end in tests.
  const points = await partitionQuerySplits(db, target, count)
  if (points) return {ranges: toRanges(points), method: 'partition-query'}
  const scope = (options.filter ?? ((q: Query) => q))(itemsQuery(db, target))
  const head = await withRetry(() => scope.orderBy(FieldPath.documentId()).select().limit(50).get(), {
    signal: options.signal,
  })
  if (!target.group && head.size > 0 && head.docs.every((d) => isAutoId(d.id)))
    return {ranges: toRanges(evenAutoIdSplits(count)), method: 'even-auto-id'}
  return {ranges: toRanges(await sampledSplits(db, target, count, options)), method: 'sampled'}
}

/** Split points from PartitionQuery, or null where it is not offered. */
async function partitionQuerySplits(db: Firestore, target: Target, count: number): Promise<string[] | null> {
  try {
    const points: string[] = []
    // PartitionQuery works on collection groups only; a collection keeps the points that fall in it.
    for await (const partition of db.collectionGroup(target.collection).getPartitions(count)) {
      const ref = partition.endBefore?.[0] as FirebaseFirestore.DocumentReference | undefined
      if (!ref) continue
      if (target.group) points.push(ref.path)
      else if (ref.parent.path === target.collection) points.push(ref.id)
    }
    return points
  } catch (err) {
    if ((err as {code?: number}).code === GrpcCode.UNIMPLEMENTED) return null
    throw err
  }
}

/** Two-character prefixes evenly spaced over the auto-id alphabet, in Firestore's (byte) order. */
export function evenAutoIdSplits(count: number): string[] {
  const alphabet = [...AUTO_ID_ALPHABET].sort()
  const space = alphabet.length * alphabet.length
  const points: string[] = []
  for (let i = 1; i < count; i++) {
    const n = Math.floor((i * space) / count)
    points.push(alphabet[Math.floor(n / alphabet.length)] + alphabet[n % alphabet.length])
  }
  return points
}

/** Every n-th key of one keys-only scan of the scope. */
async function sampledSplits(db: Firestore, target: Target, count: number, options: PlanOptions): Promise<string[]> {
  const stride = Math.max(1, Math.ceil(options.total / count))
  const points: string[] = []
  let seen = 0
  for await (const doc of scanDocuments(db, target, {
    select: [],
    filter: options.filter,
    startAfter: null,
    chunkSize: 100_000,
    signal: options.signal,
  })) {
    if (++seen % stride === 0 && points.length < count - 1) points.push(itemKey(doc, target))
  }
  return points
}

function toRanges(points: string[]): KeyRange[] {
  const sorted = [...new Set(points)]
  const ranges: KeyRange[] = []
  let previous: string | null = null
  for (const point of sorted) {
    ranges.push({startAfter: previous, endAt: point})
    previous = point
  }
  ranges.push({startAfter: previous, endAt: null})
  return ranges
}
