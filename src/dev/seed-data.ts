/**
 * Seed data for the development emulator: a deterministic generator of realistic (and
 * realistically messy) wardrobe items, a reader for JSON / NDJSON / CSV seed files, and a
 * BulkWriter-based loader. Services never print: progress goes through callbacks.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import type {Firestore} from 'firebase-admin/firestore'
import {AUTO_ID_ALPHABET} from '../firestore/target'

/** One document to write: its id and its fields. */
export interface SeedItem {
  id: string
  data: Record<string, unknown>
}

export interface GenerateOptions {
  /** PRNG seed; the same seed always yields the same items. Default 1. */
  seed?: number
  /** Probability that an item is malformed in one of its four fields. Default 0.02. */
  malformedRate?: number
  /** Malformed variants to draw from. Default WRITABLE_MALFORMED_KINDS. */
  malformedKinds?: readonly MalformedKind[]
  /** Index of the first item (items depend only on seed and index). Default 0. */
  startIndex?: number
}

/** The four fields the backfill normalizes. */
export const SEED_FIELDS = ['style', 'occasion', 'mood', 'season'] as const
export type SeedField = (typeof SEED_FIELDS)[number]

/** Ways an item's field is malformed so that a normalizer must reject the item. */
export const MALFORMED_KINDS = [
  'number',
  'boolean',
  'map',
  'array-with-number',
  'array-with-map',
  'long-string',
  'lone-surrogate',
  'oversized-array',
] as const
export type MalformedKind = (typeof MALFORMED_KINDS)[number]

/**
 * The malformed variants Firestore can store, the generator's default. A lone surrogate
 * cannot be encoded as UTF-8: Firestore rejects the write (the emulator fails the whole
 * batch RPC with UNKNOWN), so it only exists in memory, for normalizer unit tests, and
 * writeItems refuses it up front.
 */
export const WRITABLE_MALFORMED_KINDS: readonly MalformedKind[] = MALFORMED_KINDS.filter((k) => k !== 'lone-surrogate')

/** A generated item plus what the generator did to it (never stored in the item itself). */
export interface GeneratedItem {
  item: SeedItem
  malformed: {field: SeedField; kind: MalformedKind} | null
}

export const SUPPORTED_SEED_EXTENSIONS = ['.json', '.ndjson', '.jsonl', '.csv'] as const

// ---------------------------------------------------------------------------------------
// PRNG and ids

const MAX_INDEX = 2 ** 32

type Rng = () => number

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** murmur3's 32-bit finalizer: a bijection on 32-bit integers with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * A 20-char id in Firestore's auto-id alphabet. The first 6 chars are the base-62
 * expansion of a seed-keyed bijection of the index (62^6 > 2^32, so distinct indexes give
 * distinct prefixes and ids never collide within a seed); the other 14 come from the
 * item's PRNG. Both parts are uniform, so ids spread over the key space like auto ids.
 */
function generatedId(index: number, seed: number, rng: Rng): string {
  const k1 = fmix32(seed ^ 0x5bd1e995)
  const k2 = fmix32(seed ^ 0x27d4eb2f)
  const h = fmix32((fmix32((index ^ k1) >>> 0) ^ k2) >>> 0)
  let x = h / 4294967296 // exact; every step below stays exact in a double
  let id = ''
  for (let i = 0; i < 6; i++) {
    x *= 62
    const d = Math.floor(x)
    x -= d
    id += AUTO_ID_ALPHABET[d]
  }
  for (let i = 0; i < 14; i++) id += AUTO_ID_ALPHABET[Math.floor(rng() * 62)]
  return id
}

/** A deterministic auto-like id from arbitrary text (used for seed-file rows without id). */
function hashedId(text: string): string {
  let id = ''
  for (let round = 0; id.length < 20; round++) {
    const bytes = createHash('sha256').update(`${round}\0${text}`).digest()
    for (const b of bytes) {
      if (b < 248 && id.length < 20) id += AUTO_ID_ALPHABET[b % 62] // 248 = 4 * 62: no bias
    }
  }
  return id
}

