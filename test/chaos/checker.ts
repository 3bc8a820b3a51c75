import {DocumentData, Firestore, Timestamp} from 'firebase-admin/firestore'
import {DEFAULT_LEDGER} from '../../src/config'
import {isMap, ownedByTool, ownsFrom} from '../../src/domain/normalized'
import {normalizeItem} from '../../src/domain/normalization'
import {NORMALIZED_FIELDS, Vocabulary} from '../../src/domain/vocabulary'
import {canonical} from '../support/harness'

/** A value the backfill wrote. The checker has no ledger at hand: the tool's run-id format tells. */
export const writtenByTool = (value: unknown): value is Record<string, unknown> => ownedByTool(value, ownsFrom(null))

export interface Doc {
  data: DocumentData
  updateTime: Timestamp
}

/** Every document of the collection, full fields and update time (one streamed query). */
export async function readCollection(db: Firestore, collection: string): Promise<Map<string, Doc>> {
  const out = new Map<string, Doc>()
  for await (const snap of db
    .collection(collection)
    .stream() as AsyncIterable<FirebaseFirestore.QueryDocumentSnapshot>) {
    out.set(snap.id, {data: snap.data(), updateTime: snap.updateTime})
  }
  return out
}

export const stableJson = (v: unknown): string => JSON.stringify(canonical(v))

/** The original fields of a document: everything but `normalized`, type-exact. */
export function originalsOf(data: DocumentData): string {
  const {normalized: _ignored, ...rest} = data
  return stableJson(rest)
}

/** What an item held before the backfill: its originals and any `normalized` (not the tool's). */
export interface Before {
  originals: string
  normalized?: string
}

export type Snapshot = Map<string, Before>

export async function snapshotOriginals(db: Firestore, collection: string): Promise<Snapshot> {
  return originalsSnapshot(await readCollection(db, collection))
}

export function originalsSnapshot(docs: Map<string, Doc>): Snapshot {
  const out: Snapshot = new Map()
  for (const [id, doc] of docs)
    out.set(id, {
      originals: originalsOf(doc.data),
      normalized: doc.data.normalized === undefined ? undefined : stableJson(doc.data.normalized),
    })
  return out
}

/** id -> every field (including `normalized`), type-exact: a rollback must give this back. */
export function fullSnapshot(docs: Map<string, Doc>): Map<string, string> {
  return new Map([...docs].map(([id, d]) => [id, stableJson(d.data)]))
}

/** Error items the backfill runs on this collection recorded: item id -> reasons. */
export async function ledgerErrors(
  db: Firestore,
  collection: string,
  ledger = DEFAULT_LEDGER,
): Promise<Map<string, string[]>> {
  const runs = await db.collection(ledger).where('collection', '==', collection).where('kind', '==', 'backfill').get()
  const out = new Map<string, string[]>()
  for (const run of runs.docs) {
    const errors = await run.ref.collection('errors').get()
    for (const e of errors.docs) out.set(e.id, [...(out.get(e.id) ?? []), String(e.get('reason'))])
  }
  return out
}

/** One broken guarantee kind -> count; the checker reports the first examples of each. */
export type Problems = Record<string, number>

export interface Verdict {
  items: number
  /** Well-formed items holding `normalized` computed from their current originals. */
  normalized: number
  /** Malformed items left untouched and reported with the normalizer's reason. */
  errorItems: number
  /** Items whose last write was the concurrent app's (scenario 3): not required to be normalized. */
  appLast: number
  /** Data lost: original fields changed, documents gone or back, items never written, error items not reported. */
  lost: number
  /** `normalized` not computed from the item's current originals (or written on a malformed item). */
  stale: number
  /** Other broken expectations (a wrong reason, a well-formed item reported as an error). */
  other: number
  problems: Problems
  examples: string[]
}

/** Which figure each broken guarantee counts in; the rest count as `other`. */
const LOST = new Set([
  'originals changed',
  'document missing',
  'document resurrected or unexpected',
  'well-formed item not normalized',
  'error item not reported',
  'earlier normalized not kept in previous',
])
const STALE = new Set(['normalized is stale or wrong', 'malformed item written'])

export interface Expectation {
  /** Expected originals per id (canonical JSON), undefined = must not exist. Default: the snapshot. */
  expected?: Map<string, string | undefined>
  /** Ids whose current version is the concurrent app's write: `normalized` may lag behind. */
  appLast?: (id: string, doc: Doc) => boolean
  /** Ids the app wrote: their error reports (or absence) depend on timing, so are not checked. */
  appTouched?: (id: string) => boolean
  /** Well-formed items Firestore cannot take `normalized` on (no room under 1 MiB): error items with a reason matching. */
  writeRefused?: Map<string, RegExp>
}

