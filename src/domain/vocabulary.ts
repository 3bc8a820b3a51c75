import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {z} from 'zod'

import {UsageError} from '../errors'

/** The four item fields the backfill normalizes, in the order they are processed and hashed. */
export const NORMALIZED_FIELDS = ['style', 'occasion', 'mood', 'season'] as const
export type NormalizedField = (typeof NORMALIZED_FIELDS)[number]

/** The package's root: the nearest folder up from this module with the package's package.json (src/ under ts-jest, dist/ when built). */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json')
    if (
      fs.existsSync(manifest) &&
      (JSON.parse(fs.readFileSync(manifest, 'utf8')) as {name?: string}).name === 'wardrobe-backfill'
    )
      return dir
    if (path.dirname(dir) === dir) throw new Error(`wardrobe-backfill's package.json not found above ${from}`)
  }
}

/** The vocabulary shipped with the package. */
export const DEFAULT_TAXONOMY_FILE = path.join(packageRoot(__dirname), 'taxonomy', 'default.json')

// Compiled once: fold/lookup run for every value of every item of a large collection.
const NON_ASCII = /[^\x00-\x7f]/
const COMBINING_MARKS = /\p{M}+/gu
const SEPARATORS = /[\s_\-\u2010-\u2015\u2212]+/g

/**
 * The display form of a value: NFKD with diacritics removed, lowercased, runs of
 * whitespace / `_` / `-` collapsed to one space, trimmed. Unmapped values are kept in this form.
 *   foldValue('  Bohème_Chic ') === 'boheme chic'
 */
export function foldValue(raw: string): string {
  let s = raw
  if (NON_ASCII.test(s)) s = s.normalize('NFKD').replace(COMBINING_MARKS, '')
  return s.toLowerCase().replace(SEPARATORS, ' ').trim()
}

/** Folded value without spaces, so 'Street wear', 'street-wear', 'StreetWear' all meet at 'streetwear'. */
function keyOfFolded(folded: string): string {
  return folded.includes(' ') ? folded.replaceAll(' ', '') : folded
}

/**
 * Values that mean "nothing" (by lookup key, so `N/A`, `n-a` and `NA` meet): treated as missing
 * by normalization (counted as placeholders, never written), never a term or an alias. `-` folds
 * to the empty key, as blanks do: a value made only of dashes or underscores is a placeholder, an
 * empty or blank one is not (a trailing comma is not a "nothing" someone typed).
 */
export const PLACEHOLDER_KEYS: ReadonlySet<string> = new Set(
  ['na', 'n/a', 'none', 'null', '-', 'unknown'].map((v) => keyOfFolded(foldValue(v))),
)

function isPlaceholderKey(key: string, raw: string): boolean {
  return PLACEHOLDER_KEYS.has(key) && (key !== '' || raw.trim() !== '')
}

/** True when a raw value means "nothing" (see PLACEHOLDER_KEYS). */
export function isPlaceholder(raw: string): boolean {
  return isPlaceholderKey(lookupKey(raw), raw)
}

/** The key aliases are matched on: `foldValue` with every space removed. */
export function lookupKey(raw: string): string {
  return keyOfFolded(foldValue(raw))
}

function termMapSchema(field: NormalizedField) {
  return z
    .record(z.string(), z.array(z.string(), {invalid_type_error: 'aliases must be an array of strings'}), {
      invalid_type_error: `field "${field}" must be an object of canonical term -> array of aliases`,
      required_error: `field "${field}" is required`,
    })
    .superRefine((terms, ctx) => {
      // lookup key -> the term (and the spelling) that claimed it first
      const owners = new Map<string, {term: string; alias: string}>()
      const claim = (alias: string, term: string, at: (string | number)[]): void => {
        const key = lookupKey(alias)
        if (key === '') {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: at,
            message: `alias "${alias}" of "${term}" is empty after folding`,
          })
          return
        }
        if (PLACEHOLDER_KEYS.has(key)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: at,
            message: `"${alias}" means "nothing" (a placeholder, treated as missing): it cannot be a term or an alias of "${term}"`,
          })
          return
        }
        const owner = owners.get(key)
        if (owner === undefined) owners.set(key, {term, alias})
        else if (owner.term !== term) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: at,
            message:
              `alias "${alias}" maps to two different terms in field "${field}": "${owner.term}" and "${term}"` +
              (owner.alias === alias ? '' : ` (it matches "${owner.alias}")`),
          })
        }
      }
      const entries = Object.entries(terms)
      // Canonical terms are their own aliases and claim their keys before any alias does.
      for (const [term] of entries) {
        const folded = foldValue(term)
        if (term === '' || folded !== term) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [term],
            message:
              term === ''
                ? 'canonical term must not be empty'
                : `canonical term "${term}" must be lowercase and folded (write it as "${folded}")`,
          })
          continue
        }
        claim(term, term, [term])
      }
      for (const [term, aliases] of entries) {
        aliases.forEach((alias, i) => claim(alias, term, [term, i]))
      }
    })
}