// ---------------------------------------------------------------------------------------
// Vocabulary of the generator (its own lists; the taxonomy file is not read at runtime)

/** Per field: canonical-ish terms, each with the messy spellings real users produce. */
const TERMS: Record<SeedField, string[][]> = {
  style: [
    ['Casual', 'casual', 'CASUAL', 'Casual Wear', 'casual-wear', 'Décontracté'],
    ['Streetwear', 'Street-wear', 'street wear', 'STREETWEAR', 'StreetWear', 'street_wear', 'Street Style'],
    ['Smart Casual', 'Smart_Casual', 'smart-casual', 'SMART CASUAL', 'smart  casual', 'Business Casual'],
    ['Formal', 'formal', 'FORMAL', 'Formal-Wear', 'Black Tie'],
    ['Sporty', 'sporty', 'SPORTY', 'Sport', 'Sportswear', 'Athletic'],
    ['Bohemian', 'bohemian', 'Boho', 'Bohème', 'Boho-Chic', 'BOHO'],
    ['Vintage', 'vintage', 'VINTAGE', 'Retro', 'Old-School', 'thrifted'],
    ['Minimalist', 'minimalist', 'Minimal', 'MINIMAL', 'Scandi'],
    ['Preppy', 'preppy', 'Ivy League'],
    ['Edgy', 'edgy', 'Grunge', 'Punk'],
    ['Athleisure', 'athleisure', 'ATHLEISURE'],
    ['Elegant', 'Élégant', 'elegant', 'Chic'],
  ],
  occasion: [
    ['Everyday', 'everyday', 'EVERYDAY', 'Every Day', 'every-day', 'Daily', 'day_to_day'],
    ['Weekend', 'weekend', 'WEEKEND', 'Weekends', 'Week-end'],
    ['Work', 'work', 'WORK', 'Office', 'office', 'Business Meeting', 'work_from_home'],
    ['Party', 'party', 'PARTY', 'Parties', 'Night Out', 'night-out', 'Going_Out'],
    ['Wedding', 'wedding', 'Wedding Guest', 'wedding-guest', 'WEDDINGS'],
    ['Travel', 'travel', 'TRAVEL', 'Travelling', 'Vacation', 'road-trip'],
    ['Date Night', 'date night', 'Date-Night', 'date_night', 'DATE NIGHT'],
    ['Brunch', 'brunch', 'Café', 'Coffee'],
  ],
  mood: [
    ['Relaxed', 'relaxed', 'RELAXED', 'Laid Back', 'laid-back', 'Chill', 'Décontracté'],
    ['Cool', 'cool', 'COOL', 'Effortlessly Cool'],
    ['Confident', 'confident', 'CONFIDENT', 'Bold', 'Powerful'],
    ['Playful', 'playful', 'PLAYFUL', 'Fun', 'Quirky'],
    ['Elegant', 'elegant', 'ELEGANT', 'Élégant', 'Classy', 'Sophisticated'],
    ['Cozy', 'cozy', 'COZY', 'Cosy', 'Comfy', 'Snug'],
    ['Happy', 'happy', 'Cheerful'],
    ['Romantic', 'romantic', 'Dreamy'],
  ],
  season: [
    ['Spring', 'spring', 'SPRING', 'Springtime'],
    ['Summer', 'summer', 'SUMMER', 'Summertime', 'Summery'],
    ['Fall', 'fall', 'FALL', 'Autumn', 'autumn', 'AUTUMN', 'Fall/Autumn', 'Autumnal'],
    ['Winter', 'winter', 'WINTER', 'Wintertime', 'Wintery'],
    ['All Season', 'all-season', 'All_Seasons', 'Year-Round'],
  ],
}

