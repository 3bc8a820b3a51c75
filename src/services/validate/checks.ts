import {DocumentData, Timestamp} from 'firebase-admin/firestore'
import {describeType, normalizeItem} from '../../domain/normalization'
import {foldValue, NORMALIZED_FIELDS, NormalizedField, Vocabulary} from '../../domain/vocabulary'
import type {Finding} from './schema'

/**
 * The per-item checks of `wardrobe validate`, pure: structure, canonical values, consistency
 * with the originals, and the semantic probe (check 4's query is run by runSemanticProbes).
 */

export type Arrays = Partial<Record<NormalizedField, string[]>>

const isMap = (v: unknown): v is Record<string, unknown> => describeType(v) === 'map'
const show = (values: readonly string[]) => JSON.stringify(values)
const sameArray = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((v, i) => v === b[i])

export interface StructureResult {
  failures: Finding[]
  /** The fields whose value is a well-formed array of strings. */
  arrays: Arrays
  /** normalized_version when it is a non-empty string. */
  version: string | null
}

/** 1. Required fields and types: the four arrays of strings, a Timestamp, a version string. */
export function checkStructure(normalized: unknown): StructureResult {
  const failures: Finding[] = []
  const fail = (field: string | null, reason: string) => failures.push({check: 'structure', field, reason})
  if (!isMap(normalized)) {
    fail(null, `normalized: expected a map, got ${describeType(normalized)}`)
    return {failures, arrays: {}, version: null}
  }
  const arrays: Arrays = {}
  for (const field of NORMALIZED_FIELDS) {
    const v = normalized[field]
    if (v === undefined) fail(field, `normalized.${field} is missing`)
    else if (!Array.isArray(v)) fail(field, `normalized.${field}: expected an array of strings, got ${describeType(v)}`)
    else {
      const bad = v.findIndex((el) => typeof el !== 'string')
      if (bad >= 0) fail(field, `normalized.${field}[${bad}]: expected a string, got ${describeType(v[bad])}`)
      else arrays[field] = v as string[]
    }
  }
  const at = normalized.normalized_at
  if (at === undefined) fail('normalized_at', 'normalized.normalized_at is missing')
  else if (!(at instanceof Timestamp))
    fail('normalized_at', `normalized.normalized_at: expected a Timestamp, got ${describeType(at)}`)
  const version = normalized.normalized_version
  let okVersion: string | null = null
  if (version === undefined) fail('normalized_version', 'normalized.normalized_version is missing')
  else if (typeof version !== 'string' || version.trim() === '')
    fail(
      'normalized_version',
      `normalized.normalized_version: expected a non-empty string, got ${typeof version === 'string' ? 'an empty string' : describeType(version)}`,
    )
  else okVersion = version
  const hash = normalized.source_hash
  if (hash !== undefined && typeof hash !== 'string')
    fail('source_hash', `normalized.source_hash: expected a string, got ${describeType(hash)}`)
  return {failures, arrays, version: okVersion}
}

export interface CanonicalResult {
  failures: Finding[]
  warnings: Finding[]
  unmapped: {field: NormalizedField; value: string}[]
}

/**
 * 2. Canonical values: folded (lowercase, trimmed), no duplicates, and canonical terms of
 * the item's vocabulary version. A value the vocabulary does not know is unmapped: a
 * warning. Without that version's vocabulary, membership is not checked (the item is
 * unverified, see checkItem).
 */
