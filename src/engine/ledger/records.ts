/**
 * The ledger's records as stored (zod schemas of runs, partitions, processes, error items),
 * and what is read off them without I/O: summaries, liveness, summed progress.
 */
import {FieldValue, QuerySnapshot, Timestamp} from 'firebase-admin/firestore'
import {z} from 'zod'
import {ControlSchema, date} from '../control'
import {ExitCode, WardrobeError} from '../../errors'
import {currentOwner, describeOwner, holderGone, OwnerSchema} from '../lease'

export const RUN_KINDS = ['backfill', 'rollback'] as const
export type RunKind = (typeof RUN_KINDS)[number]
export const RUN_STATUSES = ['running', 'completed', 'failed', 'interrupted', 'superseded'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

export const CountersSchema = z.object({
  scanned: z.number().int().default(0),
  updated: z.number().int().default(0),
  skipped: z.number().int().default(0),
  failed: z.number().int().default(0),
  conflicts: z.number().int().default(0),
})
export type Counters = z.infer<typeof CountersSchema>
export const zeroCounters = (): Counters => ({scanned: 0, updated: 0, skipped: 0, failed: 0, conflicts: 0})

/** Adds `c` into `into` (summing partitions' or workers' counters). */
export function addCounters(into: Counters, c: Counters): Counters {
  for (const k of Object.keys(into) as (keyof Counters)[]) into[k] += c[k]
  return into
}

/** `field:value` → count; kept in the run so a resumed run still reports everything it saw. */
export const UnmappedSchema = z.record(z.string(), z.number().int())
export type Unmapped = z.infer<typeof UnmappedSchema>
export const TagsSchema = z.record(z.string(), z.number().int())
export type Tags = z.infer<typeof TagsSchema>

export const RunRecordSchema = z.object({
  runId: z.string(),
  kind: z.enum(RUN_KINDS),
  environment: z.string(),
  projectId: z.string(),
  collection: z.string(),
  /** `collection` names a collection group. */
  group: z.boolean().default(false),
  version: z.string().nullable(),
  /** Same command = same resume key (run-identity's resumeKey): re-running it resumes this run. */
  resumeKey: z.string(),
  options: z.record(z.string(), z.unknown()).default({}),
  owner: OwnerSchema,
  status: z.enum(RUN_STATUSES),
  counters: CountersSchema,
  unmapped: UnmappedSchema.default({}),
  tags: TagsSchema.default({}),
  /** Last document id up to which every item is acknowledged; null = from the start. */
  cursor: z.string().nullable(),
  total: z.number().int().nullable().default(null),
  startedAt: date,
  heartbeatAt: date,
  finishedAt: date.nullable().default(null),
  error: z.string().nullable().default(null),
  resumes: z.number().int().default(0),
  /**
   * 0: one worker, progress in this record. Otherwise the key space is split into this many
   * partitions (records under `partitions`), each with its own cursor, counters and lease;
   * this record's counters are their sum once the run ends.
   */
  partitions: z.number().int().default(0),
  /** The fence token of a one-worker run's holder: every write of the holder is conditional on it. Null once ended or taken over. */
  leaseId: z.string().nullable().default(null),
  /** The stale limit its holder fences itself by; a takeover waits for the longer of this and its own. */
  staleAfterMs: z.number().int().nullable().default(null),
  /** An unfinished run a rollback started since undoes: its checkpoint no longer says what is done, so it is never resumed. */
  undoneBy: z.string().nullable().default(null),
  /** Live control: pause, stop, the run-wide rate limit, windows (control.ts). */
  control: ControlSchema.default({}),
  /** The command line that resumes the run (as its starter ran it, minus --from-start). */
  command: z.string().nullable().default(null),
  /** The reviewed plan (`--plan`) this run applies: its planHash. */
  planHash: z.string().nullable().default(null),
})
export type RunRecord = z.infer<typeof RunRecordSchema>

export const PARTITION_STATUSES = ['pending', 'running', 'done', 'interrupted', 'failed'] as const
export type PartitionStatus = (typeof PARTITION_STATUSES)[number]

export const PartitionRecordSchema = z.object({
  index: z.number().int(),
  /** Keys after this one (exclusive) … */
  startAfter: z.string().nullable(),
  /** … up to this one (inclusive); null = open. */
  endAt: z.string().nullable(),
  status: z.enum(PARTITION_STATUSES),
  cursor: z.string().nullable().default(null),
  counters: CountersSchema,
  unmapped: UnmappedSchema.default({}),
  tags: TagsSchema.default({}),
  /** The lease: who works on it, and since when it last said so. */
  owner: OwnerSchema.nullable().default(null),
  leaseId: z.string().nullable().default(null),
  heartbeatAt: date.nullable().default(null),
  staleAfterMs: z.number().int().nullable().default(null),
  claims: z.number().int().default(0),
  /** The last takeover: whose lease went stale, and the checkpoint the new owner went on from. */
  tookOverFrom: z
    .object({owner: OwnerSchema, cursor: z.string().nullable(), reason: z.string()})
    .nullable()
    .default(null),
  error: z.string().nullable().default(null),
  finishedAt: date.nullable().default(null),
})
export type PartitionRecord = z.infer<typeof PartitionRecordSchema>

/** A process taking part in a sharded run: while it is alive (waiting workers too) the run does not end. */
export const MemberRecordSchema = z.object({
  owner: OwnerSchema,
  workers: z.number().int().default(1),
  heartbeatAt: date.nullable().default(null),
  staleAfterMs: z.number().int().nullable().default(null),
  leftAt: date.nullable().default(null),
  /** The last control change this process has applied. */
  seenSeq: z.number().int().default(0),
  /** What it does now, its limit (writes/s; null: none) and why, and its acknowledged writes per second lately. */
  state: z.enum(['writing', 'paused', 'stopping']).nullable().default(null),
  limit: z.number().nullable().default(null),
  reason: z.string().nullable().default(null),
  rate: z.number().nullable().default(null),
})
export type MemberRecord = z.infer<typeof MemberRecordSchema>

/** Partitions of a run by status, and whether another live worker still holds one. */
export interface PartitionSummary {
  partitions: PartitionRecord[]
  byStatus: Record<PartitionStatus, number>
  /** Running partitions whose lease is live (fresh heartbeat, process not known dead). */
  live: PartitionRecord[]
}

/** A sharded run ended (or was taken over) while this process was still in it: nothing more to claim. */
export class RunEndedError extends WardrobeError {
  constructor(readonly run: RunRecord) {
    super(`run ${run.runId} is ${run.status}${run.error ? ` (${run.error})` : ''}: no partition is claimed any more`)
    this.name = 'RunEndedError'
  }
}

export const ErrorRecordSchema = z.object({
  itemId: z.string(),
  field: z.string().nullable(),
  reason: z.string(),
  at: date,
})
export type ErrorRecord = z.infer<typeof ErrorRecordSchema>

export class LockHeldError extends WardrobeError {
  constructor(
    readonly holder: RunRecord,
    ageMs: number,
  ) {
    super(
      `${holder.kind} run ${holder.runId} already holds ${holder.collection}: ${describeOwner(holder.owner)}, heartbeat ${Math.round(ageMs / 1000)}s ago`,
      ExitCode.USAGE,
      'wait for it to finish, stop it (`wardrobe runs stop`, or Ctrl-C in its terminal), or, if its process is gone, retry once its heartbeat is stale',
    )
    this.name = 'LockHeldError'
  }
}

export const serverNow = (snap: {readTime: Timestamp}): number => snap.readTime.toMillis()

export function summarize(
  partitions: PartitionRecord[],
  staleAfterMs: number,
  now: number,
  me = currentOwner(),
): PartitionSummary {
  const byStatus = Object.fromEntries(PARTITION_STATUSES.map((s) => [s, 0])) as Record<PartitionStatus, number>
  const live: PartitionRecord[] = []
  for (const p of partitions) {
    byStatus[p.status]++
    if (p.status === 'running' && holderGone(p, staleAfterMs, now, me) === null) live.push(p)
  }
  return {partitions, byStatus, live}
}

/** Processes of a sharded run that have not left and whose heartbeat is fresh (by `now`, Firestore's time). */
export function liveMembers(
  members: MemberRecord[],
  staleAfterMs: number,
  now: number,
  me = currentOwner(),
): MemberRecord[] {
  return members.filter((m) => m.leftAt === null && holderGone(m, staleAfterMs, now, me) === null)
}

/**
 * Why a sharded run may be taken over: no live lease on a partition and no live process
 * (waiting ones included). Without member records (a reader that did not load them), the
 * run record's last claim stands in for them.
 */
export function shardedRunGone(
  run: RunRecord,
  summary: PartitionSummary,
  staleAfterMs: number,
  now: number,
  members?: MemberRecord[],
): string | null {
  if (summary.live.length > 0) return null
  if (members !== undefined)
    return liveMembers(members, staleAfterMs, now).length > 0 ? null : 'none of its processes is alive'
  const age = now - run.heartbeatAt.getTime()
  return age > staleAfterMs ? `none of its workers is alive (last claim ${Math.round(age / 1000)}s ago)` : null
}

/** The sum of the partitions' checkpoints: a sharded run's progress. */
export function sumProgress(partitions: Pick<PartitionRecord, 'counters' | 'unmapped' | 'tags'>[]): {
  counters: Counters
  unmapped: Unmapped
  tags: Tags
} {
  const counters = zeroCounters()
  const unmapped: Unmapped = {}
  const tags: Tags = {}
  for (const p of partitions) {
    addCounters(counters, p.counters)
    for (const [k, n] of Object.entries(p.unmapped)) unmapped[k] = (unmapped[k] ?? 0) + n
    for (const [k, n] of Object.entries(p.tags)) tags[k] = (tags[k] ?? 0) + n
  }
  return {counters, unmapped, tags}
}

export const partitionRecords = (snap: QuerySnapshot): PartitionRecord[] =>
  snap.docs.map((d) => PartitionRecordSchema.parse(d.data()))
export const memberRecords = (snap: QuerySnapshot): MemberRecord[] =>
  snap.docs.map((d) => MemberRecordSchema.parse(d.data()))

/** Error records are keyed by item; a path (collection group) is encoded to one document id. */
export function errorDocId(key: string): string {
  return key.includes('/') ? encodeURIComponent(key) : key
}

/** A record as stored: its heartbeat is Firestore's time of the write, never this machine's. */
export function stored<T extends {heartbeatAt: Date | null}>(
  record: T,
): Omit<T, 'heartbeatAt'> & {heartbeatAt: FieldValue} {
  return {...record, heartbeatAt: FieldValue.serverTimestamp()}
}

/**
 * The run's end that this very call wrote (`at`: its end time, the same in every attempt),
 * committed unseen and run again by the client: the run ended under this process, not
 * under another one.
 */
export function endedByThisCall(run: Pick<RunRecord, 'status' | 'finishedAt'>, at: Date): boolean {
  return run.status !== 'running' && run.finishedAt?.getTime() === at.getTime()
}

export function parseRun(data: unknown): RunRecord {
  return RunRecordSchema.parse(data)
}