/** Values no sane vocabulary has yet: a normalizer keeps and reports them as unmapped. */
const UNMAPPED: Record<SeedField, string[]> = {
  style: ['Dark Academia', 'coastal grandmother', 'Mob-Wife', 'barbiecore', 'Normcore', 'Quiet Luxury'],
  occasion: ['Graduation', 'baby shower', 'Hackathon', 'Job-Fair'],
  mood: ['Melancholic', 'main character', 'Sassy', 'whimsigoth'],
  season: ['Harmattan', 'indian summer', 'Dry-Season'],
}

/** Category, the garments in it and adjectives that fit them ("Blue Slim Jeans"). */
const CATEGORIES: Array<[string, string[], string[]]> = [
  ['Tops', ['T-Shirt', 'Shirt', 'Blouse', 'Sweater', 'Hoodie', 'Tank Top', 'Polo', 'Cardigan'], ['Slim', 'Oversized', 'Classic', 'Cropped', 'Linen', 'Striped', 'Knitted', 'Organic Cotton']],
  ['Bottoms', ['Jeans', 'Chinos', 'Skirt', 'Shorts', 'Trousers', 'Joggers', 'Leggings'], ['Slim', 'Relaxed', 'Wide-Leg', 'Cropped', 'High-Rise', 'Linen', 'Denim', 'Tailored']],
  ['Dresses', ['Dress', 'Maxi Dress', 'Midi Dress', 'Slip Dress', 'Jumpsuit'], ['Floral', 'Linen', 'Satin', 'Wrap', 'Knitted', 'Pleated']],
  ['Outerwear', ['Jacket', 'Coat', 'Blazer', 'Parka', 'Trench Coat', 'Puffer', 'Bomber'], ['Wool', 'Leather', 'Quilted', 'Oversized', 'Tailored', 'Waterproof', 'Cropped']],
  ['Shoes', ['Sneakers', 'Boots', 'Loafers', 'Sandals', 'Heels', 'Chelsea Boots', 'Trainers'], ['Leather', 'Suede', 'Canvas', 'Chunky', 'Classic', 'Platform']],
  ['Accessories', ['Scarf', 'Belt', 'Cap', 'Tote Bag', 'Beanie', 'Sunglasses', 'Watch'], ['Wool', 'Leather', 'Canvas', 'Classic', 'Vintage', 'Knitted']],
]
const COLORS = ['Blue', 'Black', 'White', 'Navy', 'Beige', 'Olive', 'Red', 'Grey', 'Burgundy', 'Camel', 'Pink', 'Green', 'Cream', 'Brown', 'Lavender']
const BRANDS = ['Uniqlo', 'Zara', 'H&M', "Levi's", 'Nike', 'Adidas', 'COS', 'Mango', 'Patagonia', 'Arket', 'Everlane', 'Sézane', 'Muji', 'Massimo Dutti', 'Carhartt WIP', 'Acne Studios']
const TAGS = ['favorite', 'new', 'gift', 'sale', 'second-hand', 'capsule', 'needs-repair', 'summer-trip', 'work-uniform', 'rarely-worn']
const MATERIALS = ['cotton', 'organic cotton', 'linen', 'wool', 'cashmere', 'polyester', 'denim', 'leather', 'silk', 'viscose', 'recycled nylon']
const SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL', '28', '30', '32', '34', '36', '38', '40', '42', 'One Size']
const USER_POOL = 1000
const CREATED_FROM = Date.UTC(2022, 0, 1)
const CREATED_SPAN = Date.UTC(2025, 0, 1) - CREATED_FROM

// ---------------------------------------------------------------------------------------
// Generator

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)]
}

function chance(rng: Rng, p: number): boolean {
  return rng() < p
}

function intBetween(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1))
}

function userId(seed: number, n: number): string {
  const rng = mulberry32(fmix32((seed ^ fmix32(n + 0x632be5ab)) >>> 0))
  let id = ''
  for (let i = 0; i < 28; i++) id += AUTO_ID_ALPHABET[Math.floor(rng() * 62)]
  return id
}

/** Adds the whitespace noise of hand-typed values. */
function noisy(rng: Rng, value: string): string {
  let v = value
  if (chance(rng, 0.08)) v = v.replace(' ', '  ')
  if (chance(rng, 0.08)) v = ` ${v}`
  if (chance(rng, 0.08)) v = `${v} `
  return v
}