/**
 * Checks the whole collection after a backfill: originals byte-identical (to the snapshot
 * or the app's model), every well-formed item normalized from its current originals with
 * the right version/hash and its earlier `normalized` kept in `previous`, every malformed
 * item untouched and reported with the normalizer's reason, nothing else reported.
 */
export async function verifyBackfill(
  db: Firestore,
  collection: string,
  before: Snapshot,
  vocab: Vocabulary,
  exp: Expectation = {},
): Promise<Verdict> {
  const docs = await readCollection(db, collection)
  const reported = await ledgerErrors(db, collection)
  const expected = exp.expected ?? new Map([...before].map(([id, b]) => [id, b.originals]))
  const v: Verdict = {
    items: docs.size,
    normalized: 0,
    errorItems: 0,
    appLast: 0,
    lost: 0,
    stale: 0,
    other: 0,
    problems: {},
    examples: [],
  }
  const problem = (kind: string, id: string, detail = '') => {
    v.problems[kind] = (v.problems[kind] ?? 0) + 1
    if (LOST.has(kind)) v.lost++
    else if (STALE.has(kind)) v.stale++
    else v.other++
    if (v.problems[kind] <= 3) v.examples.push(`${kind}: ${id}${detail ? ` (${detail})` : ''}`)
  }

  for (const id of new Set([...expected.keys(), ...docs.keys()])) {
    const doc = docs.get(id)
    const want = expected.get(id)
    if (!doc) {
      if (want !== undefined) problem('document missing', id)
      continue
    }
    if (want === undefined) {
      problem('document resurrected or unexpected', id)
      continue
    }
    if (originalsOf(doc.data) !== want) problem('originals changed', id, diffHint(want, originalsOf(doc.data)))
    const appLast = exp.appLast?.(id, doc) ?? false
    const touched = exp.appTouched?.(id) ?? false
    if (appLast) v.appLast++
    const outcome = normalizeItem(doc.data, vocab)
    const current: unknown = doc.data.normalized
    // Error items: malformed ones, and well-formed ones Firestore cannot take `normalized` on.
    const refused = exp.writeRefused?.get(id)
    if (refused || !outcome.ok) {
      const expect: string | RegExp = refused ?? (outcome.ok ? '' : outcome.reason)
      // Never written: untouched by the app, such an item is exactly as before.
      const unchanged = (current === undefined ? undefined : stableJson(current)) === before.get(id)?.normalized
      if (touched ? !appLast : !unchanged) problem('malformed item written', id, String(expect))
      if (touched) continue
      const reasons = reported.get(id)
      if (!reasons) problem('error item not reported', id, String(expect))
      else if (!reasons.some((r) => (typeof expect === 'string' ? r === expect : expect.test(r))))
        problem('reported with a wrong reason', id, `${reasons[0]}, expected ${expect}`)
      else v.errorItems++
      continue
    }
    if (!touched && reported.has(id)) problem('well-formed item reported as an error', id, reported.get(id)![0])
    if (!writtenByTool(current)) {
      if (!appLast) problem('well-formed item not normalized', id)
      continue
    }
    const fresh =
      NORMALIZED_FIELDS.every((f) => stableJson(current[f]) === stableJson(outcome.values[f])) &&
      current.normalized_version === vocab.version &&
      current.source_hash === outcome.sourceHash &&
      current.normalized_at instanceof Timestamp
    if (!fresh) {
      if (!appLast)
        problem(
          'normalized is stale or wrong',
          id,
          `source_hash ${String(current.source_hash).slice(0, 8)} vs ${outcome.sourceHash.slice(0, 8)}`,
        )
      continue
    }
    // The chain of `previous` ends in what the item held before any backfill.
    const base = baseNormalized(current)
    if (!touched && (base === undefined ? undefined : stableJson(base)) !== before.get(id)?.normalized)
      problem('earlier normalized not kept in previous', id)
    v.normalized++
  }
  return v
}

/** The value under the tool's chain of `previous`: what the item held before the first backfill. */
function baseNormalized(value: unknown): unknown {
  let v = value
  while (writtenByTool(v)) v = isMap(v) && 'previous' in v ? v.previous : undefined
  return v
}

function diffHint(want: string, got: string): string {
  const a = JSON.parse(want) as Record<string, unknown>
  const b = JSON.parse(got) as Record<string, unknown>
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
    (k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]),
  )
  return `fields ${keys.join(', ')}`
}

/** Ids whose full content differs between two full snapshots. */
export function diffFull(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((id) => a.get(id) !== b.get(id))
}
