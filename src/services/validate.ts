import {DocumentData, DocumentSnapshot, FieldPath, Firestore, Timestamp} from 'firebase-admin/firestore'
import type {Logger} from 'winston'
import {z} from 'zod'
import {DEFAULT_LEDGER, Settings} from '../config'
import {errorMessage} from '../errors'
import {RunRecordSchema} from '../engine/ledger'
import {RUN_SUBCOLLECTIONS} from '../domain/ledger-layout'
import {describeType, normalizeItem} from '../domain/normalization'
import {unmappedEntries, UnmappedEntrySchema} from './reports'
import {sampleDocuments} from '../engine/sampling'
import {scanDocuments} from '../engine/scan'
import {withRetry} from '../firestore/retry'
import {describeTarget, itemKey, itemsQuery, Target, targetOf} from '../firestore/target'
import {foldValue, NORMALIZED_FIELDS, NormalizedField, Vocabulary} from '../domain/vocabulary'

/** What validation reads of each item: the originals and `normalized`. */
export const VALIDATION_FIELDS = [...NORMALIZED_FIELDS, 'normalized']
export const DEFAULT_SAMPLE_SIZE = 100
/** Failing items listed in a report (the total is always counted). */
export const FAILURE_LIST_CAP = 1000
export const WARNING_LIST_CAP = 100
/** Semantic queries under --all: a bounded random sample of the items checked. */
export const SEMANTIC_LIMIT_ALL = 200
/** Semantic queries for a sample: every sampled item up to this many. */
export const SEMANTIC_LIMIT_SAMPLE = 1000
const UNMAPPED_TRACK_LIMIT = 10_000
const VERSION_TRACK_LIMIT = 50

export const CHECKS = ['structure', 'canonical', 'consistency', 'semantic', 'not-normalized'] as const
export type CheckName = (typeof CHECKS)[number]

/** `unverified-version` is no failure: the item could not be verified (its vocabulary is not loaded), so it does not pass either. */
export const FindingSchema = z.object({check: z.enum([...CHECKS, 'unverified-version']), field: z.string().nullable(), reason: z.string()})
export type Finding = z.infer<typeof FindingSchema>
export const ItemFindingsSchema = z.object({id: z.string(), reasons: z.array(FindingSchema)})
export type ItemFindings = z.infer<typeof ItemFindingsSchema>

const FieldMetricsSchema = z.object({
  /** Items whose array for this field is empty. */
  emptyItems: z.number().int(),
  emptyShare: z.number(),
  /** Items whose value for this field is not an array of strings. */
  invalidItems: z.number().int(),
  values: z.number().int(),
  valuesPerItem: z.number(),
  maxValues: z.number().int(),
})

