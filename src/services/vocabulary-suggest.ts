import fs from 'node:fs'
import path from 'node:path'
import type {Firestore} from 'firebase-admin/firestore'
import {z} from 'zod'
import {UsageError} from '../errors'
import {normalizeItem} from '../domain/normalization'
import {UnmappedEntry, UnmappedEntrySchema} from './reports'
import {scanBatches} from '../engine/scan'
import type {Target} from '../firestore/target'
import {
  DEFAULT_TAXONOMY_FILE,
  foldValue,
  isPlaceholder,
  loadTaxonomy,
  lookupKey,
  NORMALIZED_FIELDS,
  NormalizedField,
  Taxonomy,
  Vocabulary,
} from '../domain/vocabulary'

/**
 * A value is proposed as an alias when it shares at least half its words with a known spelling
 * (Jaccard), or is a near-typo of one (edit similarity); else as a term of its own. Edit
 * similarity is strict: at 0.6 "hackathon" met "vacation" and "sassy" met "classy".
 */
export const ALIAS_WORD_OVERLAP = 0.5
export const ALIAS_EDIT_SIMILARITY = 0.8

export const SuggestionSchema = z.object({
  field: z.enum(NORMALIZED_FIELDS),
  value: z.string(),
  count: z.number().int(),
  /** placeholder: a value meaning "nothing" (NA, none, ...), left out of the draft. */
  proposal: z.enum(['alias', 'term', 'placeholder']),
  /** For an alias: the term it is proposed for. */
  term: z.string().nullable(),
  /** 0..1: word overlap or edit similarity to the closest spelling (of `term` for an alias), whichever decided. */
  similarity: z.number(),
})
export type Suggestion = z.infer<typeof SuggestionSchema>

export const VocabularySuggestionSchema = z.object({
  kind: z.literal('vocabulary-suggest'),
  source: z.string(),
  base: z.object({file: z.string(), version: z.string()}),
  draft: z.object({file: z.string(), version: z.string()}),
  /** Items read (null: from a stats file). */
  scanned: z.number().int().nullable(),
  suggestions: z.array(SuggestionSchema),
})
export type VocabularySuggestion = z.infer<typeof VocabularySuggestionSchema>

function editDistance(a: string, b: string): number {
  let prev = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]
}

/** How close two folded spellings are: 0..1, and whether that is close enough for an alias. */
export function closeness(a: string, b: string): {score: number; close: boolean} {
  const [x, y] = [new Set(a.split(' ')), new Set(b.split(' '))]
  const overlap = [...x].filter((t) => y.has(t)).length / new Set([...x, ...y]).size
  const [p, q] = [a.replaceAll(' ', ''), b.replaceAll(' ', '')]
  const edit = 1 - editDistance(p, q) / Math.max(p.length, q.length, 1)
  const close = overlap >= ALIAS_WORD_OVERLAP || edit >= ALIAS_EDIT_SIMILARITY
  // The measure that decided, else the nearer miss relative to its threshold.
  const score = overlap >= ALIAS_WORD_OVERLAP ? overlap : edit >= ALIAS_EDIT_SIMILARITY ? edit : Math.max(overlap, edit)
  return {score, close}
}

/**
 * Each unmapped value (folded, with its count) as an alias of the term with the closest spelling
 * (the term or one of its aliases), or as a new term when none is close; and the base taxonomy
 * with those additions. Values meeting at one lookup key are proposed once (the most frequent).
 */