export const TaxonomySchema = z.object({
  version: z
    .string({required_error: 'version is required', invalid_type_error: 'version must be a string'})
    .refine((v) => v.length > 0 && v.trim() === v, 'version must be a non-empty string without surrounding spaces'),
  fields: z
    .object(
      {
        style: termMapSchema('style'),
        occasion: termMapSchema('occasion'),
        mood: termMapSchema('mood'),
        season: termMapSchema('season'),
      },
      {required_error: 'fields is required', invalid_type_error: 'fields must be an object'},
    )
    .strict(),
})
export type Taxonomy = z.infer<typeof TaxonomySchema>

/** A taxonomy file that cannot be used: missing, unreadable, not JSON or not valid. Exit 2. */
export class VocabularyError extends UsageError {
  constructor(message: string, suggestion?: string) {
    super(message.replace(/\s*[\r\n]+\s*/g, ' '), suggestion)
    this.name = 'VocabularyError'
  }
}

/** One resolved value: its output form, whether the vocabulary knows it, and whether it means "nothing" (never written). */
export interface Resolution {
  readonly value: string
  readonly mapped: boolean
  /** Present (true) only for a placeholder; `value` is then its folded form, for reports. */
  readonly placeholder?: true
}

const CACHE_LIMIT = 20_000

/** Canonical terms and their aliases, per field, with a fast alias lookup. */
export class Vocabulary {
  readonly version: string
  /**
   * The content's identity, apart from `version`: sha256 (16 hex digits) of every lookup
   * key and the term it resolves to, sorted, and of the placeholder keys (which resolve to
   * nothing). An edited taxonomy that keeps its version gets another hash; reordering terms
   * or aliases (which maps nothing differently) does not; a tool that treats other values as
   * placeholders maps the same file differently, so it gets another hash too.
   */
  readonly hash: string
  private readonly index: Record<NormalizedField, Map<string, string>>
  private readonly canonicalTerms: Record<NormalizedField, readonly string[]>
  private readonly canonicalSets: Record<NormalizedField, ReadonlySet<string>>
  // raw value -> resolution; values repeat heavily across a collection.
  private readonly cache: Record<NormalizedField, Map<string, Resolution>>

  constructor(taxonomy: Taxonomy) {
    const parsed = TaxonomySchema.safeParse(taxonomy)
    if (!parsed.success) {
      throw new VocabularyError(`Invalid taxonomy: ${formatIssues(parsed.error)}. Fix the taxonomy object.`)
    }
    const tax = parsed.data
    this.version = tax.version
    const index = {} as Record<NormalizedField, Map<string, string>>
    const terms = {} as Record<NormalizedField, readonly string[]>
    const sets = {} as Record<NormalizedField, ReadonlySet<string>>
    const cache = {} as Record<NormalizedField, Map<string, Resolution>>
    for (const field of NORMALIZED_FIELDS) {
      const map = new Map<string, string>()
      const entries = Object.entries(tax.fields[field])
      for (const [term] of entries) map.set(lookupKey(term), term)
      for (const [term, aliases] of entries) for (const alias of aliases) map.set(lookupKey(alias), term)
      index[field] = map
      terms[field] = Object.freeze(entries.map(([term]) => term))
      sets[field] = new Set(terms[field])
      cache[field] = new Map()
    }
    this.index = index
    this.hash = contentHash(index)
    this.canonicalTerms = terms
    this.canonicalSets = sets
    this.cache = cache
  }

