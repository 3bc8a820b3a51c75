/** A seed item, and the rules every source of them shares: ids, what Firestore can store, file problems. */
import {createHash} from 'node:crypto'
import {AUTO_ID_ALPHABET} from '../firestore/target'

/** One document to write: its id and its fields. */
export interface SeedItem {
  id: string
  data: Record<string, unknown>
}

/** The four fields the backfill normalizes. */
export const SEED_FIELDS = ['style', 'occasion', 'mood', 'season'] as const
export type SeedField = (typeof SEED_FIELDS)[number]

/** A deterministic auto-like id from arbitrary text (used for seed-file rows without id). */
export function hashedId(text: string): string {
  let id = ''
  for (let round = 0; id.length < 20; round++) {
    const bytes = createHash('sha256').update(`${round}\0${text}`).digest()
    for (const b of bytes) {
      if (b < 248 && id.length < 20) id += AUTO_ID_ALPHABET[b % 62] // 248 = 4 * 62: no bias
    }
  }
  return id
}

/** A problem in a seed file; `message` is one line: `file:line: problem`. */
export class SeedFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${oneLine(problem)}`)
    this.name = 'SeedFileError'
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Where `value` holds a string Firestore cannot store (a lone UTF-16 surrogate, which has
 * no UTF-8 encoding), as a field path like `style[1]`; null when there is none.
 */
export function unstorableStringPath(value: unknown, at = ''): string | null {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? at || '(value)' : null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = unstorableStringPath(value[i], `${at}[${i}]`)
      if (p) return p
    }
  } else if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (LONE_SURROGATE.test(k)) return at ? `${at}.${k}` : k
      const p = unstorableStringPath(v, at ? `${at}.${k}` : k)
      if (p) return p
    }
  }
  return null
}
const LONE_SURROGATE = /\p{Cs}/u

export function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`
}

/** Checks a document id the way Firestore would reject it, returning the problem or null. */
function idProblem(id: string): string | null {
  if (id === '') return 'empty id'
  if (id.includes('/')) return `id "${id}" contains "/"`
  if (id === '.' || id === '..') return `id "${id}" is not allowed`
  if (/^__.*__$/.test(id)) return `id "${id}" matches the reserved __*__ pattern`
  if (Buffer.byteLength(id, 'utf8') > 1500) return 'id is longer than 1500 bytes'
  return null
}

/** Turns a parsed record into a SeedItem; `ordinal` (1-based record number) feeds generated ids. */
export function toSeedItem(
  file: string,
  line: number,
  ordinal: number,
  record: Record<string, unknown>,
  seen: Set<string>,
  idText: () => string,
): SeedItem {
  const {id: rawId, ...data} = record
  let id: string
  if (rawId === undefined || rawId === null || rawId === '') {
    id = hashedId(`${ordinal}\0${idText()}`)
  } else if (typeof rawId === 'string' || (typeof rawId === 'number' && Number.isInteger(rawId))) {
    id = String(rawId)
    const problem = idProblem(id)
    if (problem) throw new SeedFileError(file, line, problem)
  } else {
    throw new SeedFileError(file, line, `"id" must be a string, found ${describe(rawId)}`)
  }
  if (seen.has(id)) throw new SeedFileError(file, line, `duplicate id "${id}"`)
  const bad = unstorableStringPath(data)
  if (bad) throw new SeedFileError(file, line, `${bad} holds a lone UTF-16 surrogate, which Firestore cannot store`)
  seen.add(id)
  return {id, data}
}