export const ValidationReportSchema = z.object({
  kind: z.literal('validation'),
  status: z.enum(['passed', 'failed', 'no-data', 'interrupted', 'error']),
  environment: z.string(),
  projectId: z.string(),
  collection: z.string(),
  /** `collection` names a collection group (items keyed by path). */
  collectionGroup: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationSeconds: z.number(),
  mode: z.enum(['sample', 'all']),
  /** Requested sample size (null under --all). */
  sampleSize: z.number().int().nullable(),
  sampling: z.object({
    method: z.enum(['key-space', 'scan', 'all', 'full-scan']),
    /** Documents in the collection. */
    collectionTotal: z.number().int(),
    /** A count() estimate of the population, when the sampler was given one (null: it sampled over collectionTotal). */
    population: z.number().int().nullable(),
    queries: z.number().int(),
    note: z.string(),
  }),
  /** Vocabulary versions loaded; canonical membership and re-normalization are checked only for these. */
  vocabularyVersions: z.array(z.string()),
  currentVersion: z.string(),
  /**
   * In scope: every item except recorded error items (under a backfill run's `errors` in the
   * ledger) that carry no `normalized`. Under --all the counts are exact and the status fails
   * below minCoverage; for a sample they are the sample's.
   */
  coverage: z.object({
    normalized: z.number().int(),
    inScope: z.number().int(),
    errorItems: z.number().int(),
    /** normalized / inScope (1 when nothing is in scope). */
    ratio: z.number(),
    minCoverage: z.number(),
    /** Whether minCoverage decides the status (under --all). */
    enforced: z.boolean(),
  }),
  /** Items in scope checked: carrying `normalized` or not (a not-normalized failure). */
  checked: z.number().int(),
  /** checked − failed − unverified. */
  passed: z.number().int(),
  failed: z.number().int(),
  /** failed / checked (0 when nothing was checked). */
  failureRate: z.number(),
  maxFailureRate: z.number(),
  checks: z.object({
    structure: z.object({failed: z.number().int()}),
    canonical: z.object({failed: z.number().int(), warned: z.number().int()}),
    consistency: z.object({failed: z.number().int(), notCompared: z.number().int()}),
    semantic: z.object({checked: z.number().int(), failed: z.number().int(), notApplicable: z.number().int(), limit: z.number().int(), note: z.string()}),
    notNormalized: z.object({failed: z.number().int()}),
  }),
  metrics: z.object({
    fields: z.object({style: FieldMetricsSchema, occasion: FieldMetricsSchema, mood: FieldMetricsSchema, season: FieldMetricsSchema}),
    /** Items whose four arrays are all empty: no semantic filter can find them. */
    allEmptyItems: z.number().int(),
    unmapped: z.object({items: z.number().int(), share: z.number(), values: z.number().int(), distinct: z.number().int(), top: z.array(UnmappedEntrySchema)}),
    versions: z.array(z.object({version: z.string(), count: z.number().int()})),
    /** Items at a version other than currentVersion. */
    otherVersionItems: z.number().int(),
  }),
  failuresTotal: z.number().int(),
  /** Failing items with every reason, the first FAILURE_LIST_CAP of failuresTotal. */
  failures: z.array(ItemFindingsSchema),
  warningsTotal: z.number().int(),
  warnings: z.array(ItemFindingsSchema),
  /** Items at a version whose vocabulary is not loaded that pass the structural and source_hash checks: neither failed nor passed. */
  unverifiedTotal: z.number().int(),
  unverified: z.array(ItemFindingsSchema),
  error: z.string().nullable(),
})
export type ValidationReport = z.infer<typeof ValidationReportSchema>

// ---------------------------------------------------------------------------------------
// Per-item checks (pure)

type Arrays = Partial<Record<NormalizedField, string[]>>

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
  else if (!(at instanceof Timestamp)) fail('normalized_at', `normalized.normalized_at: expected a Timestamp, got ${describeType(at)}`)
  const version = normalized.normalized_version
  let okVersion: string | null = null
  if (version === undefined) fail('normalized_version', 'normalized.normalized_version is missing')
  else if (typeof version !== 'string' || version.trim() === '') fail('normalized_version', `normalized.normalized_version: expected a non-empty string, got ${typeof version === 'string' ? 'an empty string' : describeType(version)}`)
  else okVersion = version
  const hash = normalized.source_hash
  if (hash !== undefined && typeof hash !== 'string') fail('source_hash', `normalized.source_hash: expected a string, got ${describeType(hash)}`)
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
      if (seen.has(v)) return failures.push({check: 'canonical', field, reason: `${field} has duplicate value ${JSON.stringify(v)}`})
      seen.add(v)
      if (v.trim() === '') return fail(`is empty`)
      if (v !== v.trim()) return fail(`${JSON.stringify(v)} has leading or trailing whitespace`)
      if (v !== v.toLowerCase()) return fail(`${JSON.stringify(v)} is not lowercase`)
      const folded = foldValue(v)
      if (folded !== v) return fail(`${JSON.stringify(v)} is not in folded form (expected ${JSON.stringify(folded)})`)
      if (!vocabulary || vocabulary.isCanonical(field, v)) return
      const term = vocabulary.canonical(field, v)
      if (term !== undefined) return fail(`${JSON.stringify(v)} is an alias of ${JSON.stringify(term)}, not the canonical term`)
      unmapped.push({field, value: v})
      warnings.push({check: 'canonical', field, reason: `${field} ${JSON.stringify(v)} is not in vocabulary ${vocabulary.version} (unmapped)`})
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
export function checkConsistency(data: DocumentData, normalized: unknown, arrays: Arrays, vocabulary: Vocabulary | undefined, fallback: Vocabulary): ConsistencyResult {
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
      else if (outdated) fail(field, `outdated: ${detail}; written with other content of vocabulary ${vocabulary.version} (taxonomy_hash ${taxonomyHash}, now ${vocabulary.hash}): a backfill re-run refreshes it`)
      else if (hasHash) fail(field, `${detail}; the originals are unchanged since normalization, so the stored value was edited or computed wrongly`)
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
  const staleness = hashed ? 'source_hash unchanged since normalization' : 'no source_hash, so whether the originals changed since is unknown'
  return {
    check: 'unverified-version',
    field: null,
    reason: `normalized_version ${version}: its vocabulary is not loaded (pass --taxonomy with it), so canonical terms and values are not verified; structure checked, ${staleness}`,
  }
}

