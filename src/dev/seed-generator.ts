/**
 * A deterministic generator of realistic (and realistically messy) wardrobe items for the
 * development emulator, tests and bench: the same seed and index always give the same item.
 * Over 350 lines because half of it is the generator's own word lists (data, not logic).
 */
import {AUTO_ID_ALPHABET} from '../firestore/target'
import {SEED_FIELDS, SeedField, SeedItem} from './seed-item'

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
  [
    'Tops',
    ['T-Shirt', 'Shirt', 'Blouse', 'Sweater', 'Hoodie', 'Tank Top', 'Polo', 'Cardigan'],
    ['Slim', 'Oversized', 'Classic', 'Cropped', 'Linen', 'Striped', 'Knitted', 'Organic Cotton'],
  ],
  [
    'Bottoms',
    ['Jeans', 'Chinos', 'Skirt', 'Shorts', 'Trousers', 'Joggers', 'Leggings'],
    ['Slim', 'Relaxed', 'Wide-Leg', 'Cropped', 'High-Rise', 'Linen', 'Denim', 'Tailored'],
  ],
  [
    'Dresses',
    ['Dress', 'Maxi Dress', 'Midi Dress', 'Slip Dress', 'Jumpsuit'],
    ['Floral', 'Linen', 'Satin', 'Wrap', 'Knitted', 'Pleated'],
  ],
  [
    'Outerwear',
    ['Jacket', 'Coat', 'Blazer', 'Parka', 'Trench Coat', 'Puffer', 'Bomber'],
    ['Wool', 'Leather', 'Quilted', 'Oversized', 'Tailored', 'Waterproof', 'Cropped'],
  ],
  [
    'Shoes',
    ['Sneakers', 'Boots', 'Loafers', 'Sandals', 'Heels', 'Chelsea Boots', 'Trainers'],
    ['Leather', 'Suede', 'Canvas', 'Chunky', 'Classic', 'Platform'],
  ],
  [
    'Accessories',
    ['Scarf', 'Belt', 'Cap', 'Tote Bag', 'Beanie', 'Sunglasses', 'Watch'],
    ['Wool', 'Leather', 'Canvas', 'Classic', 'Vintage', 'Knitted'],
  ],
]
const COLORS = [
  'Blue',
  'Black',
  'White',
  'Navy',
  'Beige',
  'Olive',
  'Red',
  'Grey',
  'Burgundy',
  'Camel',
  'Pink',
  'Green',
  'Cream',
  'Brown',
  'Lavender',
]
const BRANDS = [
  'Uniqlo',
  'Zara',
  'H&M',
  "Levi's",
  'Nike',
  'Adidas',
  'COS',
  'Mango',
  'Patagonia',
  'Arket',
  'Everlane',
  'Sézane',
  'Muji',
  'Massimo Dutti',
  'Carhartt WIP',
  'Acne Studios',
]
const TAGS = [
  'favorite',
  'new',
  'gift',
  'sale',
  'second-hand',
  'capsule',
  'needs-repair',
  'summer-trip',
  'work-uniform',
  'rarely-worn',
]
const MATERIALS = [
  'cotton',
  'organic cotton',
  'linen',
  'wool',
  'cashmere',
  'polyester',
  'denim',
  'leather',
  'silk',
  'viscose',
  'recycled nylon',
]
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
  if (!Number.isInteger(index) || index < 0 || index >= MAX_INDEX)
    throw new RangeError(`item index must be an integer in [0, 2^32), got ${index}`)
  const seed = (options.seed ?? 1) >>> 0
  const malformedRate = options.malformedRate ?? 0.02
  if (!(malformedRate >= 0 && malformedRate <= 1))
    throw new RangeError(`malformedRate must be between 0 and 1, got ${malformedRate}`)
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
  if (!Number.isInteger(start) || start < 0 || start + count > MAX_INDEX)
    throw new RangeError(`startIndex + count must stay within [0, 2^32), got ${start} + ${count}`)
  for (let i = start; i < start + count; i++) yield generateItem(i, options).item
}