export function checkCanonical(arrays: Arrays, vocabulary: Vocabulary | undefined): CanonicalResult {
  const failures: Finding[] = []
  const warnings: Finding[] = []
  const unmapped: CanonicalResult['unmapped'] = []
  for (const field of NORMALIZED_FIELDS) {
    const values = arrays[field]
    if (!values) continue
    const seen = new Set<string>()
    values.forEach((v, i) => {
      const fail = (reason: string) => failures.push({check: 'canonical', field, reason: `${field}[${i}] ${reason}`})
      if (seen.has(v))
        return failures.push({check: 'canonical', field, reason: `${field} has duplicate value ${JSON.stringify(v)}`})
      seen.add(v)
      if (v.trim() === '') return fail(`is empty`)
      if (v !== v.trim()) return fail(`${JSON.stringify(v)} has leading or trailing whitespace`)
      if (v !== v.toLowerCase()) return fail(`${JSON.stringify(v)} is not lowercase`)
      const folded = foldValue(v)
      if (folded !== v) return fail(`${JSON.stringify(v)} is not in folded form (expected ${JSON.stringify(folded)})`)
      if (!vocabulary || vocabulary.isCanonical(field, v)) return
      const term = vocabulary.canonical(field, v)
      if (term !== undefined)
        return fail(`${JSON.stringify(v)} is an alias of ${JSON.stringify(term)}, not the canonical term`)
      unmapped.push({field, value: v})
      warnings.push({
        check: 'canonical',
        field,
        reason: `${field} ${JSON.stringify(v)} is not in vocabulary ${vocabulary.version} (unmapped)`,
      })
    })
  }
  return {failures, warnings, unmapped}
}

export interface ConsistencyResult {
  failures: Finding[]
  /** False when the values could not be re-normalized (vocabulary of the item's version not loaded). */
  compared: boolean
}

/**
 * 3. Consistency: normalizing the item's originals again gives the stored arrays (in
 * first-seen order) and, when recorded, the same source_hash. Catches items edited after
 * they were normalized (stale) and items that should carry no `normalized` at all.
 */
export function checkConsistency(
  data: DocumentData,
  normalized: unknown,
  arrays: Arrays,
  vocabulary: Vocabulary | undefined,
  fallback: Vocabulary,
): ConsistencyResult {
  const failures: Finding[] = []
  const fail = (field: string | null, reason: string) => failures.push({check: 'consistency', field, reason})
  // Error shapes do not depend on the vocabulary, the hash not at all.
  const outcome = normalizeItem(data, vocabulary ?? fallback)
  if (!outcome.ok) {
    fail(outcome.field, `originals are malformed, so the item should carry no normalized: ${outcome.reason}`)
    return {failures, compared: vocabulary !== undefined}
  }
  const storedHash = isMap(normalized) ? normalized.source_hash : undefined
  const hasHash = typeof storedHash === 'string'
  const stale = hasHash && storedHash !== outcome.sourceHash
  // Same version, other content (an edited file, or a tool from before placeholders were missing): outdated, not wrong.
  const taxonomyHash = isMap(normalized) ? normalized.taxonomy_hash : undefined
  const outdated = vocabulary !== undefined && typeof taxonomyHash === 'string' && taxonomyHash !== vocabulary.hash
  let differing = 0
  if (vocabulary) {
    for (const field of NORMALIZED_FIELDS) {
      const stored = arrays[field]
      if (!stored || sameArray(stored, outcome.values[field])) continue
      differing++
      const detail = `normalized.${field} is ${show(stored)} but the originals give ${show(outcome.values[field])}`
      if (stale) fail(field, `stale: original fields changed after normalization (${detail})`)
      else if (outdated)
        fail(
          field,
          `outdated: ${detail}; written with other content of vocabulary ${vocabulary.version} (taxonomy_hash ${taxonomyHash}, now ${vocabulary.hash}): a backfill re-run refreshes it`,
        )
      else if (hasHash)
        fail(
          field,
          `${detail}; the originals are unchanged since normalization, so the stored value was edited or computed wrongly`,
        )
      else fail(field, `${detail} (stale or edited; no source_hash to tell)`)
    }
  }
  if (stale && differing === 0) {
    fail(
      null,
      vocabulary
        ? 'stale: original fields changed after normalization (source_hash differs; the normalized values still match, a backfill re-run refreshes it)'
        : `stale: original fields changed after normalization (source_hash differs; values not compared: vocabulary for version ${String((normalized as Record<string, unknown>).normalized_version)} not loaded)`,
    )
  }
  return {failures, compared: vocabulary !== undefined}
}