/** What a sampled or scanned item in scope without `normalized` fails with. */
const NOT_NORMALIZED: Finding = {check: 'not-normalized', field: null, reason: 'no normalized field, and not recorded as an error item: run wardrobe backfill'}

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
export function semanticProbe(id: string, arrays: Arrays, vocabulary: Vocabulary | undefined, random: () => number): SemanticProbe | null {
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
  return {check: 'semantic', field: p.field, reason: `where('normalized.${p.field}', 'array-contains', ${JSON.stringify(p.query)}) does not find the item${as}`}
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
export function checkItem(id: string, data: DocumentData, vocabularies: ReadonlyMap<string, Vocabulary>, fallback: Vocabulary, random: () => number = Math.random): ItemResult {
  const normalized: unknown = data.normalized
  const structure = checkStructure(normalized)
  const vocabulary = structure.version === null ? undefined : vocabularies.get(structure.version)
  const canonical = checkCanonical(structure.arrays, vocabulary)
  const consistency: ConsistencyResult = isMap(normalized) ? checkConsistency(data, normalized, structure.arrays, vocabulary, fallback) : {failures: [], compared: false}
  const failures = [...structure.failures, ...canonical.failures, ...consistency.failures]
  return {
    id,
    failures,
    warnings: canonical.warnings,
    unverified: structure.version !== null && vocabulary === undefined && failures.length === 0 ? unverifiedFinding(structure.version, normalized) : null,
    structure,
    canonical,
    consistency,
    probe: semanticProbe(id, structure.arrays, vocabulary, random),
  }
}

/**
 * Runs the probes (bounded concurrency); returns those whose query did not find their item
 * and how many ran (fewer when interrupted).
 * One query per probe: `documentId in [...]` batches cost far more than they save on the emulator.
 */
export async function runSemanticProbes(db: Firestore, target: Target, probes: SemanticProbe[], options: {concurrency?: number; signal?: AbortSignal; onProgress?: (done: number) => void} = {}): Promise<{missed: SemanticProbe[]; run: number}> {
  const col = itemsQuery(db, target)
  const missed: SemanticProbe[] = []
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < probes.length && !options.signal?.aborted) {
      const p = probes[next++]
      const snap = await withRetry(
        () => col.where(`normalized.${p.field}`, 'array-contains', p.query).where(FieldPath.documentId(), '==', p.id).select().limit(1).get(),
        {signal: options.signal},
      )
      if (snap.empty) missed.push(p)
      options.onProgress?.(++done)
    }
  }
  await Promise.all(Array.from({length: Math.min(options.concurrency ?? 8, probes.length)}, worker))
  return {missed, run: done}
}

// ---------------------------------------------------------------------------------------
// The run