  /** The canonical term for a raw value, or undefined when the vocabulary does not know it. */
  canonical(field: NormalizedField, raw: string): string | undefined {
    const r = this.resolve(field, raw)
    return r.mapped ? r.value : undefined
  }

  /**
   * The output form of a raw value: its canonical term when known (mapped), else its
   * folded form (unmapped; '' when nothing is left after folding), flagged `placeholder`
   * when it means "nothing". Memoized.
   */
  resolve(field: NormalizedField, raw: string): Resolution {
    const cache = this.cache[field]
    const hit = cache.get(raw)
    if (hit !== undefined) return hit
    const folded = foldValue(raw)
    const key = keyOfFolded(folded)
    // Placeholders are never in the index (the schema refuses them as terms and aliases).
    const term = this.index[field].get(key)
    const r: Resolution =
      term !== undefined
        ? {value: term, mapped: true}
        : isPlaceholderKey(key, raw)
          ? {value: folded, mapped: false, placeholder: true}
          : {value: folded, mapped: false}
    if (cache.size >= CACHE_LIMIT) cache.clear()
    cache.set(raw, r)
    return r
  }

  /** Canonical terms of a field, in taxonomy order. */
  terms(field: NormalizedField): string[] {
    return [...this.canonicalTerms[field]]
  }

  /** True when value is exactly one of the field's canonical terms. */
  isCanonical(field: NormalizedField, value: string): boolean {
    return this.canonicalSets[field].has(value)
  }
}

function contentHash(index: Record<NormalizedField, Map<string, string>>): string {
  const canonical: unknown[] = NORMALIZED_FIELDS.map((field) => [
    field,
    [...index[field]].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ])
  canonical.push(['placeholders', [...PLACEHOLDER_KEYS].sort()])
  return crypto.createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16)
}

function formatPath(p: (string | number)[]): string {
  return p.length === 0
    ? '(root)'
    : p
        .map((s) => (typeof s === 'number' ? `[${s}]` : s))
        .join('.')
        .replaceAll('.[', '[')
}

function formatIssues(err: z.ZodError, max = 5): string {
  const parts = err.issues.slice(0, max).map((i) => `${formatPath(i.path)}: ${i.message}`)
  if (err.issues.length > max) parts.push(`and ${err.issues.length - max} more`)
  return parts.join('; ')
}

/** Validates parsed JSON as a taxonomy; `source` names it in the error. */
export function parseTaxonomy(json: unknown, source: string): Taxonomy {
  const parsed = TaxonomySchema.safeParse(json)
  if (!parsed.success) {
    throw new VocabularyError(
      `Invalid taxonomy file ${source}: ${formatIssues(parsed.error)}. ` +
        'Fix the file (format: {"version": "...", "fields": {"style": {"<canonical>": ["alias", ...]}, "occasion": ..., "mood": ..., "season": ...}}) or pass --taxonomy <file>.',
      'Fix the taxonomy file or pass --taxonomy <file> with a valid vocabulary',
    )
  }
  return parsed.data
}

/** Loads, validates and indexes a taxonomy file (default: the shipped taxonomy/default.json). */
export function loadVocabulary(file?: string): Vocabulary {
  return new Vocabulary(loadTaxonomy(file))
}

/** Reads and validates a taxonomy file (default: the shipped one), not yet indexed. */
export function loadTaxonomy(file?: string): Taxonomy {
  const resolved = path.resolve(file ?? DEFAULT_TAXONOMY_FILE)
  const fix =
    file === undefined
      ? 'The shipped taxonomy is missing or broken: reinstall wardrobe-backfill or pass --taxonomy <file>.'
      : 'Check the --taxonomy path, or omit --taxonomy to use the shipped vocabulary.'
  let text: string
  try {
    text = fs.readFileSync(resolved, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const what = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? (error as Error).message})`
    throw new VocabularyError(`Taxonomy file ${resolved} ${what}. ${fix}`, fix)
  }
  let json: unknown
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch (error) {
    throw new VocabularyError(
      `Taxonomy file ${resolved} is not valid JSON: ${(error as Error).message}. Fix the JSON syntax. ${fix}`,
      fix,
    )
  }
  return parseTaxonomy(json, resolved)
}
