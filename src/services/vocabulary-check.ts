import path from 'node:path'
import type {Firestore} from 'firebase-admin/firestore'
import {z} from 'zod'
import {normalizeItem} from '../domain/normalization'
import {scanBatches} from '../engine/scan'
import type {Target} from '../firestore/target'
import {
  DEFAULT_TAXONOMY_FILE,
  loadTaxonomy,
  lookupKey,
  NORMALIZED_FIELDS,
  NormalizedField,
  Taxonomy,
  Vocabulary,
} from '../domain/vocabulary'

const FieldDiffSchema = z.object({
  termsAdded: z.array(z.string()),
  termsRemoved: z.array(z.string()),
  /** Spellings (folded lookup keys) a value now maps through, with their term. */
  aliasesAdded: z.array(z.object({alias: z.string(), term: z.string()})),
  aliasesRemoved: z.array(z.object({alias: z.string(), term: z.string()})),
  /** Spellings that map to another term than before. */
  aliasesMoved: z.array(z.object({alias: z.string(), from: z.string(), to: z.string()})),
})

/** One value per normalized field. */
const perField = <T extends z.ZodTypeAny>(t: T) => z.object({style: t, occasion: t, mood: t, season: t})

export const VocabularyCheckSchema = z.object({
  kind: z.literal('vocabulary-check'),
  file: z.string(),
  version: z.string(),
  hash: z.string(),
  against: z.object({file: z.string(), version: z.string(), hash: z.string()}),
  /** Same content (hash), whatever the versions say. */
  identical: z.boolean(),
  fields: perField(FieldDiffSchema),
  /** Items in scope whose normalized values differ between the two vocabularies (null: not scanned). */
  impact: z
    .object({
      scanned: z.number().int(),
      changed: z.number().int(),
      changedByField: perField(z.number().int()),
      examples: z.array(
        z.object({
          id: z.string(),
          field: z.enum(NORMALIZED_FIELDS),
          before: z.array(z.string()),
          after: z.array(z.string()),
        }),
      ),
    })
    .nullable(),
})
export type VocabularyCheck = z.infer<typeof VocabularyCheckSchema>
type FieldDiff = z.infer<typeof FieldDiffSchema>

const EXAMPLES = 10

/** Every lookup key of a field and the term it resolves to (terms resolve to themselves). */
function mapping(tax: Taxonomy, field: NormalizedField): Map<string, string> {
  const map = new Map<string, string>()
  for (const [term, aliases] of Object.entries(tax.fields[field])) {
    map.set(lookupKey(term), term)
    for (const alias of aliases) map.set(lookupKey(alias), term)
  }
  return map
}

/** What `after` maps differently from `before`, per field. */
export function diffTaxonomies(before: Taxonomy, after: Taxonomy): Record<NormalizedField, FieldDiff> {
  const out = {} as Record<NormalizedField, FieldDiff>
  for (const field of NORMALIZED_FIELDS) {
    const [a, b] = [mapping(before, field), mapping(after, field)]
    const [termsA, termsB] = [new Set(Object.keys(before.fields[field])), new Set(Object.keys(after.fields[field]))]
    out[field] = {
      termsAdded: [...termsB].filter((t) => !termsA.has(t)),
      termsRemoved: [...termsA].filter((t) => !termsB.has(t)),
      aliasesAdded: [...b].filter(([k]) => !a.has(k)).map(([alias, term]) => ({alias, term})),
      aliasesRemoved: [...a].filter(([k]) => !b.has(k)).map(([alias, term]) => ({alias, term})),
      aliasesMoved: [...b]
        .filter(([k, t]) => a.has(k) && a.get(k) !== t)
        .map(([alias, to]) => ({alias, from: a.get(alias)!, to})),
    }
  }
  return out
}

/**
 * Reads every item in scope (the fields normalization reads, nothing else; no write) and
 * normalizes it with both vocabularies: the items a backfill with `after` would write
 * differently than one with `before`.
 */
export async function measureImpact(
  db: Firestore,
  target: Target,
  before: Vocabulary,
  after: Vocabulary,
  signal?: AbortSignal,
): Promise<NonNullable<VocabularyCheck['impact']>> {
  const impact: NonNullable<VocabularyCheck['impact']> = {
    scanned: 0,
    changed: 0,
    changedByField: {style: 0, occasion: 0, mood: 0, season: 0},
    examples: [],
  }
  for await (const docs of scanBatches(db, target, {
    select: [...NORMALIZED_FIELDS],
    startAfter: null,
    chunkSize: 50_000,
    signal,
  })) {
    for (const doc of docs) {
      impact.scanned++
      const [x, y] = [normalizeItem(doc.data() ?? {}, before), normalizeItem(doc.data() ?? {}, after)]
      // Items neither vocabulary can normalize (error items) change with neither.
      if (!x.ok || !y.ok) continue
      const changed = NORMALIZED_FIELDS.filter((f) => x.values[f].join('\u0000') !== y.values[f].join('\u0000'))
      if (changed.length === 0) continue
      impact.changed++
      for (const f of changed) impact.changedByField[f]++
      if (impact.examples.length < EXAMPLES)
        impact.examples.push({
          id: doc.ref.path,
          field: changed[0],
          before: x.values[changed[0]],
          after: y.values[changed[0]],
        })
    }
  }
  return impact
}

/**
 * Validates `file` as a taxonomy (a bad one is a VocabularyError, exit 2), lists what it maps
 * differently from `against` (default: the shipped file) and, given a connection, how many items
 * in scope a backfill would write differently.
 */
export async function checkVocabulary(
  file: string,
  against: string | undefined,
  scan?: {db: Firestore; target: Target; signal?: AbortSignal},
): Promise<VocabularyCheck> {
  const [after, before] = [loadTaxonomy(file), loadTaxonomy(against)]
  const [vAfter, vBefore] = [new Vocabulary(after), new Vocabulary(before)]
  return {
    kind: 'vocabulary-check',
    file: path.resolve(file),
    version: vAfter.version,
    hash: vAfter.hash,
    against: {file: path.resolve(against ?? DEFAULT_TAXONOMY_FILE), version: vBefore.version, hash: vBefore.hash},
    identical: vAfter.hash === vBefore.hash,
    fields: diffTaxonomies(before, after),
    impact: scan ? await measureImpact(scan.db, scan.target, vBefore, vAfter, scan.signal) : null,
  }
}