/** Without the item's vocabulary only the form of its values and its source_hash (computed from the originals alone) can be checked. */
function unverifiedFinding(version: string, normalized: unknown): Finding {
  const hashed = isMap(normalized) && typeof normalized.source_hash === 'string'
  const staleness = hashed
    ? 'source_hash unchanged since normalization'
    : 'no source_hash, so whether the originals changed since is unknown'
  return {
    check: 'unverified-version',
    field: null,
    reason: `normalized_version ${version}: its vocabulary is not loaded (pass --taxonomy with it), so canonical terms and values are not verified; structure checked, ${staleness}`,
  }
}

/** What a sampled or scanned item in scope without `normalized` fails with. */
export const NOT_NORMALIZED: Finding = {
  check: 'not-normalized',
  field: null,
  reason: 'no normalized field, and not recorded as an error item: run wardrobe backfill',
}

/** One `array-contains` query the app's semantic filter would run to find this item. */
export interface SemanticProbe {
  id: string
  field: NormalizedField
  /** The value as stored. */
  stored: string
  /** The value the app queries with: its canonical (or folded) form. */
  query: string
}

/** 4. Picks a random stored value; the app queries with the canonical form of a term, so that is what is searched. */
export function semanticProbe(
  id: string,
  arrays: Arrays,
  vocabulary: Vocabulary | undefined,
  random: () => number,
): SemanticProbe | null {
  const fields = NORMALIZED_FIELDS.filter((f) => (arrays[f] ?? []).some((v) => foldValue(v) !== ''))
  if (fields.length === 0) return null
  const field = fields[Math.floor(random() * fields.length)]
  const values = arrays[field]!.filter((v) => foldValue(v) !== '')
  const stored = values[Math.floor(random() * values.length)]
  const query = vocabulary ? vocabulary.resolve(field, stored).value : foldValue(stored)
  return {id, field, stored, query}
}

export function semanticFailure(p: SemanticProbe): Finding {
  const as = p.stored === p.query ? '' : ` (stored as ${JSON.stringify(p.stored)})`
  return {
    check: 'semantic',
    field: p.field,
    reason: `where('normalized.${p.field}', 'array-contains', ${JSON.stringify(p.query)}) does not find the item${as}`,
  }
}

export interface ItemResult {
  id: string
  failures: Finding[]
  warnings: Finding[]
  /** Passed every check it could run, but its version's vocabulary is not loaded. */
  unverified: Finding | null
  structure: StructureResult
  canonical: CanonicalResult
  consistency: ConsistencyResult
  probe: SemanticProbe | null
}

/** Checks 1-3 for one item and the probe for check 4. `vocabularies` maps version → vocabulary. */
export function checkItem(
  id: string,
  data: DocumentData,
  vocabularies: ReadonlyMap<string, Vocabulary>,
  fallback: Vocabulary,
  random: () => number = Math.random,
): ItemResult {
  const normalized: unknown = data.normalized
  const structure = checkStructure(normalized)
  const vocabulary = structure.version === null ? undefined : vocabularies.get(structure.version)
  const canonical = checkCanonical(structure.arrays, vocabulary)
  const consistency: ConsistencyResult = isMap(normalized)
    ? checkConsistency(data, normalized, structure.arrays, vocabulary, fallback)
    : {failures: [], compared: false}
  const failures = [...structure.failures, ...canonical.failures, ...consistency.failures]
  return {
    id,
    failures,
    warnings: canonical.warnings,
    unverified:
      structure.version !== null && vocabulary === undefined && failures.length === 0
        ? unverifiedFinding(structure.version, normalized)
        : null,
    structure,
    canonical,
    consistency,
    probe: semanticProbe(id, structure.arrays, vocabulary, random),
  }
}
