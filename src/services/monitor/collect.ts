import {Firestore, Query, Timestamp, Transaction} from 'firebase-admin/firestore'
import {
  ErrorRecordSchema,
  Ledger,
  MemberRecord,
  MemberRecordSchema,
  PartitionRecord,
  PartitionRecordSchema,
  RunRecord,
  RunRecordSchema,
  sumProgress,
} from '../../engine/ledger'
import {RUN_SUBCOLLECTIONS} from '../../domain/ledger-layout'
import {withRetry} from '../../firestore/retry'
import {runTransaction} from '../../firestore/transaction'
import {itemKey, itemsQuery, targetOf} from '../../firestore/target'
import {loadVocabulary} from '../../domain/vocabulary'
import {unmappedEntries} from '../reports'
import {CommandContext, commandLine, taxonomyArgs} from '../../engine/run-identity'
import {targetArgsFor} from './commands'
import {assessHealth, DEFAULT_THRESHOLDS, HealthThresholds} from './health'
import {runView} from './run-view'
import {
  Counts,
  ErrorSummary,
  floor1,
  MonitorReport,
  MonitorReportSchema,
  MonitorSettings,
  UnmappedSummary,
} from './schema'
import {judgeVersion, versionRelation} from './versions'

/**
 * `wardrobe monitor`: progress and health of the backfill, from aggregation queries and
 * the run ledger. Every number comes from `count()` or from a bounded query (recent items,
 * run records, latest error records), all read in one read-only transaction, so the counts
 * are one consistent snapshot (they add up to the total even while a backfill writes).
 *
 * Definitions (README "Monitor"):
 * - normalized (at some version): `normalized.normalized_version` is a non-empty string.
 * - current: that version equals the version monitor judges by (see `judgeVersion`: --taxonomy,
 *   the config file's taxonomy, else the newer of the latest completed backfill's version and
 *   the shipped one). This does not check that the originals are unchanged since (that needs
 *   every item read: `wardrobe validate` does it).
 * - newer: at a version the ledger names that is newer than (or, not numeric, not comparable
 *   with) the judged one. A backfill at the judged version would rewrite these items to an
 *   older vocabulary, so monitor never recommends one while they exist.
 * - outdated: normalized at any other version (older, or one no run record names).
 * - not normalized: everything else = total − normalized. No `normalized` field, a
 *   `normalized` without a version (e.g. written by the app), or a non-string version:
 *   exactly the items a backfill would write whatever its version. Range and `!=` filters
 *   never match a missing field, so this is the only count that includes them.
 */