export interface ValidationProgress {
  phase: 'sampling' | 'checking' | 'semantic'
  done: number
  total: number | null
  failed: number
}

export interface ValidationOptions {
  /** The current vocabulary (the shipped one or --taxonomy). */
  vocabulary: Vocabulary
  /** Vocabularies of other versions items may carry. */
  otherVocabularies?: Vocabulary[]
  /** Items to sample (default 100); ignored under `all`. */
  sampleSize?: number
  all?: boolean
  /** Failure rate above which the status is failed (default 0). */
  maxFailureRate?: number
  /** Under `all`: coverage below which the status is failed (default 1). */
  minCoverage?: number
  onProgress?: (p: ValidationProgress) => void
  signal?: AbortSignal
  logger?: Logger
  random?: () => number
  /** Documents per scan query under --all. */
  chunkSize?: number
}

/** An item carrying a `normalized` field (in any shape) is checked; one without is a not-normalized failure unless it is an error item. */
const carriesNormalized = (doc: DocumentSnapshot) => doc.get('normalized') !== undefined

/**
 * Keys of the items recorded as error items under any backfill run of the target: the
 * backfill leaves them without `normalized` by design, so they are out of coverage's scope.
 * Reads one projected document per error record (bounded by the error items, not the collection).
 */
export async function errorItemKeys(db: Firestore, ledgerCollection: string, target: Target, signal?: AbortSignal): Promise<Set<string>> {
  const runs = await withRetry(() => db.collection(ledgerCollection).where('collection', '==', target.collection).get(), {signal})
  const backfills = runs.docs.flatMap((d) => {
    const r = RunRecordSchema.safeParse(d.data())
    return r.success && r.data.kind === 'backfill' && r.data.group === target.group ? [d.ref] : []
  })
  const keys = new Set<string>()
  for (const ref of backfills) {
    const errors = await withRetry(() => ref.collection(RUN_SUBCOLLECTIONS[0]).select('itemId').get(), {signal})
    for (const e of errors.docs) {
      const id: unknown = e.get('itemId')
      if (typeof id === 'string') keys.add(id)
    }
  }
  return keys
}

/** Running totals that stay bounded however many items are checked. */
class Tally {
  /** Items in scope: carrying normalized, or not (failing). */
  checked = 0
  /** Those carrying normalized: what the per-item checks and the metrics cover. */
  normalized = 0
  failed = 0
  failuresTotal = 0
  warningsTotal = 0
  unverifiedTotal = 0
  readonly unverified: ItemFindings[] = []
  readonly failures: ItemFindings[] = []
  readonly failureIndex = new Map<string, ItemFindings>()
  readonly warnings: ItemFindings[] = []
  readonly byCheck = {structure: 0, canonical: 0, canonicalWarned: 0, consistency: 0, notCompared: 0, notNormalized: 0}
  readonly fields = Object.fromEntries(NORMALIZED_FIELDS.map((f) => [f, {emptyItems: 0, invalidItems: 0, values: 0, maxValues: 0, items: 0}])) as Record<NormalizedField, {emptyItems: number; invalidItems: number; values: number; maxValues: number; items: number}>
  allEmptyItems = 0
  unmappedItems = 0
  unmappedValues = 0
  /** `field:value` → count; new keys stop being tracked past UNMAPPED_TRACK_LIMIT. */
  readonly unmapped = new Map<string, number>()
  readonly versions = new Map<string, number>()

