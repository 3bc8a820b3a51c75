import {z} from 'zod'
import {UnmappedEntrySchema} from '../reports'

/** The validation report (`wardrobe validate --json`, validation_report_*.json) and its findings. */

export const CHECKS = ['structure', 'canonical', 'consistency', 'semantic', 'not-normalized'] as const
export type CheckName = (typeof CHECKS)[number]

/** `unverified-version` is no failure: the item could not be verified (its vocabulary is not loaded), so it does not pass either. */
export const FindingSchema = z.object({
  check: z.enum([...CHECKS, 'unverified-version']),
  field: z.string().nullable(),
  reason: z.string(),
})
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
    semantic: z.object({
      checked: z.number().int(),
      failed: z.number().int(),
      notApplicable: z.number().int(),
      limit: z.number().int(),
      note: z.string(),
    }),
    notNormalized: z.object({failed: z.number().int()}),
  }),
  metrics: z.object({
    fields: z.object({
      style: FieldMetricsSchema,
      occasion: FieldMetricsSchema,
      mood: FieldMetricsSchema,
      season: FieldMetricsSchema,
    }),
    /** Items whose four arrays are all empty: no semantic filter can find them. */
    allEmptyItems: z.number().int(),
    unmapped: z.object({
      items: z.number().int(),
      share: z.number(),
      values: z.number().int(),
      distinct: z.number().int(),
      top: z.array(UnmappedEntrySchema),
    }),
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
