/**
 * The rules of an item's `normalized` map, in one place for backfill, rollback (and later
 * monitor/validate): what a map is, which values are the tool's, the chain of `previous`
 * values and how long it may grow, and when a value is current. Pure: no I/O.
 */
import {Timestamp} from 'firebase-admin/firestore'

export const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Timestamp) && !Buffer.isBuffer(v)

/** Whether a run id names a backfill run of this tool (in practice: of the collection's ledger). */
export type Owns = (runId: string) => boolean

/** The shape of the ids the ledger gives backfill runs (ledger.ts newRunId): `backfill-20261201T052505-a1b2c3`. */
const BACKFILL_RUN_ID = /^backfill-\d{8}T\d{6}-[0-9a-f]{6}$/

/**
 * Ownership from the ledger's backfill runs of the collection. `null`: the ledger could not
 * be consulted, and the run-id format is all there is to go on. Another pipeline's run id
 * (`nightly-2024-01-15`), or one of a run the ledger does not know, is foreign.
 */
export function ownsFrom(runIds: ReadonlySet<string> | null): Owns {
  return runIds === null ? (id) => BACKFILL_RUN_ID.test(id) : (id) => runIds.has(id)
}

/** A `normalized` value this tool wrote: a map whose `run_id` the tool owns. */
export function ownedByTool(value: unknown, owns: Owns): value is Record<string, unknown> {
  return isMap(value) && typeof value.run_id === 'string' && owns(value.run_id)
}

export interface Chain {
  /** The tool's values, the current one first. */
  entries: Record<string, unknown>[]
  /** What lies under them (a foreign value, kept as it is); absent when the chain ends in "no value". */
  base?: {value: unknown}
}

/** Walks `previous` down through the tool's values to the first one that is not the tool's. */
export function toolChain(value: unknown, owns: Owns): Chain {
  const entries: Record<string, unknown>[] = []
  let node: unknown = value
  while (ownedByTool(node, owns)) {
    entries.push(node)
    if (!('previous' in node)) return {entries}
    node = node.previous
  }
  return {entries, base: {value: node}}
}

/**
 * Tool-written values kept under `previous` (the newest first). Firestore nests maps at
 * most 20 deep, so older tool entries are dropped beyond this; the value from before the
 * tool (the bottom of the chain, a foreign value included) is always kept, so a full
 * rollback stays exact.
 */
export const MAX_HISTORY = 8

/** `existing` as the `previous` of a new tool value: its oldest tool entries dropped past MAX_HISTORY. */
export function boundedHistory(existing: unknown, owns: Owns): unknown {
  const {entries, base} = toolChain(existing, owns)
  if (entries.length < MAX_HISTORY) return existing
  let chain: Record<string, unknown> | undefined
  for (const entry of entries.slice(0, MAX_HISTORY - 1).reverse()) {
    const {previous: _dropped, ...rest} = entry
    const below = chain === undefined ? base : {value: chain}
    chain = below === undefined ? rest : {...rest, previous: below.value}
  }
  return chain
}

/** What a vocabulary contributes to "current": its version and the hash of its content. */
export interface VocabularyIdentity {
  version: string
  hash: string
}

/**
 * Normalized with this very vocabulary: same version and same content. A value without
 * `taxonomy_hash` (written before it existed) is not current and is normalized once more.
 */
export function isCurrent(normalized: unknown, vocabulary: VocabularyIdentity): boolean {
  return (
    isMap(normalized) &&
    normalized.normalized_version === vocabulary.version &&
    normalized.taxonomy_hash === vocabulary.hash
  )
}