  add(r: ItemResult): void {
    this.checked++
    this.normalized++
    const failedChecks = new Set(r.failures.map((f) => f.check))
    if (failedChecks.has('structure')) this.byCheck.structure++
    if (failedChecks.has('canonical')) this.byCheck.canonical++
    if (failedChecks.has('consistency')) this.byCheck.consistency++
    if (r.canonical.warnings.length > 0) this.byCheck.canonicalWarned++
    if (r.structure.version !== null && !r.consistency.compared) this.byCheck.notCompared++
    if (r.failures.length > 0) this.fail(r.id, r.failures)
    if (r.warnings.length > 0) {
      this.warningsTotal++
      if (this.warnings.length < WARNING_LIST_CAP) this.warnings.push({id: r.id, reasons: r.warnings})
    }
    if (r.unverified) {
      this.unverifiedTotal++
      if (this.unverified.length < FAILURE_LIST_CAP) this.unverified.push({id: r.id, reasons: [r.unverified]})
    }
    let allEmpty = true
    for (const field of NORMALIZED_FIELDS) {
      const m = this.fields[field]
      const values = r.structure.arrays[field]
      if (!values) {
        m.invalidItems++
        allEmpty = false
        continue
      }
      m.items++
      m.values += values.length
      m.maxValues = Math.max(m.maxValues, values.length)
      if (values.length === 0) m.emptyItems++
      else allEmpty = false
    }
    if (allEmpty) this.allEmptyItems++
    if (r.canonical.unmapped.length > 0) this.unmappedItems++
    this.unmappedValues += r.canonical.unmapped.length
    for (const u of r.canonical.unmapped) {
      const key = `${u.field}:${u.value}`
      const n = this.unmapped.get(key)
      if (n !== undefined || this.unmapped.size < UNMAPPED_TRACK_LIMIT) this.unmapped.set(key, (n ?? 0) + 1)
    }
    const version = r.structure.version ?? '(missing or invalid)'
    if (this.versions.has(version) || this.versions.size < VERSION_TRACK_LIMIT) this.versions.set(version, (this.versions.get(version) ?? 0) + 1)
    else this.versions.set('(other)', (this.versions.get('(other)') ?? 0) + 1)
  }

  /** An item in scope without `normalized`: checked, and failing. */
  notNormalized(id: string): void {
    this.checked++
    this.byCheck.notNormalized++
    this.fail(id, [NOT_NORMALIZED])
  }

  private fail(id: string, reasons: Finding[]): void {
    this.failed++
    this.failuresTotal++
    if (this.failures.length < FAILURE_LIST_CAP) {
      const entry = {id, reasons}
      this.failures.push(entry)
      this.failureIndex.set(id, entry)
    }
  }

  /** A semantic miss: adds the reason to the item, counting the item as failing if nothing else failed it. */
  semanticMiss(p: SemanticProbe, alreadyFailed: boolean): void {
    const finding = semanticFailure(p)
    const listed = this.failureIndex.get(p.id)
    if (listed) listed.reasons.push(finding)
    else if (!alreadyFailed) this.fail(p.id, [finding])
  }
}

/**
 * `wardrobe validate`: checks a random sample (or every item) of the items in scope (all but
 * recorded error items without `normalized`): one without `normalized` fails as not-normalized;
 * one with it is checked for structure, canonical values, consistency with the originals and
 * semantic queryability. Gathers coverage and data-quality metrics. Reads only.
 */
