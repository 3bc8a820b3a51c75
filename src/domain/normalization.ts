import crypto from 'node:crypto'

import {NORMALIZED_FIELDS, NormalizedField, Vocabulary} from './vocabulary'

/** A single value longer than this (after trim) makes the item an error item. */
export const MAX_VALUE_LENGTH = 100
/** More values than this in one field makes the item an error item. */
export const MAX_VALUES_PER_FIELD = 50

export type NormalizedValues = Record<NormalizedField, string[]>

/** A value of one field, in its folded form: unmapped (the vocabulary does not know it) or a placeholder. */
export interface FieldValue {
  field: NormalizedField
  value: string
}

export type NormalizeOutcome =
  /** `placeholders`: values meaning "nothing" (NA, none, ...), left out of `values` as if missing; once per field and spelling. */
  | {ok: true; values: NormalizedValues; unmapped: FieldValue[]; placeholders: FieldValue[]; sourceHash: string}
  | {ok: false; field: NormalizedField; reason: string}

// A UTF-16 high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const SURROGATE = /[\uD800-\uDFFF]/
// String.prototype.isWellFormed (Node >= 20 has it; the lib typings here are ES2022).
const nativeIsWellFormed = (String.prototype as {isWellFormed?: (this: string) => boolean}).isWellFormed
function isWellFormed(s: string): boolean {
  if (nativeIsWellFormed !== undefined) return nativeIsWellFormed.call(s)
  return !SURROGATE.test(s) || !LONE_SURROGATE.test(s)
}

// One-shot hashing (Node >= 20.12) avoids a Hash object per item; older 20.x falls back.
const oneShotHash = (crypto as {hash?: (algorithm: string, data: string, encoding: 'hex') => string}).hash
function sha256Hex(text: string): string {
  return oneShotHash !== undefined
    ? oneShotHash('sha256', text, 'hex')
    : crypto.createHash('sha256').update(text).digest('hex')
}

/** A short name for a value's type, in Firestore terms where it has one ("map", "Timestamp", ...). */
export function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  const t = typeof value
  if (t !== 'object') return t
  if (Buffer.isBuffer(value)) return 'Buffer'
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === null || proto === Object.prototype) return 'map'
  const name = (value as {constructor?: {name?: unknown}}).constructor?.name
  return typeof name === 'string' && name !== '' && name !== 'Object' ? name : 'object'
}

/** Where a value came from, to name it in a reason (built only when there is one). */
type Where = 'string' | 'comma' | 'element'

function label(field: NormalizedField, where: Where, index: number): string {
  if (where === 'element') return `${field}[${index}]`
  if (where === 'comma') return `${field} (comma-separated value ${index + 1})`
  return field
}

/** What an item's values beyond the normalized arrays amount to. */
interface Found {
  unmapped: FieldValue[]
  placeholders: FieldValue[]
}

/**
 * Checks one raw value, resolves it and appends it to `out` (first-seen order, no
 * duplicates, no empty strings, no placeholders). Returns an error reason, or undefined when fine.
 */
function addValue(
  vocab: Vocabulary,
  field: NormalizedField,
  where: Where,
  index: number,
  raw: string,
  out: string[],
  found: Found,
): string | undefined {
  if (raw.length > MAX_VALUE_LENGTH) {
    const len = raw.trim().length
    if (len > MAX_VALUE_LENGTH)
      return `${label(field, where, index)}: value is ${len} characters long (max ${MAX_VALUE_LENGTH})`
  }
  if (!isWellFormed(raw)) return `${label(field, where, index)}: invalid Unicode (lone UTF-16 surrogate)`
  const r = vocab.resolve(field, raw)
  if (r.placeholder) {
    // `-` folds to nothing: reported as typed.
    const value = r.value === '' ? raw.trim() : r.value
    if (!found.placeholders.some((p) => p.field === field && p.value === value)) found.placeholders.push({field, value})
    return undefined
  }
  if (r.value === '' || out.includes(r.value)) return undefined
  out.push(r.value)
  if (!r.mapped) found.unmapped.push({field, value: r.value})
  return undefined
}

function normalizeField(
  vocab: Vocabulary,
  field: NormalizedField,
  raw: unknown,
  out: string[],
  found: Found,
): string | undefined {
  if (raw === undefined || raw === null) return undefined
  if (typeof raw === 'string') {
    if (!raw.includes(',')) return addValue(vocab, field, 'string', 0, raw, out, found)
    const parts = raw.split(',')
    if (parts.length > MAX_VALUES_PER_FIELD) {
      let n = 0
      for (const p of parts) if (p.trim() !== '') n++
      if (n > MAX_VALUES_PER_FIELD) return `${field}: ${n} comma-separated values (max ${MAX_VALUES_PER_FIELD})`
    }
    for (let i = 0; i < parts.length; i++) {
      const err = addValue(vocab, field, 'comma', i, parts[i], out, found)
      if (err !== undefined) return err
    }
    return undefined
  }
  if (Array.isArray(raw)) {
    if (raw.length > MAX_VALUES_PER_FIELD) return `${field}: ${raw.length} values (max ${MAX_VALUES_PER_FIELD})`
    for (let i = 0; i < raw.length; i++) {
      const el: unknown = raw[i]
      if (typeof el !== 'string') {
        const type = describeType(el)
        return `${field}[${i}]: expected a string, got ${type}${type === 'array' ? ' (nested arrays are not supported)' : ''}`
      }
      const err = addValue(vocab, field, 'element', i, el, out, found)
      if (err !== undefined) return err
    }
    return undefined
  }
  return `${field}: expected an array of strings or a string, got ${describeType(raw)}`
}