export function propose(base: Taxonomy, unmapped: UnmappedEntry[]): {draft: Taxonomy; suggestions: Suggestion[]} {
  const draft: Taxonomy = {version: `${base.version}-draft`, fields: structuredClone(base.fields)}
  const suggestions: Suggestion[] = []
  const seen = new Set<string>()
  for (const u of [...unmapped].sort((a, b) => b.count - a.count || a.value.localeCompare(b.value))) {
    const field = u.field as NormalizedField
    const key = `${field}:${lookupKey(u.value)}`
    if (!NORMALIZED_FIELDS.includes(field) || u.value === '' || seen.has(key)) continue
    seen.add(key)
    // From a scan, or a stats file of a tool from before placeholders were treated as missing.
    if (isPlaceholder(u.value)) {
      suggestions.push({field, value: u.value, count: u.count, proposal: 'placeholder', term: null, similarity: 0})
      continue
    }
    let best: {term: string; score: number; close: boolean} | null = null
    for (const [term, aliases] of Object.entries(base.fields[field])) {
      for (const spelling of [term, ...aliases]) {
        const c = closeness(u.value, foldValue(spelling))
        if (!best || (c.close && !best.close) || (c.close === best.close && c.score > best.score)) best = {term, ...c}
      }
    }
    const score = Math.round((best?.score ?? 0) * 100) / 100
    if (best?.close) {
      draft.fields[field][best.term].push(u.value)
      suggestions.push({field, value: u.value, count: u.count, proposal: 'alias', term: best.term, similarity: score})
    } else {
      draft.fields[field][u.value] = []
      suggestions.push({field, value: u.value, count: u.count, proposal: 'term', term: null, similarity: score})
    }
  }
  // The draft must load as the backfill would load it.
  new Vocabulary(draft)
  return {draft, suggestions}
}

/** The unmapped values of a backfill dry run's (or run's) stats file. */
export function unmappedFromStats(file: string): UnmappedEntry[] {
  let json: unknown
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(
      `stats file ${file} cannot be read as JSON: ${(err as Error).message}`,
      'pass a backfill_stats_*.json file written by `wardrobe backfill --dry-run`',
    )
  }
  const parsed = z.object({kind: z.literal('backfill'), unmapped: z.array(UnmappedEntrySchema)}).safeParse(json)
  if (!parsed.success)
    throw new UsageError(
      `${file} is not a backfill stats file (no kind "backfill" with unmapped values)`,
      'pass a backfill_stats_*.json file written by `wardrobe backfill --dry-run`',
    )
  return parsed.data.unmapped
}

/** Reads every item in scope (the normalized fields only) and counts the values `vocabulary` does not know, and the placeholders (listed, never proposed). */
export async function unmappedFromScan(
  db: Firestore,
  target: Target,
  vocabulary: Vocabulary,
  signal?: AbortSignal,
): Promise<{scanned: number; unmapped: UnmappedEntry[]}> {
  const counts = new Map<string, UnmappedEntry>()
  let scanned = 0
  for await (const docs of scanBatches(db, target, {
    select: [...NORMALIZED_FIELDS],
    startAfter: null,
    chunkSize: 50_000,
    signal,
  })) {
    for (const doc of docs) {
      scanned++
      const outcome = normalizeItem(doc.data() ?? {}, vocabulary)
      if (!outcome.ok) continue
      for (const u of [...outcome.unmapped, ...outcome.placeholders]) {
        const key = `${u.field}:${u.value}`
        const entry = counts.get(key) ?? {field: u.field, value: u.value, count: 0}
        entry.count++
        counts.set(key, entry)
      }
    }
  }
  return {scanned, unmapped: [...counts.values()]}
}

/** Proposes a draft from a stats file or a scan, writes it to `out`, and returns what it proposed. */
export async function suggestVocabulary(input: {
  base?: string
  out: string
  stats?: string
  scan?: {db: Firestore; target: Target; signal?: AbortSignal}
}): Promise<VocabularySuggestion> {
  const base = loadTaxonomy(input.base)
  let scanned: number | null = null
  let unmapped: UnmappedEntry[]
  if (input.stats) unmapped = unmappedFromStats(input.stats)
  else if (input.scan)
    ({scanned, unmapped} = await unmappedFromScan(
      input.scan.db,
      input.scan.target,
      new Vocabulary(base),
      input.scan.signal,
    ))
  else throw new UsageError('nothing to suggest from', 'pass --from-stats FILE, or let it scan the collection')
  const {draft, suggestions} = propose(base, unmapped)
  fs.writeFileSync(input.out, JSON.stringify(draft, null, 2) + '\n')
  return {
    kind: 'vocabulary-suggest',
    source: input.stats ? path.resolve(input.stats) : `a scan of ${input.scan!.target.collection}`,
    base: {file: path.resolve(input.base ?? DEFAULT_TAXONOMY_FILE), version: base.version},
    draft: {file: path.resolve(input.out), version: draft.version},
    scanned,
    suggestions,
  }
}