function messyValues(rng: Rng, field: SeedField): string[] {
  const terms = TERMS[field]
  const n = intBetween(rng, 1, 3)
  const values: string[] = []
  for (let i = 0; i < n; i++) values.push(noisy(rng, pick(rng, pick(rng, terms))))
  if (chance(rng, 0.12)) {
    // the same term twice, spelled differently (or identically)
    const group = terms.find((g) => g.includes(values[0].trim().replace('  ', ' '))) ?? pick(rng, terms)
    values.push(noisy(rng, pick(rng, group)))
  }
  if (chance(rng, 0.06)) values.splice(intBetween(rng, 0, values.length), 0, pick(rng, UNMAPPED[field]))
  if (chance(rng, 0.02)) values.push(pick(rng, ['', ' ', '   ']))
  return values
}

/** Sets one of the four fields in one of the accepted (but messy) shapes, or leaves it out. */
function setMessyField(rng: Rng, data: Record<string, unknown>, field: SeedField): void {
  const r = rng()
  if (r < 0.05) return // missing
  if (r < 0.1) {
    data[field] = null
    return
  }
  if (r < 0.13) {
    data[field] = []
    return
  }
  const values = messyValues(rng, field)
  if (r < 0.23) {
    data[field] = values.join(pick(rng, [', ', ',', ' , ', ',  '])) // "Casual, Sporty"
  } else if (r < 0.28) {
    data[field] = values[0] // a lone string
  } else {
    data[field] = values
  }
}

function malformedValue(rng: Rng, field: SeedField, kind: MalformedKind): unknown {
  const term = pick(rng, pick(rng, TERMS[field]))
  switch (kind) {
    case 'number':
      return intBetween(rng, 0, 99)
    case 'boolean':
      return chance(rng, 0.5)
    case 'map':
      return {primary: term, secondary: pick(rng, pick(rng, TERMS[field]))}
    case 'array-with-number':
      return [term, intBetween(rng, 1, 9)]
    case 'array-with-map':
      return [term, {value: pick(rng, pick(rng, TERMS[field]))}]
    case 'long-string':
      // no commas or spaces: splitting cannot turn it into acceptable short values
      return term.replace(/[\s,]/g, '').repeat(500).slice(0, 500)
    case 'lone-surrogate':
      return [`${term}\uD800`]
    case 'oversized-array': {
      const flat = TERMS[field].flat()
      return Array.from({length: 200}, (_, i) => flat[i % flat.length])
    }
  }
}

/**
 * The item at `index` for `options.seed`: deterministic and independent of the other
 * indexes, so any slice of a run can be regenerated on its own. Tests use `malformed` to
 * know which items a normalizer must reject; the item itself carries no such marker.
 */
export function generateItem(index: number, options: Omit<GenerateOptions, 'startIndex'> = {}): GeneratedItem {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INDEX) throw new RangeError(`item index must be an integer in [0, 2^32), got ${index}`)
  const seed = (options.seed ?? 1) >>> 0
  const malformedRate = options.malformedRate ?? 0.02
  if (!(malformedRate >= 0 && malformedRate <= 1)) throw new RangeError(`malformedRate must be between 0 and 1, got ${malformedRate}`)
  const kinds = options.malformedKinds ?? WRITABLE_MALFORMED_KINDS
  if (malformedRate > 0 && kinds.length === 0) throw new RangeError('malformedKinds is empty but malformedRate > 0')
  const rng = mulberry32(fmix32((fmix32(index) ^ fmix32(seed + 0x9e3779b9)) >>> 0))
  const id = generatedId(index, seed, rng)

  const [category, nouns, adjectives] = pick(rng, CATEGORIES)
  const color = pick(rng, COLORS)
  const data: Record<string, unknown> = {
    name: `${color} ${pick(rng, adjectives)} ${pick(rng, nouns)}`,
    userId: userId(seed, Math.floor(rng() * USER_POOL)),
    brand: pick(rng, BRANDS),
    color,
    category,
    createdAt: new Date(CREATED_FROM + Math.floor(rng() * CREATED_SPAN)),
    price: Math.round((5 + rng() * 395) * 100) / 100,
    tags: Array.from(new Set(Array.from({length: intBetween(rng, 0, 3)}, () => pick(rng, TAGS)))),
    isFavorite: chance(rng, 0.15),
  }
  if (chance(rng, 0.6)) {
    data.details = {
      material: pick(rng, MATERIALS),
      size: pick(rng, SIZES),
      care: {machineWash: chance(rng, 0.7), temperature: pick(rng, [30, 40, 60]), tumbleDry: chance(rng, 0.4)},
    }
  }
  for (const field of SEED_FIELDS) setMessyField(rng, data, field)

  let malformed: GeneratedItem['malformed'] = null
  if (malformedRate > 0 && rng() < malformedRate) {
    const field = pick(rng, SEED_FIELDS)
    const kind = pick(rng, kinds)
    data[field] = malformedValue(rng, field, kind)
    malformed = {field, kind}
  }
  return {item: {id, data}, malformed}
}

