import {DocumentReference, DocumentSnapshot, Firestore, Query} from 'firebase-admin/firestore'

/**
 * What a command works on: one top-level collection, or (`group`) every collection of that
 * name at any depth, e.g. `users/{uid}/wardrobe`. In a group, items are keyed and ordered
 * by their full path (ids repeat across parents); in a collection, by their id.
 */
export interface Target {
  collection: string
  group: boolean
}

export function itemsQuery(db: Firestore, target: Target): Query {
  return target.group ? db.collectionGroup(target.collection) : db.collection(target.collection)
}

/** The key the traversal orders, checkpoints and reports by: the id, or the path in a group. */
export function itemKey(doc: Pick<DocumentSnapshot, 'ref'>, target: Target): string {
  return refKey(doc.ref, target)
}

export function refKey(ref: DocumentReference, target: Target): string {
  return target.group ? ref.path : ref.id
}

/**
 * Firestore's order of keys: path segment by segment, numeric ids (`__id7__`) first by
 * value, other ids by their UTF-8 bytes (not JavaScript's UTF-16 order).
 */
export function compareKeys(a: string, b: string): number {
  const sa = a.split('/')
  const sb = b.split('/')
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const c = compareSegments(sa[i], sb[i])
    if (c !== 0) return c
  }
  return sa.length - sb.length
}

const NUMERIC_ID = /^__id(-?\d+)__$/
const BEYOND_BMP_ORDER = /[\uD800-\uFFFF]/

function compareSegments(a: string, b: string): number {
  const na = NUMERIC_ID.exec(a)
  const nb = NUMERIC_ID.exec(b)
  if (na && nb) return BigInt(na[1]) < BigInt(nb[1]) ? -1 : BigInt(na[1]) > BigInt(nb[1]) ? 1 : 0
  if (na || nb) return na ? -1 : 1
  // Below the surrogates UTF-16 order is UTF-8 byte order: no encoding in the common case.
  if (!BEYOND_BMP_ORDER.test(a) && !BEYOND_BMP_ORDER.test(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/**
 * Firestore auto ids: 20 characters drawn uniformly from this alphabet. Random keys over it
 * spread evenly among generated ids (validation's sampler, even partition splits).
 */
export const AUTO_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const AUTO_ID = /^[A-Za-z0-9]{20}$/

export function isAutoId(id: string): boolean {
  return AUTO_ID.test(id)
}

export function describeTarget(target: Target): string {
  return target.group ? `collection group ${target.collection}` : target.collection
}

/** The flags that name this target on a command line. */
export function targetFlag(target: Target): string[] {
  return [target.group ? '--collection-group' : '--collection', target.collection]
}

/** The target of resolved settings (services accept settings without `group`: a collection). */
export function targetOf(settings: {collection: string; group?: boolean}): Target {
  return {collection: settings.collection, group: settings.group ?? false}
}
