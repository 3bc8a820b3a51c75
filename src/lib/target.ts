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