export async function runValidation(db: Firestore, settings: Pick<Settings, 'environment' | 'projectId' | 'collection'> & Partial<Pick<Settings, 'group' | 'ledgerCollection'>>, options: ValidationOptions): Promise<ValidationReport> {
  const startedAt = new Date()
  const target = targetOf(settings)
  const random = options.random ?? Math.random
  const all = options.all ?? false
  const sampleSize = options.sampleSize ?? DEFAULT_SAMPLE_SIZE
  const maxFailureRate = options.maxFailureRate ?? 0
  const minCoverage = options.minCoverage ?? 1
  const current = options.vocabulary
  const vocabularies = new Map<string, Vocabulary>()
  for (const v of options.otherVocabularies ?? []) vocabularies.set(v.version, v)
  vocabularies.set(current.version, current)
  const semanticLimit = all ? SEMANTIC_LIMIT_ALL : Math.min(sampleSize, SEMANTIC_LIMIT_SAMPLE)
  const progress = options.onProgress ?? (() => {})
  const logger = options.logger
  logger?.info('validation starting', {target: describeTarget(target), all, sampleSize: all ? null : sampleSize, versions: [...vocabularies.keys()]})

  const tally = new Tally()
  // Reservoir of semantic probes (and whether their item already failed), bounded by semanticLimit.
  const probes: {probe: SemanticProbe; alreadyFailed: boolean}[] = []
  let probeCandidates = 0
  let semanticNotApplicable = 0
  let errorKeys = new Set<string>()
  let errorItemsSeen = 0
  const inScope = (doc: DocumentSnapshot) => carriesNormalized(doc) || !errorKeys.has(itemKey(doc, target))
  const check = (doc: DocumentSnapshot) => {
    if (!carriesNormalized(doc)) return tally.notNormalized(itemKey(doc, target))
    const r = checkItem(itemKey(doc, target), doc.data() ?? {}, vocabularies, current, random)
    tally.add(r)
    if (!r.probe) {
      semanticNotApplicable++
      return
    }
    probeCandidates++
    const entry = {probe: r.probe, alreadyFailed: r.failures.length > 0}
    if (probes.length < semanticLimit) probes.push(entry)
    else {
      const j = Math.floor(random() * probeCandidates)
      if (j < semanticLimit) probes[j] = entry
    }
  }

  let sampling: ValidationReport['sampling'] | undefined
  let semanticMissed = 0
  let semanticRun = 0
  let error: string | null = null
  try {
    errorKeys = await errorItemKeys(db, settings.ledgerCollection ?? DEFAULT_LEDGER, target, options.signal)
    if (all) {
      const total = (await withRetry(() => itemsQuery(db, target).count().get(), {signal: options.signal})).data().count
      let scanned = 0
      let lastReport = 0
      for await (const doc of scanDocuments(db, target, {select: VALIDATION_FIELDS, startAfter: null, chunkSize: options.chunkSize ?? 5000, signal: options.signal})) {
        scanned++
        if (inScope(doc)) check(doc)
        else errorItemsSeen++
        if (scanned - lastReport >= 500) {
          lastReport = scanned
          progress({phase: 'checking', done: scanned, total, failed: tally.failed})
        }
      }
      progress({phase: 'checking', done: scanned, total, failed: tally.failed})
      sampling = {method: 'full-scan', collectionTotal: total, population: null, queries: Math.max(1, Math.ceil(scanned / (options.chunkSize ?? 5000))), note: `every item: ${scanned} documents read in id order, ${tally.normalized} carry normalized`}
    } else {
      const sample = await sampleDocuments(db, target, {
        size: sampleSize,
        select: VALIDATION_FIELDS,
        include: inScope,
        random,
        signal: options.signal,
        onProgress: (found) => progress({phase: 'sampling', done: found, total: sampleSize, failed: 0}),
      })
      // Id order makes the report easy to read; the draw order carries no meaning.
      const key = (d: DocumentSnapshot) => itemKey(d, target)
      for (const doc of [...sample.docs].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0))) check(doc)
      progress({phase: 'checking', done: tally.checked, total: sample.docs.length, failed: tally.failed})
      sampling = {method: sample.method, collectionTotal: sample.collectionTotal, population: sample.population, queries: sample.queries, note: sample.note}
    }
    if (!options.signal?.aborted && probes.length > 0) {
      const {missed, run} = await runSemanticProbes(db, target, probes.map((p) => p.probe), {
        signal: options.signal,
        onProgress: (done) => progress({phase: 'semantic', done, total: probes.length, failed: tally.failed}),
      })
      const failedBefore = new Map(probes.map((p) => [p.probe.id, p.alreadyFailed]))
      for (const p of missed) tally.semanticMiss(p, failedBefore.get(p.id) ?? false)
      semanticMissed = missed.length
      semanticRun = run
    }
  } catch (err) {
    error = errorMessage(err)
    logger?.error('validation failed', {error})
  }

  const finishedAt = new Date()
  const failureRate = tally.checked > 0 ? tally.failed / tally.checked : 0
  const coverageRatio = tally.checked > 0 ? tally.normalized / tally.checked : 1
  const status: ValidationReport['status'] = error
    ? 'error'
    : options.signal?.aborted
      ? 'interrupted'
      : tally.checked === 0
        ? 'no-data'
        : failureRate > maxFailureRate || (all && coverageRatio < minCoverage)
          ? 'failed'
          : 'passed'
  const ratio = (n: number, d: number) => (d > 0 ? Math.round((n / d) * 10_000) / 10_000 : 0)
  const fields = Object.fromEntries(
    NORMALIZED_FIELDS.map((f) => {
      const m = tally.fields[f]
      return [f, {emptyItems: m.emptyItems, emptyShare: ratio(m.emptyItems, tally.normalized), invalidItems: m.invalidItems, values: m.values, valuesPerItem: m.items > 0 ? Math.round((m.values / m.items) * 100) / 100 : 0, maxValues: m.maxValues}]
    }),
  ) as ValidationReport['metrics']['fields']
  const versions = [...tally.versions.entries()].map(([version, count]) => ({version, count})).sort((a, b) => b.count - a.count)
  const report: ValidationReport = {
    kind: 'validation',
    status,
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    collectionGroup: target.group,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    mode: all ? 'all' : 'sample',
    sampleSize: all ? null : sampleSize,
    sampling: sampling ?? {method: all ? 'full-scan' : 'key-space', collectionTotal: 0, population: null, queries: 0, note: 'not run'},
    vocabularyVersions: [...vocabularies.keys()].sort(),
    currentVersion: current.version,
    coverage: {
      normalized: tally.normalized,
      inScope: tally.checked,
      // A sample cannot see them all: the ledger's count stands in.
      errorItems: all ? errorItemsSeen : errorKeys.size,
      ratio: Math.round(coverageRatio * 10_000) / 10_000,
      minCoverage,
      enforced: all,
    },
    checked: tally.checked,
    passed: tally.checked - tally.failed - tally.unverifiedTotal,
    failed: tally.failed,
    failureRate: tally.checked > 0 ? failureRate : 0,
    maxFailureRate,
    checks: {
      structure: {failed: tally.byCheck.structure},
      canonical: {failed: tally.byCheck.canonical, warned: tally.byCheck.canonicalWarned},
      consistency: {failed: tally.byCheck.consistency, notCompared: tally.byCheck.notCompared},
      semantic: {
        checked: semanticRun,
        failed: semanticMissed,
        notApplicable: semanticNotApplicable,
        limit: semanticLimit,
        note:
          semanticRun < probes.length
            ? `array-contains queries for ${semanticRun} of ${probes.length} items before the run stopped`
            : probeCandidates > semanticLimit
              ? `array-contains queries for a random ${semanticLimit} of the ${probeCandidates} items with values (bounded${all ? ' under --all' : ''})`
              : `array-contains queries for every checked item with values (${semanticRun})`,
      },
      notNormalized: {failed: tally.byCheck.notNormalized},
    },
    metrics: {
      fields,
      allEmptyItems: tally.allEmptyItems,
      unmapped: {
        items: tally.unmappedItems,
        share: ratio(tally.unmappedItems, tally.normalized),
        values: tally.unmappedValues,
        distinct: tally.unmapped.size,
        top: unmappedEntries(Object.fromEntries(tally.unmapped), 50),
      },
      versions,
      otherVersionItems: tally.normalized - (tally.versions.get(current.version) ?? 0),
    },
    failuresTotal: tally.failuresTotal,
    failures: tally.failures,
    warningsTotal: tally.warningsTotal,
    warnings: tally.warnings,
    unverifiedTotal: tally.unverifiedTotal,
    unverified: tally.unverified,
    error,
  }
  logger?.info('validation finished', {status, checked: report.checked, failed: report.failed, failureRate: report.failureRate})
  return ValidationReportSchema.parse(report)
}