/**
 * `count` realistic wardrobe items, lazily (memory does not grow with count). Style,
 * occasion, mood and season are messy in every way real data is; about `malformedRate` of
 * the items carry one field a normalizer must reject (see WRITABLE_MALFORMED_KINDS).
 */
export function* generateItems(count: number, options: GenerateOptions = {}): Generator<SeedItem, void, undefined> {
  const start = options.startIndex ?? 0
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`)
  if (!Number.isInteger(start) || start < 0 || start + count > MAX_INDEX) throw new RangeError(`startIndex + count must stay within [0, 2^32), got ${start} + ${count}`)
  for (let i = start; i < start + count; i++) yield generateItem(i, options).item
}

// ---------------------------------------------------------------------------------------
// Seed files

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

/**
 * Items of a seed file, streamed: `.json` (an array of objects or `{"items": [...]}`),
 * `.ndjson` / `.jsonl` (one object per line, blank lines ignored) or `.csv` (RFC 4180, a
 * header row). An `id` property or column becomes the document id; rows without one get a
 * deterministic auto-like id from their position and content, so loading the same file
 * twice writes the same documents. CSV: `style`, `occasion`, `mood`, `season` cells are
 * lists split on `|` or `;` (parts trimmed, empty parts dropped); an empty cell leaves the
 * field out; every other cell stays a string. Problems throw SeedFileError. An unsupported
 * extension throws at once.
 */
export function readSeedFile(file: string): AsyncIterable<SeedItem> {
  const ext = path.extname(file).toLowerCase()
  switch (ext) {
    case '.json':
      return readJsonFile(file)
    case '.ndjson':
    case '.jsonl':
      return readNdjsonFile(file)
    case '.csv':
      return readCsvFile(file)
    default:
      throw new Error(`unsupported seed file ${file}: extension "${ext || '(none)'}" is not one of ${SUPPORTED_SEED_EXTENSIONS.join(', ')}`)
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Where `value` holds a string Firestore cannot store (a lone UTF-16 surrogate, which has
 * no UTF-8 encoding), as a field path like `style[1]`; null when there is none.
 */
function unstorableStringPath(value: unknown, at = ''): string | null {
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

function describe(v: unknown): string {
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
function toSeedItem(file: string, line: number, ordinal: number, record: Record<string, unknown>, seen: Set<string>, idText: () => string): SeedItem {
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

function jsonErrorLine(text: string, err: unknown): {line: number; problem: string} {
  const message = err instanceof Error ? err.message : String(err)
  const m = / at position (\d+)/.exec(message)
  const pos = m ? Number(m[1]) : jsonErrorOffset(text)
  let line = 1
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  const reason = message.replace(/ in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '').replace(/ at position \d+.*$/s, '')
  return {line, problem: `invalid JSON: ${reason}`}
}

/**
 * Offset of the first syntax error in text that JSON.parse rejected (V8 does not always
 * say where). A small recursive-descent checker, only run on failure.
 */
function jsonErrorOffset(text: string): number {
  let i = 0
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++
  }
  class Stop extends Error {}
  const fail = (): never => {
    throw new Stop()
  }
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length
    else fail()
  }
  const string = () => {
    if (text[i] !== '"') fail()
    i++
    for (;;) {
      if (i >= text.length) fail()
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return
      }
      if (c < 0x20) fail()
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i++
            fail()
          }
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else {
          i++
          fail()
        }
      } else i++
    }
  }
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (!m) fail()
    i += m![0].length
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        string()
        ws()
        if (text[i] !== ':') fail()
        i++
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === '}') {
          i++
          return
        } else fail()
      }
    } else if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === ']') {
          i++
          return
        } else fail()
      }
    } else if (c === '"') string()
    else if (c === 't') literal('true')
    else if (c === 'f') literal('false')
    else if (c === 'n') literal('null')
    else number()
  }
  try {
    value()
    ws()
    return i
  } catch (error) {
    if (error instanceof Stop || error instanceof RangeError) return i
    throw error
  }
}

/**
 * Lines on which the elements of the items array start: the top-level array, or the
 * array under the top-level "items" key. Only called to place an error.
 */
function elementLines(text: string, underItemsKey: boolean): number[] {
  const lines: number[] = []
  let depth = 0
  let line = 1
  let inString = false
  let target = underItemsKey ? -1 : 1 // depth of the items array's elements
  let lastKey = ''
  let expectElement = false
  let stringStart = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '\n') line++
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') {
        inString = false
        if (depth === 1) lastKey = text.slice(stringStart + 1, i)
      }
      continue
    }
    if (/\s/.test(c)) continue
    if (expectElement && depth === target && c !== ']') {
      lines.push(line)
      expectElement = false
    }
    if (c === '"') {
      inString = true
      stringStart = i
    } else if (c === '[' || c === '{') {
      depth++
      if (c === '[' && target === -1 && depth === 2 && lastKey === 'items') target = 2
      if (depth === target && c === '[') expectElement = true
    } else if (c === ']' || c === '}') {
      if (depth === target && c === ']') return lines
      depth--
    } else if (c === ',' && depth === target) {
      expectElement = true
    }
  }
  return lines
}

async function* readJsonFile(file: string): AsyncGenerator<SeedItem> {
  const text = (await fs.promises.readFile(file, 'utf8')).replace(/^\uFEFF/, '')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    const {line, problem} = jsonErrorLine(text, error)
    throw new SeedFileError(file, line, problem)
  }
  let items: unknown[]
  let underItemsKey = false
  if (Array.isArray(parsed)) items = parsed
  else if (isPlainObject(parsed) && Array.isArray(parsed.items)) {
    items = parsed.items
    underItemsKey = true
  } else {
    throw new SeedFileError(file, 1, `expected an array of items or an object with an "items" array, found ${describe(parsed)}`)
  }
  let lines: number[] | undefined
  const lineOf = (i: number) => (lines ??= elementLines(text, underItemsKey))[i] ?? 1
  const seen = new Set<string>()
  for (let i = 0; i < items.length; i++) {
    const record = items[i]
    if (!isPlainObject(record)) throw new SeedFileError(file, lineOf(i), `item ${i + 1} must be an object, found ${describe(record)}`)
    try {
      yield toSeedItem(file, 0, i + 1, record, seen, () => JSON.stringify(record))
    } catch (error) {
      if (error instanceof SeedFileError) throw new SeedFileError(file, lineOf(i), `item ${i + 1}: ${error.problem}`)
      throw error
    }
  }
}

async function* readNdjsonFile(file: string): AsyncGenerator<SeedItem> {
  const lines = readline.createInterface({input: fs.createReadStream(file, {encoding: 'utf8'}), crlfDelay: Infinity})
  const seen = new Set<string>()
  let line = 0
  let ordinal = 0
  try {
    for await (const raw of lines) {
      line++
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw
      if (text.trim() === '') continue
      let record: unknown
      try {
        record = JSON.parse(text)
      } catch (error) {
        throw new SeedFileError(file, line, jsonErrorLine(text, error).problem)
      }
      if (!isPlainObject(record)) throw new SeedFileError(file, line, `expected a JSON object, found ${describe(record)}`)
      yield toSeedItem(file, line, ++ordinal, record, seen, () => text)
    }
  } finally {
    lines.close()
  }
}

const LIST_COLUMNS: ReadonlySet<string> = new Set(SEED_FIELDS)

async function* readCsvFile(file: string): AsyncGenerator<SeedItem> {
  const parser = new CsvParser(file)
  const stream = fs.createReadStream(file, {encoding: 'utf8'})
  let header: Array<string | null> | undefined
  const seen = new Set<string>()
  let ordinal = 0
  const toItem = (row: CsvRow): SeedItem | undefined => {
    if (!header) {
      header = row.cells.map((c, i) => {
        const name = (i === 0 ? c.replace(/^\uFEFF/, '') : c).trim()
        return name === '' ? null : name
      })
      const names = header.filter((h): h is string => h !== null)
      if (names.length === 0) throw new SeedFileError(file, row.line, 'the header row has no column names')
      const dup = names.find((n, i) => names.indexOf(n) !== i)
      if (dup) throw new SeedFileError(file, row.line, `duplicate column "${dup}" in the header row`)
      return undefined
    }
    if (row.cells.length !== header.length) {
      throw new SeedFileError(file, row.line, `expected ${header.length} fields (as in the header row), found ${row.cells.length}`)
    }
    const record: Record<string, unknown> = {}
    header.forEach((name, i) => {
      const cell = row.cells[i]
      if (name === null || cell === '') return
      record[name] = LIST_COLUMNS.has(name)
        ? cell
            .split(/[|;]/)
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : cell
    })
    return toSeedItem(file, row.line, ++ordinal, record, seen, () => JSON.stringify(row.cells))
  }
  try {
    for await (const chunk of stream) {
      for (const row of parser.push(chunk as string)) {
        const item = toItem(row)
        if (item) yield item
      }
    }
    for (const row of parser.end()) {
      const item = toItem(row)
      if (item) yield item
    }
  } finally {
    stream.destroy()
  }
  if (!header) throw new SeedFileError(file, 1, 'empty CSV file: a header row is required')
}

interface CsvRow {
  /** Line on which the record starts (1-based). */
  line: number
  cells: string[]
}

/** A streaming RFC 4180 parser: quoted fields may hold commas, newlines and `""` quotes. */
class CsvParser {
  private state: 'start' | 'unquoted' | 'quoted' | 'quote' | 'after' = 'start'
  private cell = ''
  private cells: string[] = []
  private line = 1
  private rowLine = 1
  private quoteLine = 1
  private pendingCR = false

  constructor(private readonly file: string) {}

  push(chunk: string): CsvRow[] {
    const rows: CsvRow[] = []
    for (const c of chunk) {
      if (this.pendingCR) {
        this.pendingCR = false
        if (c === '\n') {
          this.line++
          this.endRow(rows)
          continue
        }
        // a lone CR outside quotes is also a line break (old Mac files)
        this.line++
        this.endRow(rows)
      }
      switch (this.state) {
        case 'start':
        case 'unquoted':
          if (c === ',') this.endCell()
          else if (c === '\n') {
            this.line++
            this.endRow(rows)
          } else if (c === '\r') this.pendingCR = true
          else if (c === '"') {
            // spaces before an opening quote are tolerated; a quote inside a value is not
            if (this.cell.trim() !== '') throw new SeedFileError(this.file, this.line, 'unexpected \'"\' inside an unquoted field (quote the whole field and double inner quotes)')
            this.cell = ''
            this.state = 'quoted'
            this.quoteLine = this.line
          } else {
            this.cell += c
            this.state = 'unquoted'
          }
          break
        case 'quoted':
          if (c === '"') this.state = 'quote'
          else {
            if (c === '\n') this.line++
            this.cell += c
          }
          break
        case 'quote':
        case 'after':
          if (c === '"' && this.state === 'quote') {
            this.cell += '"'
            this.state = 'quoted'
          } else if (c === ' ' || c === '\t') this.state = 'after' // spaces after a closing quote
          else if (c === ',') this.endCell()
          else if (c === '\n') {
            this.line++
            this.endRow(rows)
          } else if (c === '\r') this.pendingCR = true
          else throw new SeedFileError(this.file, this.line, `unexpected character ${JSON.stringify(c)} after a closing quote`)
          break
      }
    }
    return rows
  }

  end(): CsvRow[] {
    if (this.state === 'quoted') throw new SeedFileError(this.file, this.quoteLine, 'unterminated quoted field (missing closing \'"\')')
    const rows: CsvRow[] = []
    this.pendingCR = false
    this.endRow(rows)
    return rows
  }

  private endCell(): void {
    this.cells.push(this.cell)
    this.cell = ''
    this.state = 'start'
  }

  private endRow(rows: CsvRow[]): void {
    const blank = this.cells.length === 0 && this.cell === '' && this.state === 'start'
    if (!blank) {
      this.endCell()
      rows.push({line: this.rowLine, cells: this.cells})
    }
    this.cells = []
    this.cell = ''
    this.state = 'start'
    this.rowLine = this.line
  }
}

// ---------------------------------------------------------------------------------------
// Writing

const FLUSH_EVERY = 5000
const PROGRESS_EVERY = 500

/**
 * Writes items with `set` through an unthrottled BulkWriter (BulkWriter retries retryable
 * errors itself), flushing every 5,000 writes so memory and in-flight writes stay
 * bounded. `onProgress` gets the number of acknowledged writes, every 500 and at the
 * end. Returns the number written. The first write that finally fails stops reading,
 * waits for the writes in flight and rejects with an error naming the document (a failed
 * batch RPC fails all its writes, so the one named is not necessarily the culprit). An
 * item holding a string Firestore cannot store (lone surrogate) is refused before it is
 * sent. An error from `items` (e.g. a SeedFileError) rejects as is; writes enqueued before
 * it are completed, not undone.
 */
export async function writeItems(
  db: Firestore,
  /** A collection path, or one per item (e.g. items spread under many users). */
  collection: string | ((index: number) => string),
  items: Iterable<SeedItem> | AsyncIterable<SeedItem>,
  onProgress?: (written: number) => void,
): Promise<number> {
  const col = typeof collection === 'string' ? db.collection(collection) : null
  const writer = db.bulkWriter({throttling: false})
  let enqueued = 0
  let written = 0
  let reported = 0
  let failure: Error | undefined
  let failures = 0
  let closed = false
  try {
    for await (const item of items) {
      if (failure) break
      const ref = (col ?? db.collection((collection as (index: number) => string)(enqueued))).doc(item.id)
      const bad = unstorableStringPath(item.data)
      // refused up front: Firestore would fail the whole batch RPC, not just this write
      if (bad) throw new Error(`cannot write ${ref.path}: ${bad} holds a lone UTF-16 surrogate, which Firestore cannot store`)
      writer.set(ref, item.data).then(
        () => {
          written++
          if (onProgress && written - reported >= PROGRESS_EVERY) {
            reported = written
            onProgress(written)
          }
        },
        (error: unknown) => {
          failures++
          failure ??= new Error(`could not write ${ref.path}: ${error instanceof Error ? error.message : String(error)}`, {cause: error})
        },
      )
      if (++enqueued % FLUSH_EVERY === 0) await writer.flush()
    }
    closed = true
    await writer.close()
  } finally {
    if (!closed) await writer.close().catch(() => undefined)
  }
  if (failure) {
    if (failures > 1) failure.message += ` (${failures} writes failed in all)`
    throw failure
  }
  if (onProgress && written !== reported) onProgress(written)
  return written
}
