import {DocumentData, Timestamp} from 'firebase-admin/firestore'
import type {Plan} from '../engine/job'
import {boundedHistory, isCurrent, isMap, Owns, ownsFrom} from '../domain/normalized'
import {normalizeItem} from '../domain/normalization'
import {BackfillStats, BackfillStatsSchema, unmappedEntries} from './reports'
import {baseStats, executeRun, RunOutcome} from '../engine/run'
import type {RunContext} from '../engine/run-context'
import {readRunHistory} from '../engine/run-history'
import {resumeKey} from '../engine/run-identity'
import {targetOf} from '../firestore/target'
import {NORMALIZED_FIELDS, Vocabulary} from '../domain/vocabulary'
import {estimateWriteSeconds} from '../engine/writer'

/** What the backfill reads of each item: the originals it normalizes and the current `normalized`. */
export const BACKFILL_FIELDS = [...NORMALIZED_FIELDS, 'normalized']

export interface BackfillOptions {
  vocabulary: Vocabulary
  batchSize: number
  dryRun: boolean
  force: boolean
  fromStart: boolean
  maxRate?: number
}

type NormalizedMap = {source_hash?: unknown; run_id?: unknown}

const PLACEHOLDER_TAG = 'placeholder'

/** Decides one item: error item, already current, or the new `normalized` (keeping the one it replaces, for rollback). */
export function planBackfill(
  data: DocumentData,
  vocabulary: Vocabulary,
  options: {force: boolean; runId: string | null; owns?: Owns},
): Plan {
  const outcome = normalizeItem(data, vocabulary)
  if (!outcome.ok) return {action: 'error', field: outcome.field, reason: outcome.reason}
  // Most items have no unmapped value: no array for them.
  const unmapped = outcome.unmapped.length === 0 ? undefined : outcome.unmapped.map((u) => `${u.field}:${u.value}`)
  // Items with a value meaning "nothing" are counted by the engine's per-item tags (kept across resumes and partitions).
  const tag = outcome.placeholders.length === 0 ? undefined : PLACEHOLDER_TAG
  const existing: unknown = data.normalized
  const current = isMap(existing) ? (existing as NormalizedMap) : undefined
  // Written by this very run before an interruption, from the item as it is now: done, even under --force.
  if (options.runId && current?.run_id === options.runId && current.source_hash === outcome.sourceHash)
    return {action: 'skip', unmapped, own: true, tag}
  if (!options.force && isCurrent(current, vocabulary) && current?.source_hash === outcome.sourceHash)
    return {action: 'skip', unmapped, tag}
  const {values} = outcome
  // Fields named one by one: an object spread followed by more properties costs V8 about 3 µs per item.
  const normalized: DocumentData = {
    style: values.style,
    occasion: values.occasion,
    mood: values.mood,
    season: values.season,
    normalized_at: Timestamp.now(),
    normalized_version: vocabulary.version,
    taxonomy_hash: vocabulary.hash,
    source_hash: outcome.sourceHash,
    run_id: options.runId,
  }
  if (existing !== undefined) normalized.previous = boundedHistory(existing, options.owns ?? ownsFrom(null))
  return {action: 'write', data: {normalized}, unmapped, tag}
}

/** `wardrobe backfill`: normalizes every item of the collection, resumably, or reports what it would do. */
export async function runBackfill(ctx: RunContext, options: BackfillOptions): Promise<BackfillStats> {
  const history = await readRunHistory(ctx)
  const known = history && new Set(history.backfills.keys())
  const owns = ownsFrom(known)
  const {vocabulary} = options
  const spec = {
    kind: 'backfill' as const,
    version: vocabulary.version,
    resumeKey: resumeKey({
      kind: 'backfill',
      version: vocabulary.version,
      taxonomyHash: vocabulary.hash,
      force: options.force,
      group: targetOf(ctx.settings).group,
    }),
    options: {
      batchSize: options.batchSize,
      force: options.force,
      maxRate: options.maxRate ?? null,
      taxonomyHash: vocabulary.hash,
    },
    select: BACKFILL_FIELDS,
    plan: (doc: {data(): DocumentData | undefined}, runId: string | null) => {
      // A new run is not in the ledger as read before it began: its own values are the tool's too.
      if (runId !== null) known?.add(runId)
      return planBackfill(doc.data() ?? {}, vocabulary, {force: options.force, runId, owns})
    },
    dryRun: options.dryRun,
    fromStart: options.fromStart,
    batchSize: options.batchSize,
  }
  const outcome = await executeRun(ctx, spec)
  const stats = BackfillStatsSchema.parse({
    kind: 'backfill',
    ...baseStats(ctx, spec, outcome),
    force: options.force,
    unmapped: unmappedEntries(outcome.result.unmapped),
    unmappedDistinct: Object.keys(outcome.result.unmapped).length,
    placeholder: outcome.result.tags[PLACEHOLDER_TAG] ?? 0,
    estimate: options.dryRun ? estimate(outcome, ctx.emulator, options.maxRate) : null,
  })
  ctx.logger?.info('backfill finished', {...stats, errorSamples: undefined, unmapped: undefined})
  return stats
}

/** What the real run would cost: reads of every item and the count, writes of updates and error records. */
function estimate({result, total}: RunOutcome, emulator: boolean, maxRate?: number): BackfillStats['estimate'] {
  return estimateRun(
    {scanned: result.counters.scanned, writes: result.counters.updated + result.counters.failed, total},
    emulator,
    maxRate,
  )
}

/** A backfill's reads (every item scanned, and a count() reads one entry per 1,000), writes and time under the ramp. */
export function estimateRun(
  {scanned, writes, total}: {scanned: number; writes: number; total: number},
  emulator: boolean,
  maxRate?: number,
): NonNullable<BackfillStats['estimate']> {
  const reads = scanned + Math.max(1, Math.ceil(total / 1000))
  return {
    reads,
    writes,
    seconds: Math.round(estimateWriteSeconds(writes, {emulator, maxRate}) * 10) / 10,
    rateAssumption: emulator
      ? `emulator, unthrottled${maxRate ? `, capped at ${maxRate}/s` : ''}`
      : `500/50/5 ramp from 500 ops/s${maxRate ? `, capped at ${maxRate}/s` : ' up to 10,000 ops/s'}`,
  }
}
