import {DocumentSnapshot, FieldPath, Firestore} from 'firebase-admin/firestore'
import type {Logger} from '../../engine/run-context'
import {DEFAULT_LEDGER, Settings} from '../../config'
import {errorMessage} from '../../errors'
import {RunRecordSchema} from '../../engine/ledger'
import {RUN_SUBCOLLECTIONS} from '../../domain/ledger-layout'
import {scanDocuments} from '../../engine/scan'
import {withRetry} from '../../firestore/retry'
import {describeTarget, itemKey, itemsQuery, Target, targetOf} from '../../firestore/target'
import {NORMALIZED_FIELDS, Vocabulary} from '../../domain/vocabulary'
import {unmappedEntries} from '../reports'
import {checkItem, SemanticProbe} from './checks'
import {sampleDocuments} from './sampling'
import {ValidationReport, ValidationReportSchema} from './schema'
import {Tally} from './tally'

/** What validation reads of each item: the originals and `normalized`. */
export const VALIDATION_FIELDS = [...NORMALIZED_FIELDS, 'normalized']
export const DEFAULT_SAMPLE_SIZE = 100
/** Semantic queries under --all: a bounded random sample of the items checked. */
export const SEMANTIC_LIMIT_ALL = 200
/** Semantic queries for a sample: every sampled item up to this many. */
export const SEMANTIC_LIMIT_SAMPLE = 1000

/**
 * Runs the probes (bounded concurrency); returns those whose query did not find their item
 * and how many ran (fewer when interrupted).
 * One query per probe: `documentId in [...]` batches cost far more than they save on the emulator.
 */
export async function runSemanticProbes(
  db: Firestore,
  target: Target,
  probes: SemanticProbe[],
  options: {concurrency?: number; signal?: AbortSignal; onProgress?: (done: number) => void} = {},
): Promise<{missed: SemanticProbe[]; run: number}> {
  const col = itemsQuery(db, target)
  const missed: SemanticProbe[] = []
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < probes.length && !options.signal?.aborted) {
      const p = probes[next++]
      const snap = await withRetry(
        () =>
          col
            .where(`normalized.${p.field}`, 'array-contains', p.query)
            .where(FieldPath.documentId(), '==', p.id)
            .select()
            .limit(1)
            .get(),
        {signal: options.signal},
      )
      if (snap.empty) missed.push(p)
      options.onProgress?.(++done)
    }
  }
  await Promise.all(Array.from({length: Math.min(options.concurrency ?? 8, probes.length)}, worker))
  return {missed, run: done}
}

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
export async function errorItemKeys(
  db: Firestore,
  ledgerCollection: string,
  target: Target,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const runs = await withRetry(
    () => db.collection(ledgerCollection).where('collection', '==', target.collection).get(),
    {signal},
  )
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

/**
 * `wardrobe validate`: checks a random sample (or every item) of the items in scope (all but
 * recorded error items without `normalized`): one without `normalized` fails as not-normalized;
 * one with it is checked for structure, canonical values, consistency with the originals and
 * semantic queryability. Gathers coverage and data-quality metrics. Reads only.
 */
export async function runValidation(
  db: Firestore,
  settings: Pick<Settings, 'environment' | 'projectId' | 'collection'> &
    Partial<Pick<Settings, 'group' | 'ledgerCollection'>>,
  options: ValidationOptions,
): Promise<ValidationReport> {
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
  logger?.info('validation starting', {
    target: describeTarget(target),
    all,
    sampleSize: all ? null : sampleSize,
    versions: [...vocabularies.keys()],
  })

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
      for await (const doc of scanDocuments(db, target, {
        select: VALIDATION_FIELDS,
        startAfter: null,
        chunkSize: options.chunkSize ?? 5000,
        signal: options.signal,
      })) {
        scanned++
        if (inScope(doc)) check(doc)
        else errorItemsSeen++
        if (scanned - lastReport >= 500) {
          lastReport = scanned
          progress({phase: 'checking', done: scanned, total, failed: tally.failed})
        }
      }
      progress({phase: 'checking', done: scanned, total, failed: tally.failed})
      sampling = {
        method: 'full-scan',
        collectionTotal: total,
        population: null,
        queries: Math.max(1, Math.ceil(scanned / (options.chunkSize ?? 5000))),
        note: `every item: ${scanned} documents read in id order, ${tally.normalized} carry normalized`,
      }
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
      sampling = {
        method: sample.method,
        collectionTotal: sample.collectionTotal,
        population: sample.population,
        queries: sample.queries,
        note: sample.note,
      }
    }
    if (!options.signal?.aborted && probes.length > 0) {
      const {missed, run} = await runSemanticProbes(
        db,
        target,
        probes.map((p) => p.probe),
        {
          signal: options.signal,
          onProgress: (done) => progress({phase: 'semantic', done, total: probes.length, failed: tally.failed}),
        },
      )
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
      return [
        f,
        {
          emptyItems: m.emptyItems,
          emptyShare: ratio(m.emptyItems, tally.normalized),
          invalidItems: m.invalidItems,
          values: m.values,
          valuesPerItem: m.items > 0 ? Math.round((m.values / m.items) * 100) / 100 : 0,
          maxValues: m.maxValues,
        },
      ]
    }),
  ) as ValidationReport['metrics']['fields']
  const versions = [...tally.versions.entries()]
    .map(([version, count]) => ({version, count}))
    .sort((a, b) => b.count - a.count)
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
    sampling: sampling ?? {
      method: all ? 'full-scan' : 'key-space',
      collectionTotal: 0,
      population: null,
      queries: 0,
      note: 'not run',
    },
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
  logger?.info('validation finished', {
    status,
    checked: report.checked,
    failed: report.failed,
    failureRate: report.failureRate,
  })
  return ValidationReportSchema.parse(report)
}