export interface MonitorOptions {
  /** The version to measure against, when given (--taxonomy, or the config file's taxonomy); else judged from the ledger (`judgeVersion`). */
  vocabularyVersion?: string
  /** That vocabulary's content hash. */
  vocabularyHash?: string
  /** Where vocabularyVersion came from (default: flag). */
  versionSource?: 'flag' | 'config'
  commands?: CommandContext
  thresholds?: Partial<HealthThresholds>
  recentLimit?: number
  errorLimit?: number
  finishedRunLimit?: number
  /** The previous sample (watch mode): run rates are measured between the two. */
  previous?: MonitorReport
  signal?: AbortSignal
  now?: () => number
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000

const MIN_TIMESTAMP = new Timestamp(-62135596800, 0) // 0001-01-01: `>=` keeps only Timestamp values

const [ERRORS] = RUN_SUBCOLLECTIONS

const asIso = (v: unknown): string | null => (v instanceof Timestamp ? v.toDate().toISOString() : null)
const asString = (v: unknown): string | null => (typeof v === 'string' ? v : null)

/**
 * Reads the monitor report: counts by aggregation, the latest normalized items, the
 * runs and the latest backfill run's error records, all at one snapshot; then health.
 */
export async function collectMonitorReport(
  db: Firestore,
  settings: MonitorSettings,
  options: MonitorOptions,
): Promise<MonitorReport> {
  const explicit =
    options.vocabularyVersion === undefined
      ? undefined
      : {version: options.vocabularyVersion, hash: options.vocabularyHash, source: options.versionSource ?? 'flag'}
  const thresholds = {...DEFAULT_THRESHOLDS, ...options.thresholds}
  const ctx: CommandContext = options.commands ?? {
    bin: 'wardrobe',
    targetArgs: targetArgsFor(settings),
    shippedVersion: options.vocabularyVersion ?? loadVocabulary().version,
  }
  const target = targetOf(settings)
  const items = itemsQuery(db, target)
  const ledger = new Ledger(db, settings.ledgerCollection)
  const runsCol = ledger.runs()
  const reads = {aggregations: 0, documents: 0}
  const count = async (tx: Transaction, q: Query): Promise<number> => {
    reads.aggregations++
    return (await tx.get(q.count())).data().count
  }

  const snapshot = await withRetry(
    () =>
      runTransaction(
        db,
        async (tx) => {
          reads.aggregations = 0
          reads.documents = 0
          // Two rounds: the first read starts the transaction (the client sends the others once it has
          // its id), and the run records decide what the second round counts; everything else goes there.
          const runDocs = await tx.get(runsCol.where('collection', '==', settings.collection))
          reads.documents += runDocs.size
          const readTime = runDocs.readTime
          const runs: RunRecord[] = []
          let unreadable = 0
          for (const d of runDocs.docs) {
            const parsed = RunRecordSchema.safeParse(d.data())
            if (!parsed.success) unreadable++
            // The collection and the collection group of one name are different scopes.
            else if (parsed.data.group === target.group) runs.push(parsed.data)
          }
          // Running sharded runs are measured by their partitions (at most a few hundred records each); every running run's processes say what control they apply. Read beside the counts below.
          const partitionsOf = new Map<string, PartitionRecord[]>()
          const membersOf = new Map<string, MemberRecord[]>()
          const details = Promise.all(
            runs
              .filter((r) => r.status === 'running')
              .map(async (r) => {
                const [snap, members] = await Promise.all([
                  r.partitions > 0 ? tx.get(ledger.partitionsOf(r.runId)) : null,
                  tx.get(ledger.membersOf(r.runId)),
                ])
                reads.documents += (snap?.size ?? 0) + members.size
                if (snap) {
                  const parts = snap.docs.map((d) => PartitionRecordSchema.parse(d.data()))
                  partitionsOf.set(r.runId, parts)
                  // Their record's counters are written at the end only: until then, the partitions' sum (in place: latestBackfill may be this very record).
                  Object.assign(r, sumProgress(parts))
                }
                membersOf.set(
                  r.runId,
                  members.docs.map((d) => MemberRecordSchema.parse(d.data())),
                )
              }),
          )
          runs.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
          // The judged version comes from the run records, so its count follows them (same snapshot).
          const basis = judgeVersion(explicit, runs, ctx.shippedVersion, ctx.shippedHash ?? null)
          const otherVersions = [
            ...new Set(
              runs
                .map((r) => r.version)
                .filter((v): v is string => typeof v === 'string' && v !== '' && v !== basis.version),
            ),
          ].sort()
          const latestBackfill = runs.find((r) => r.kind === 'backfill' && r.status !== 'superseded') ?? null
          const errorsCol = latestBackfill ? ledger.runRef(latestBackfill.runId).collection(ERRORS) : null
          const [total, normalized, recent, current, versionCounts, writtenByLatest, errorTotal, errorDocs] =
            await Promise.all([
              count(tx, items),
              // Every non-empty string; a range filter matches strings only, never a missing field.
              count(tx, items.where('normalized.normalized_version', '>', '')),
              tx.get(
                items
                  .where('normalized.normalized_at', '>=', MIN_TIMESTAMP)
                  .orderBy('normalized.normalized_at', 'desc')
                  .limit(options.recentLimit ?? 10)
                  .select('name', 'normalized.normalized_at', 'normalized.normalized_version'),
              ),
              // Current: the judged version, and its very content when known (an edited file that kept its version is not current).
              count(
                tx,
                basis.hash === null
                  ? items.where('normalized.normalized_version', '==', basis.version)
                  : items
                      .where('normalized.normalized_version', '==', basis.version)
                      .where('normalized.taxonomy_hash', '==', basis.hash),
              ),
              Promise.all(otherVersions.map((v) => count(tx, items.where('normalized.normalized_version', '==', v)))),
              // Only while the checkpoint may lag the writes: a completed run's checkpoint (a sharded
              // run's: its partitions' sum) covers every item it settled. (On the emulator each count
              // walks the whole collection.)
              latestBackfill && latestBackfill.status !== 'completed'
                ? count(tx, items.where('normalized.run_id', '==', latestBackfill.runId))
                : Promise.resolve(0),
              errorsCol ? count(tx, errorsCol) : Promise.resolve(0),
              errorsCol
                ? tx.get(errorsCol.orderBy('at', 'desc').limit(options.errorLimit ?? 10))
                : Promise.resolve(null),
              details,
            ])
          reads.documents += recent.size + (errorDocs?.size ?? 0)
          return {
            readTime,
            basis,
            total,
            current,
            normalized,
            recent,
            runs,
            partitionsOf,
            membersOf,
            unreadable,
            otherVersions,
            versionCounts,
            latestBackfill,
            writtenByLatest,
            errorTotal,
            errorDocs,
          }
        },
        {readOnly: true},
      ),
    {signal: options.signal},
  )

  const {basis, total, current, normalized, runs, latestBackfill} = snapshot
  const version = basis.version
  const versions: Counts['versions'] = [
    {version, count: current, current: true, relation: 'current'},
    ...snapshot.otherVersions
      .map((v, i) => ({
        version: v,
        count: snapshot.versionCounts[i],
        current: false,
        relation: versionRelation(v, version),
      }))
      .filter((v) => v.count > 0),
  ]
  const sum = (vs: Counts['versions']) => vs.reduce((s, v) => s + v.count, 0)
  const newer = sum(versions.filter((v) => v.relation === 'newer' || v.relation === 'incomparable'))
  const outdated = Math.max(0, normalized - current - newer)
  const counts: Counts = {
    total,
    normalizedCurrent: current,
    normalizedOutdated: outdated,
    normalizedNewer: newer,
    notNormalized: Math.max(0, total - normalized),
    completionPercent: total === 0 ? 100 : floor1((100 * current) / total),
    versions,
    outdatedUnknownVersions: Math.max(0, outdated - sum(versions.filter((v) => v.relation === 'older'))),
  }

  // Liveness is judged on Firestore's clock (heartbeats are server timestamps), never this machine's.
  const t = options.now?.() ?? snapshot.readTime.toMillis()
  const previousRuns = new Map(
    [...(options.previous?.runs.active ?? []), ...(options.previous?.runs.recent ?? [])].map((r) => [r.runId, r]),
  )
  const views = runs.map((r) =>
    runView(
      r,
      settings,
      ctx,
      version,
      t,
      previousRuns.get(r.runId),
      snapshot.partitionsOf.get(r.runId),
      snapshot.membersOf.get(r.runId),
    ),
  )
  const active = views.filter((v) => v.status === 'running' || v.status === 'stalled')
  const finished = views
    .filter((v) => !(v.status === 'running' || v.status === 'stalled'))
    .slice(0, options.finishedRunLimit ?? 5)

  const scannedByLatest = latestBackfill?.counters.scanned ?? 0
  const processed = latestBackfill ? Math.max(scannedByLatest, snapshot.writtenByLatest + snapshot.errorTotal) : null
  const errors: ErrorSummary = {
    runId: latestBackfill?.runId ?? null,
    total: snapshot.errorTotal,
    processed,
    rate: processed ? round4(snapshot.errorTotal / processed) : null,
    latest: (snapshot.errorDocs?.docs ?? []).flatMap((d) => {
      const e = ErrorRecordSchema.safeParse(d.data())
      return e.success
        ? [{itemId: e.data.itemId, field: e.data.field, reason: e.data.reason, at: e.data.at.toISOString()}]
        : []
    }),
  }
  const occurrences = Object.values(latestBackfill?.unmapped ?? {}).reduce((s, n) => s + n, 0)
  const unmapped: UnmappedSummary = {
    runId: latestBackfill?.runId ?? null,
    distinct: Object.keys(latestBackfill?.unmapped ?? {}).length,
    occurrences,
    rate: latestBackfill && scannedByLatest > 0 ? round4(occurrences / scannedByLatest) : null,
    top: unmappedEntries(latestBackfill?.unmapped ?? {}, 10),
  }

  const commandTarget = {
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    group: target.group,
  }
  const tax = taxonomyArgs(ctx, version, version)
  const health = assessHealth(
    {
      counts,
      active,
      latestBackfill: latestBackfill ? views.find((v) => v.runId === latestBackfill.runId)! : null,
      errors,
      unmapped,
      staleAfterSeconds: settings.staleAfterMs / 1000,
      ledgerCollection: settings.ledgerCollection,
      version,
      basis,
      commands: {
        backfill: commandLine(ctx, 'backfill', commandTarget, tax.args, tax.placeholder),
        dryRun: commandLine(ctx, 'backfill', commandTarget, ['--dry-run', ...tax.args], tax.placeholder),
      },
    },
    thresholds,
  )

  return MonitorReportSchema.parse({
    kind: 'monitor',
    generatedAt: new Date(t).toISOString(),
    readTime: snapshot.readTime.toDate().toISOString(),
    environment: settings.environment,
    projectId: settings.projectId,
    collection: settings.collection,
    collectionGroup: target.group,
    ledgerCollection: settings.ledgerCollection,
    version,
    versionBasis: basis,
    counts,
    recent: snapshot.recent.docs.map((d) => ({
      id: itemKey(d, target),
      name: asString(d.get('name')),
      normalizedAt: asIso(d.get('normalized.normalized_at')),
      version: asString(d.get('normalized.normalized_version')),
    })),
    errors,
    unmapped,
    runs: {active, recent: finished, unreadable: snapshot.unreadable},
    health,
    reads,
  })
}