/**
 * Normalizes the four fields of one item. Accepted per field: an array of strings, a
 * string (comma-separated values allowed), missing/undefined/null (→ []). Anything else
 * makes the item an error item ({ok: false}) that must not be written. A placeholder
 * (`NA`, `none`, ...) counts as missing: a field of placeholders only gives [], a mix keeps
 * the real values.
 */
export function normalizeItem(data: Record<string, unknown>, vocab: Vocabulary): NormalizeOutcome {
  const found: Found = {unmapped: [], placeholders: []}
  const values: NormalizedValues = {style: [], occasion: [], mood: [], season: []}
  for (const field of NORMALIZED_FIELDS) {
    const reason = normalizeField(vocab, field, data[field], values[field], found)
    if (reason !== undefined) return {ok: false, field, reason}
  }
  return {ok: true, values, unmapped: found.unmapped, placeholders: found.placeholders, sourceHash: sourceHash(data)}
}

const MAX_DEPTH = 32
const isString = (v: unknown): v is string => typeof v === 'string'
// Objects on the current serialization path (cycle guard); stableStringify is synchronous and
// removes what it adds, so one set serves every call without a per-call allocation.
const SEEN = new Set<object>()

/** Deterministic JSON-like text of any value: sorted map keys, tagged special types, no throws on cycles. */
function stableStringify(value: unknown, depth: number, seen: Set<object>): string {
  if (value === undefined || value === null) return 'null'
  if (Array.isArray(value) && value.every(isString)) return JSON.stringify(value) // the usual case
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : `{"$number":"${String(value)}"}`
    case 'bigint':
      return `{"$bigint":"${value.toString()}"}`
    case 'symbol':
    case 'function':
      return `{"$type":"${typeof value}"}`
    default:
      break
  }
  const obj = value as object
  if (depth > MAX_DEPTH) return '{"$type":"too deep"}'
  if (seen.has(obj)) return '{"$type":"circular"}'
  seen.add(obj)
  try {
    if (Array.isArray(obj)) {
      let s = '['
      for (let i = 0; i < obj.length; i++) s += (i === 0 ? '' : ',') + stableStringify(obj[i], depth + 1, seen)
      return s + ']'
    }
    if (ArrayBuffer.isView(obj)) {
      const b = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength)
      return `{"$bytes":"${b.toString('base64')}"}`
    }
    if (obj instanceof Date) return `{"$date":${JSON.stringify(String(obj.getTime()))}}`
    const type = describeType(obj)
    const ref = obj as {path?: unknown; id?: unknown; firestore?: unknown}
    // A DocumentReference holds its whole Firestore client; its path is its identity.
    if (typeof ref.path === 'string' && typeof ref.id === 'string' && ref.firestore !== undefined) {
      return `{"$ref":${JSON.stringify(ref.path)}}`
    }
    const keys = Object.keys(obj).sort()
    let s = type === 'map' ? '{' : `{"$type":${JSON.stringify(type)}`
    let first = type === 'map'
    for (const k of keys) {
      s +=
        (first ? '' : ',') +
        JSON.stringify(k) +
        ':' +
        stableStringify((obj as Record<string, unknown>)[k], depth + 1, seen)
      first = false
    }
    return s + '}'
  } finally {
    seen.delete(obj)
  }
}

/** Deterministic JSON-like text of any value (sorted map keys, tagged special types): for hashes of content. */
export function stableJson(value: unknown): string {
  return stableStringify(value, 0, SEEN)
}

/**
 * sha256 (hex) of a stable serialization of the four original fields (missing = null),
 * independent of the item's key order. Any change of an original field changes it. Never throws.
 */
export function sourceHash(data: Record<string, unknown>): string {
  let text = '{'
  for (let i = 0; i < NORMALIZED_FIELDS.length; i++) {
    const field = NORMALIZED_FIELDS[i]
    let part: string
    try {
      const v = data !== null && typeof data === 'object' ? data[field] : undefined
      part = stableStringify(v, 0, SEEN)
    } catch {
      SEEN.clear()
      part = '{"$type":"unserializable"}'
    }
    text += (i === 0 ? '"' : ',"') + field + '":' + part
  }
  return sha256Hex(text + '}')
}
