import crypto from 'node:crypto'
import {DocumentReference, DocumentSnapshot, FieldValue, Firestore, QuerySnapshot, Timestamp, Transaction} from 'firebase-admin/firestore'
import {z} from 'zod'
import {Control, ControlAction, ControlChange, ControlSchema, date, MAX_CHANGES, Window} from './control'
import {ExitCode, GrpcCode, UsageError, WardrobeError} from '../errors'
import type {KeyRange, Progress, ProgressStore} from './job'
import {LOCK_COLLECTION, RUN_SUBCOLLECTIONS} from './ledger-layout'
import {currentOwner, describeOwner, Fence, holderGone, isMe, LeaseLostError, Owner, OwnerSchema, trustMs} from './lease'
import {sameRun} from './run-identity'

export {currentOwner, describeOwner, holderGone, LeaseLostError, OwnerSchema}
export type {Owner}

/** How long a run's final ledger write may take: during an outage it would otherwise wait on the client's own retries. */
export const FINISH_DEADLINE_MS = 15_000

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
  tookOverFrom: z.object({owner: OwnerSchema, cursor: z.string().nullable(), reason: z.string()}).nullable().default(null),
  error: z.string().nullable().default(null),
  finishedAt: date.nullable().default(null),
})
export type PartitionRecord = z.infer<typeof PartitionRecordSchema>

/**
 * What this process holds and writes under: a one-worker run's record or a partition of a
 * sharded run. Every write to that record is conditional on its last update time, and the
 * fence keeps item writes within the lease.
 */
export interface Lease {
  ref: DocumentReference
  leaseId: string
  /** The record's update time after our last write. */
  updateTime: Timestamp
  fence: Fence
  /** What the lease is for, in messages ("run X", "partition 3 of run X"). */
  what: string
}

/** A partition claimed by this process. */
export interface PartitionLease extends Lease {
  partition: PartitionRecord
}

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


export interface AcquireRequest {
  kind: RunKind
  environment: string
  projectId: string
  collection: string
  version: string | null
  resumeKey: string
  options: Record<string, unknown>
  fromStart: boolean
  staleAfterMs: number
  total: number | null
  group?: boolean
  /** A new run is to be sharded: acquire returns null until `partitions` are given. */
  sharded?: boolean
  /** The ranges a new sharded run is split into. */
  partitions?: KeyRange[]
  /** Join (or resume) exactly this run. */
  join?: string
  /** This process's workers (sharded runs record it per process). */
  workers?: number
  /** A rollback: the backfill runs it undoes (null: all of them); unfinished ones among them are marked never to resume. */
  undoes?: {runIds: string[] | null}
  /** Live control a new run starts with; on resuming a run no process holds, what is given replaces the run's. */
  control?: ControlRequest
  /** The command line that resumes the run. */
  command?: string
}

/** Control settings a command gives (undefined: not given). */
export interface ControlRequest {
  maxRate?: number
  targetLatencyMs?: number
  windows?: Window[]
  timezone?: string
}

export interface Acquired {
  run: RunRecord
  resumed: boolean
  /** This process joined a sharded run that other workers hold. */
  joined: boolean
  /** The holder whose stale or dead run was taken over, if any. */
  tookOverFrom?: {runId: string; owner: Owner; reason: string}
  /** A one-worker run's lease (sharded runs lease partitions instead). */
  lease: Lease | null
}

export class LockHeldError extends WardrobeError {
  constructor(readonly holder: RunRecord, ageMs: number) {
    super(
      `${holder.kind} run ${holder.runId} already holds ${holder.collection}: ${describeOwner(holder.owner)}, heartbeat ${Math.round(ageMs / 1000)}s ago`,
      ExitCode.USAGE,
      'wait for it to finish, stop it (`wardrobe runs stop`, or Ctrl-C in its terminal), or, if its process is gone, retry once its heartbeat is stale',
    )
    this.name = 'LockHeldError'
  }
}

const [ERRORS, PARTITIONS, PROCESSES] = RUN_SUBCOLLECTIONS

const serverNow = (snap: {readTime: Timestamp}): number => snap.readTime.toMillis()

export function summarize(partitions: PartitionRecord[], staleAfterMs: number, now: number, me = currentOwner()): PartitionSummary {
  const byStatus = Object.fromEntries(PARTITION_STATUSES.map((s) => [s, 0])) as Record<PartitionStatus, number>
  const live: PartitionRecord[] = []
  for (const p of partitions) {
    byStatus[p.status]++
    if (p.status === 'running' && holderGone(p, staleAfterMs, now, me) === null) live.push(p)
  }
  return {partitions, byStatus, live}
}

/** Processes of a sharded run that have not left and whose heartbeat is fresh (by `now`, Firestore's time). */
export function liveMembers(members: MemberRecord[], staleAfterMs: number, now: number, me = currentOwner()): MemberRecord[] {
  return members.filter((m) => m.leftAt === null && holderGone(m, staleAfterMs, now, me) === null)
}

/**
 * Why a sharded run may be taken over: no live lease on a partition and no live process
 * (waiting ones included). Without member records (a reader that did not load them), the
 * run record's last claim stands in for them.
 */
export function shardedRunGone(run: RunRecord, summary: PartitionSummary, staleAfterMs: number, now: number, members?: MemberRecord[]): string | null {
  if (summary.live.length > 0) return null
  if (members !== undefined) return liveMembers(members, staleAfterMs, now).length > 0 ? null : 'none of its processes is alive'
  const age = now - run.heartbeatAt.getTime()
  return age > staleAfterMs ? `none of its workers is alive (last claim ${Math.round(age / 1000)}s ago)` : null
}

/** The sum of the partitions' checkpoints: a sharded run's progress. */
export function sumProgress(partitions: Pick<PartitionRecord, 'counters' | 'unmapped' | 'tags'>[]): Omit<Progress, 'cursor'> {
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

const partitionRecords = (snap: QuerySnapshot): PartitionRecord[] => snap.docs.map((d) => PartitionRecordSchema.parse(d.data()))
const memberRecords = (snap: QuerySnapshot): MemberRecord[] => snap.docs.map((d) => MemberRecordSchema.parse(d.data()))

/** Error records are keyed by item; a path (collection group) is encoded to one document id. */
export function errorDocId(key: string): string {
  return key.includes('/') ? encodeURIComponent(key) : key
}

function newRunId(kind: RunKind): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
  return `${kind}-${stamp}-${crypto.randomBytes(3).toString('hex')}`
}

const newLeaseId = () => crypto.randomBytes(8).toString('hex')

/** A record as stored: its heartbeat is Firestore's time of the write, never this machine's. */
function stored<T extends {heartbeatAt: Date | null}>(record: T): Omit<T, 'heartbeatAt'> & {heartbeatAt: FieldValue} {
  return {...record, heartbeatAt: FieldValue.serverTimestamp()}
}

/**
 * The run ledger: one record per non-dry run, error items beneath it, and one lock
 * document per collection so that two writing runs never overlap.
 *
 * Leases (see lease.ts): staleness is judged on Firestore's clock only (server-timestamped
 * heartbeats against a transaction's read time); every write of a holder is conditional on
 * still holding (a fence token and the record's update time); whoever takes a run over or
 * ends it revokes every lease on it in the same transaction.
 */
export class Ledger {
  /** Partition leases this process's workers are on: one it holds but no worker works is an orphan of a retried claim. */
  private readonly working = new Set<string>()

  constructor(
    readonly db: Firestore,
    readonly collectionName: string,
  ) {}

  runs() {
    return this.db.collection(this.collectionName)
  }

  runRef(runId: string): DocumentReference {
    return this.runs().doc(runId)
  }

  errorRef(runId: string, itemKey: string): DocumentReference {
    return this.runRef(runId).collection(ERRORS).doc(errorDocId(itemKey))
  }

  partitionsOf(runId: string) {
    return this.runRef(runId).collection(PARTITIONS)
  }

  partitionRef(runId: string, index: number): DocumentReference {
    return this.partitionsOf(runId).doc(`p${String(index).padStart(4, '0')}`)
  }

  membersOf(runId: string) {
    return this.runRef(runId).collection(PROCESSES)
  }

  async partitions(runId: string): Promise<PartitionRecord[]> {
    return partitionRecords(await this.partitionsOf(runId).orderBy('index').get())
  }

  async members(runId: string): Promise<MemberRecord[]> {
    return memberRecords(await this.membersOf(runId).get())
  }

  private lockRef(collection: string): DocumentReference {
    return this.db.collection(LOCK_COLLECTION).doc(collection)
  }

  /** The run a lock names, read from the ledger it names. */
  private async lockHolder(tx: Transaction, lock: DocumentSnapshot): Promise<{ref: DocumentReference; run: RunRecord | undefined}> {
    const ref = this.db.collection((lock.get('ledger') as string | undefined) ?? this.collectionName).doc(lock.get('runId') as string)
    const snap = await tx.get(ref)
    return {ref, run: snap.exists ? parseRun(snap.data()) : undefined}
  }

  /**
   * Takes the collection's lock and returns the run to work on: the unfinished run of the
   * same command (resumed from its checkpoint) or a new one. A live holder is refused,
   * unless it is a sharded run of the same command: then this process joins it. A holder
   * that is gone (any kind) is marked interrupted and its leases revoked.
   */
  async acquire(req: AcquireRequest): Promise<Acquired | null> {
    const me = currentOwner()
    const leaseId = newLeaseId()
    const granted = Fence.now()
    const acquired = await this.db.runTransaction(async (tx): Promise<Omit<Acquired, 'lease'> | null> => {
      const lockRef = this.lockRef(req.collection)
      const lock = await tx.get(lockRef)
      const now = serverNow(lock)
      let tookOverFrom: Acquired['tookOverFrom']
      let revoke: ((patch: Record<string, unknown>) => void) | undefined
      if (lock.exists) {
        const {ref: holderRef, run: holder} = await this.lockHolder(tx, lock)
        if (holder && holder.status === 'running') {
          // Our own acquisition, committed unseen and retried by the client: it is ours already.
          if (holder.leaseId !== null && holder.leaseId === leaseId) return {run: holder, resumed: holder.resumes > 0, joined: false}
          const sameLedger = holderRef.parent.id === this.collectionName
          const sameCommand = sameLedger && sameRun(holder, req) && (req.join === undefined || req.join === holder.runId)
          const running = holder.partitions > 0 ? await tx.get(holderRef.collection(PARTITIONS).where('status', '==', 'running')) : null
          const members = holder.partitions > 0 ? memberRecords(await tx.get(holderRef.collection(PROCESSES))) : undefined
          const gone =
            running !== null
              ? shardedRunGone(holder, summarize(partitionRecords(running), req.staleAfterMs, now, me), req.staleAfterMs, now, members)
              : holderGone(holder, req.staleAfterMs, now, me)
          // Workers join a live sharded run; leases, not the lock, decide who works on what. A dead one is resumed below.
          if (holder.partitions > 0 && sameCommand && !req.fromStart && !gone) {
            if (holder.control.state === 'stopping') throw new UsageError(`run ${holder.runId} is being stopped (${lastChange(holder.control)})`, 're-run the command once its processes have exited: it then resumes the run')
            tx.set(this.membersOf(holder.runId).doc(me.processId), newMember(me, req))
            return {run: holder, resumed: true, joined: true}
          }
          if (!gone) throw new LockHeldError(holder, now - holder.heartbeatAt.getTime())
          tookOverFrom = {runId: holder.runId, owner: holder.owner, reason: gone}
          // The old holder learns it on its next write (its lease token is gone) and stops. --from-start leaves it behind for good.
          const status = req.fromStart && sameCommand ? 'superseded' : 'interrupted'
          revoke = (patch) => {
            tx.set(holderRef, {status, leaseId: null, error: `taken over by ${req.kind} (${describeOwner(me)}): ${gone}`, finishedAt: new Date(), ...patch}, {merge: true})
            for (const d of running?.docs ?? []) tx.update(d.ref, {status: 'interrupted', leaseId: null})
          }
        }
      }
      // A rollback marks the unfinished backfill runs it undoes: resuming one from its checkpoint would skip the items undone before it.
      const undone = req.undoes
        ? (await tx.get(this.runs().where('collection', '==', req.collection).where('kind', '==', 'backfill').where('status', 'in', ['running', 'interrupted', 'failed']))).docs
            .map((d) => parseRun(d.data()))
            .filter((r) => req.undoes!.runIds === null || req.undoes!.runIds.includes(r.runId))
        : []
      const unfinished = await tx.get(
        this.runs().where('collection', '==', req.collection).where('kind', '==', req.kind).where('status', 'in', ['running', 'interrupted', 'failed']),
      )
      const candidates = unfinished.docs.map((d) => parseRun(d.data())).sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      const at = new Date()
      const resumable = req.fromStart ? undefined : candidates.find((r) => r.undoneBy === null && (req.join === undefined ? sameRun(r, req) : r.runId === req.join))
      if (req.join !== undefined && !resumable) {
        throw new UsageError(`run ${req.join} is not an unfinished ${req.kind} run of ${req.collection}`, `list runs with \`wardrobe monitor\`; drop --join to start or resume the run of this command`)
      }
      if (resumable && !sameRun(resumable, req)) {
        throw new UsageError(`run ${resumable.runId} was started with other options (${resumable.resumeKey})`, 'pass the same options as the run you join (taxonomy, --force, scope)')
      }
      // Splitting the key space may take a scan: done outside the transaction, then acquire again.
      if (!resumable && req.sharded && !req.partitions) return null
      // Reads first (a transaction's rule), then every write.
      const stopped = resumable && resumable.partitions > 0 ? await tx.get(this.partitionsOf(resumable.runId).where('status', 'in', ['failed', 'running'])) : null
      const runId = resumable?.runId ?? newRunId(req.kind)
      const undoneBy = (id: string) => (undone.some((r) => r.runId === id) ? {undoneBy: runId} : {})
      // A holder resumed by this very acquisition is rewritten below instead.
      if (tookOverFrom && tookOverFrom.runId !== resumable?.runId) revoke?.(undoneBy(tookOverFrom.runId))
      for (const r of undone) if (r.runId !== tookOverFrom?.runId) this.set(tx, r.runId, {undoneBy: runId})
      for (const r of candidates) {
        if (r.runId === resumable?.runId || r.runId === tookOverFrom?.runId) continue
        // A running record here holds no lock (an older ledger's leftover): mark it so. --from-start, or a rollback since, leaves old runs behind for good.
        if (r.status === 'running') this.set(tx, r.runId, {status: 'interrupted', leaseId: null, error: 'taken over by a new run'})
        else if ((req.fromStart || r.undoneBy !== null) && sameRun(r, req)) this.set(tx, r.runId, {status: 'superseded', finishedAt: at})
      }
      let run: RunRecord
      if (resumable) {
        run = {...resumable, owner: me, status: 'running', heartbeatAt: at, finishedAt: null, error: null, resumes: resumable.resumes + 1, total: req.total ?? resumable.total, staleAfterMs: req.staleAfterMs, control: resumedControl(resumable.control, req.control, me, new Date(now)), command: resumable.command ?? req.command ?? null}
        // A failed partition is worked again by the resumed run; a stale lease on one is revoked.
        for (const d of stopped?.docs ?? []) tx.update(d.ref, {status: d.get('status') === 'failed' ? 'pending' : 'interrupted', error: null, leaseId: null})
      } else {
        const ranges = req.partitions ?? []
        run = RunRecordSchema.parse({
          runId,
          kind: req.kind,
          environment: req.environment,
          projectId: req.projectId,
          collection: req.collection,
          group: req.group ?? false,
          version: req.version,
          resumeKey: req.resumeKey,
          options: req.options,
          owner: me,
          status: 'running',
          counters: zeroCounters(),
          cursor: null,
          total: req.total,
          startedAt: at,
          heartbeatAt: at,
          partitions: ranges.length,
          staleAfterMs: req.staleAfterMs,
          control: newControl(req.control, me, new Date(now)),
          command: req.command ?? null,
        })
        ranges.forEach((range, index) =>
          tx.set(this.partitionRef(run.runId, index), PartitionRecordSchema.parse({index, ...range, status: 'pending', counters: zeroCounters()})),
        )
      }
      run.leaseId = run.partitions > 0 ? null : leaseId
      tx.set(this.runRef(run.runId), stored(run))
      // Every process of a run has a process record: its liveness (sharded runs end by it) and the control it has applied.
      tx.set(this.membersOf(run.runId).doc(me.processId), newMember(me, req))
      tx.set(lockRef, {runId: run.runId, ledger: this.collectionName, kind: run.kind, leaseId: run.leaseId, owner: me, acquiredAt: at})
      return {run, resumed: Boolean(resumable), joined: false, tookOverFrom}
    })
    if (!acquired) return null
    const {run} = acquired
    if (run.partitions > 0) return {...acquired, lease: null}
    // The update time of our acquisition: every later write to the record is conditional on the last one.
    const snap = await this.runRef(run.runId).get()
    const what = `run ${run.runId}`
    if (snap.get('leaseId') !== leaseId) throw new LeaseLostError(what)
    return {...acquired, lease: this.lease(snap, leaseId, what, req.staleAfterMs, granted)}
  }

  private lease(snap: DocumentSnapshot, leaseId: string, what: string, staleAfterMs: number, granted: ReturnType<typeof Fence.now>): Lease {
    const lease: Lease = {ref: snap.ref, leaseId, updateTime: snap.updateTime!, what, fence: undefined as unknown as Fence}
    lease.fence = new Fence(trustMs(staleAfterMs), () => this.updateLeased(lease, {}), granted)
    return lease
  }

  /**
   * Claims a partition of a sharded run for this process: a pending or interrupted one, or
   * one whose lease is gone (stale heartbeat by Firestore's clock, or a dead process in this
   * pid namespace), looking from `prefer` on so that workers spread out. Null when there is
   * none to claim now. Throws RunEndedError once the run is no longer running or no longer
   * holds the collection's lock.
   */
  async claim(run: Pick<RunRecord, 'runId' | 'collection'>, prefer: number, staleAfterMs: number): Promise<{lease: PartitionLease | null; summary: PartitionSummary}> {
    const {runId} = run
    const me = currentOwner()
    const leaseId = newLeaseId()
    const granted = Fence.now()
    const claimed = await this.db.runTransaction(async (tx) => {
      const [runSnap, lock, partSnap] = await Promise.all([tx.get(this.runRef(runId)), tx.get(this.lockRef(run.collection)), tx.get(this.partitionsOf(runId).orderBy('index'))])
      const record = parseRun(runSnap.data())
      if (record.status !== 'running' || lock.get('runId') !== runId) throw new RunEndedError(record)
      const partitions = partitionRecords(partSnap)
      const now = serverNow(partSnap)
      const n = partitions.length
      for (let i = 0; i < n; i++) {
        const p = partitions[(prefer + i) % n]
        // This very claim, committed unseen and retried by the client.
        if (p.status === 'running' && p.leaseId === leaseId) return {index: p.index, partitions, now}
        const orphan = p.status === 'running' && p.owner !== null && isMe(p.owner, me) && !this.working.has(p.leaseId ?? '')
        const gone = orphan ? 'claimed by this process but worked by none of its workers (a retried claim)' : p.status === 'running' ? holderGone(p, staleAfterMs, now, me) : null
        if (!(p.status === 'pending' || p.status === 'interrupted' || gone)) continue
        const next: PartitionRecord = {
          ...p,
          status: 'running',
          owner: me,
          leaseId,
          heartbeatAt: new Date(now),
          staleAfterMs,
          claims: p.claims + 1,
          error: null,
          tookOverFrom: gone && p.owner ? {owner: p.owner, cursor: p.cursor, reason: gone} : p.tookOverFrom,
        }
        tx.set(this.partitionRef(runId, p.index), stored(next))
        tx.set(this.runRef(runId), {heartbeatAt: FieldValue.serverTimestamp()}, {merge: true})
        partitions[(prefer + i) % n] = next
        return {index: p.index, partitions, now}
      }
      return {index: null, partitions, now}
    })
    const summary = summarize(claimed.partitions, staleAfterMs, claimed.now, me)
    if (claimed.index === null) return {lease: null, summary}
    const snap = await this.partitionRef(runId, claimed.index).get()
    const partition = PartitionRecordSchema.parse(snap.data())
    if (partition.leaseId !== leaseId) return {lease: null, summary}
    this.working.add(leaseId)
    return {lease: {...this.lease(snap, leaseId, `partition ${claimed.index} of run ${runId}`, staleAfterMs, granted), partition}, summary}
  }

  /** A worker is done with a partition (ended, or lost it). */
  release(lease: Lease): void {
    this.working.delete(lease.leaseId)
  }

  /**
   * Writes to a leased record (a one-worker run, or a partition), only while the lease is
   * still ours, and renews the lease's fence. A lost lease throws LeaseLostError and revokes
   * the fence: the holder sends nothing more.
   */
  async updateLeased(lease: Lease, patch: Record<string, unknown>): Promise<void> {
    if (lease.fence.lost) throw lease.fence.lost
    const sentAt = Fence.now()
    try {
      const result = await lease.ref.update({...patch, heartbeatAt: FieldValue.serverTimestamp()}, {lastUpdateTime: lease.updateTime})
      lease.updateTime = result.writeTime
      lease.fence.confirm(sentAt)
    } catch (err) {
      const code = (err as {code?: number}).code
      if (code !== GrpcCode.FAILED_PRECONDITION && code !== GrpcCode.NOT_FOUND) throw err
      // Our own earlier write may have landed unseen (a retried RPC): the lease is then still ours.
      const snap = await lease.ref.get()
      if (!snap.exists || snap.get('leaseId') !== lease.leaseId) {
        const why = snap.get('error') as string | null | undefined
        const lost = new LeaseLostError(lease.what, why ?? 'taken over by another process')
        lease.fence.revoke(lost)
        throw lost
      }
      lease.updateTime = snap.updateTime!
      await this.updateLeased(lease, patch)
    }
  }

  /** Progress kept in a leased record (a one-worker run's, or a partition's): every write conditional on the lease. */
  progressStore(runId: string, lease: Lease, saved: Progress): ProgressStore {
    return {
      saved: {cursor: saved.cursor, counters: saved.counters, unmapped: saved.unmapped, tags: saved.tags},
      save: (progress) => this.updateLeased(lease, {...progress}),
      heartbeat: () => this.updateLeased(lease, {}),
      errorRef: (key) => this.errorRef(runId, key),
    }
  }

  /** A process of a run says it is alive (a sharded run's workers may all be waiting), and what control it applies. */
  async memberHeartbeat(runId: string, report: Partial<Pick<MemberRecord, 'seenSeq' | 'state' | 'limit' | 'reason' | 'rate' | 'leftAt'>> = {}): Promise<void> {
    await this.membersOf(runId).doc(currentOwner().processId).set({...report, heartbeatAt: FieldValue.serverTimestamp()}, {merge: true})
  }

  /** The run holding the target's lock, if it is recorded in this ledger. */
  async activeRunId(collection: string): Promise<string | null> {
    const lock = await this.lockRef(collection).get()
    return lock.exists && (lock.get('ledger') ?? this.collectionName) === this.collectionName ? (lock.get('runId') as string) : null
  }

  /**
   * An operator's change to a run's control (`wardrobe runs pause|resume|stop|throttle`), in
   * a transaction on the run record: recorded with who, when and why, numbered so that each
   * process says which change it has applied. Refused (UsageError) where it means nothing:
   * stopping or changing an ended run, resuming one that is not paused.
   */
  async changeControl(runId: string, action: Exclude<ControlAction, 'start'>, change: {by: string; reason?: string | null; maxRate?: number | null}): Promise<{run: RunRecord; changed: boolean; members: MemberRecord[]; now: number}> {
    return this.db.runTransaction(async (tx) => {
      const [snap, memberSnap] = await Promise.all([tx.get(this.runRef(runId)), tx.get(this.membersOf(runId))])
      if (!snap.exists) throw new UsageError(`no run ${runId} in ${this.collectionName}`, 'list runs with `wardrobe runs list`')
      const run = parseRun(snap.data())
      const members = memberRecords(memberSnap)
      const now = serverNow(snap)
      const unfinished = run.status === 'running' || run.status === 'interrupted' || run.status === 'failed'
      if (!unfinished || run.undoneBy !== null) throw new UsageError(`run ${runId} is ${run.undoneBy ? `undone by ${run.undoneBy}` : run.status}: there is nothing to ${action}`, 'list runs with `wardrobe runs list`')
      const c = run.control
      if (action === 'stop' && run.status !== 'running') throw new UsageError(`run ${runId} is ${run.status}: no process of it is running`, 'it stays as it is until the command that started it is run again')
      const next: Control = {...c}
      if (action === 'pause') next.state = c.state === 'stopping' ? 'stopping' : 'paused'
      if (action === 'resume') next.state = c.state === 'stopping' ? 'stopping' : 'running'
      if (action === 'stop') next.state = 'stopping'
      if (action === 'throttle') next.maxRate = change.maxRate ?? null
      const changed = next.state !== c.state || next.maxRate !== c.maxRate
      if (!changed) return {run, changed, members, now}
      const entry: ControlChange = {seq: c.seq + 1, action, by: change.by, at: new Date(now), reason: change.reason ?? null, ...(action === 'throttle' ? {maxRate: next.maxRate} : {})}
      next.seq = entry.seq
      next.changes = [...c.changes, entry].slice(-MAX_CHANGES)
      // The record's update time changes: each holder's next conditional write re-reads it and finds its lease intact.
      tx.update(snap.ref, {control: next})
      return {run: {...run, control: next}, changed, members, now}
    })
  }

  private set(tx: Transaction, runId: string, patch: Partial<RunRecord>): void {
    tx.set(this.runRef(runId), patch, {merge: true})
  }

  /**
   * Ends a one-worker run and releases the collection's lock, only while the lease is ours
   * (a successor may have resumed this very run): LeaseLostError otherwise, and nothing written.
   */
  async finish(lease: Lease, runId: string, collection: string, patch: Pick<RunRecord, 'status' | 'cursor' | 'counters' | 'unmapped' | 'tags'> & {error?: string | null}): Promise<void> {
    const at = new Date()
    await this.db.runTransaction(async (tx) => {
      const [record, lock] = await Promise.all([tx.get(this.runRef(runId)), tx.get(this.lockRef(collection))])
      if (record.get('leaseId') !== lease.leaseId) throw lease.fence.lost ?? new LeaseLostError(lease.what, (record.get('error') as string | null) ?? 'taken over by another process')
      const ended = patch.status !== 'running'
      tx.set(this.runRef(runId), {...patch, error: patch.error ?? null, heartbeatAt: FieldValue.serverTimestamp(), finishedAt: ended ? at : null, leaseId: ended ? null : lease.leaseId}, {merge: true})
      if (ended && lock.get('runId') === runId && lock.get('leaseId') === lease.leaseId) tx.delete(this.lockRef(collection))
    })
  }

  /**
   * This process leaves a sharded run. The run ends only when no other process of it is
   * alive (waiting ones included) and no lease on it is live: completed when every
   * partition is done, otherwise failed or interrupted; its counters become the
   * partitions' sum, any lease left on it is revoked, and the lock is released. Returns the
   * run as this call leaves it (still running while other processes go on).
   */
  async finishSharded(runId: string, collection: string, staleAfterMs: number): Promise<{run: RunRecord; summary: PartitionSummary}> {
    const me = currentOwner()
    return this.db.runTransaction(async (tx) => {
      const [runSnap, partSnap, memberSnap, lock] = await Promise.all([
        tx.get(this.runRef(runId)),
        tx.get(this.partitionsOf(runId).orderBy('index')),
        tx.get(this.membersOf(runId)),
        tx.get(this.lockRef(collection)),
      ])
      const run = parseRun(runSnap.data())
      const now = serverNow(runSnap)
      const at = new Date()
      const summary = summarize(partitionRecords(partSnap), staleAfterMs, now, me)
      const others = liveMembers(memberRecords(memberSnap), staleAfterMs, now, me).filter((m) => !isMe(m.owner, me))
      tx.set(this.membersOf(runId).doc(me.processId), {leftAt: at}, {merge: true})
      if (run.status !== 'running' || others.length > 0 || summary.live.some((p) => !isMe(p.owner!, me))) return {run, summary}
      const {byStatus} = summary
      const status: RunStatus = byStatus.done === summary.partitions.length ? 'completed' : byStatus.failed > 0 ? 'failed' : 'interrupted'
      const error = summary.partitions.find((p) => p.error)?.error ?? null
      const ended: RunRecord = {...run, ...sumProgress(summary.partitions), status, error, heartbeatAt: at, finishedAt: at}
      tx.set(this.runRef(runId), stored(ended))
      for (const d of partSnap.docs) if (d.get('status') === 'running') tx.update(d.ref, {status: 'interrupted', leaseId: null})
      if (lock.get('runId') === runId) tx.delete(this.lockRef(collection))
      return {run: ended, summary}
    })
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    const snap = await this.runRef(runId).get()
    return snap.exists ? parseRun(snap.data()) : undefined
  }

  /** Newest first. */
  async list(collection: string, limit = 20): Promise<RunRecord[]> {
    const snap = await this.runs().where('collection', '==', collection).get()
    return snap.docs
      .map((d) => parseRun(d.data()))
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      .slice(0, limit)
  }

  async errors(runId: string, limit = 100): Promise<{total: number; items: ErrorRecord[]}> {
    const col = this.runRef(runId).collection(ERRORS)
    const [count, snap] = await Promise.all([col.count().get(), col.orderBy('at', 'desc').limit(limit).get()])
    return {total: count.data().count, items: snap.docs.map((d) => ErrorRecordSchema.parse(d.data()))}
  }
}

const newMember = (owner: Owner, req: Pick<AcquireRequest, 'workers' | 'staleAfterMs'>) =>
  stored(MemberRecordSchema.parse({owner, workers: req.workers ?? 1, heartbeatAt: null, staleAfterMs: req.staleAfterMs, leftAt: null}))

/** Who made a control change: user@host. */
export const byWhom = (owner: Owner) => `${owner.user}@${owner.host}`

export const lastChange = (c: Control): string => {
  const last = c.changes[c.changes.length - 1]
  return last ? `${last.action} by ${last.by}${last.reason ? `: ${last.reason}` : ''}` : c.state
}

/** A new run's control: what the command gives, the ramp counting from now (Firestore's time). */
function newControl(req: ControlRequest | undefined, owner: Owner, now: Date): Control {
  const maxRate = req?.maxRate ?? null
  return ControlSchema.parse({
    maxRate,
    targetLatencyMs: req?.targetLatencyMs ?? null,
    windows: req?.windows ?? [],
    timezone: req?.timezone ?? null,
    rampStartedAt: now,
    seq: 0,
    changes: [{seq: 0, action: 'start', by: byWhom(owner), at: now, reason: null, maxRate}],
  })
}

/**
 * A run resumed with no process of it alive: a stop is done with (the run ended
 * interrupted), a pause holds (an operator paused it on purpose), what the command gives
 * explicitly replaces the run's (a --max-rate only when it is not the one the run started
 * with: a throttle since stands), and the ramp starts again.
 */
function resumedControl(c: Control, req: ControlRequest | undefined, owner: Owner, now: Date): Control {
  const next: Control = {
    ...c,
    state: c.state === 'stopping' ? 'running' : c.state,
    targetLatencyMs: req?.targetLatencyMs ?? c.targetLatencyMs,
    windows: req?.windows?.length ? req.windows : c.windows,
    timezone: req?.windows?.length ? (req.timezone ?? c.timezone) : c.timezone,
    rampStartedAt: now,
  }
  const changes: ControlChange[] = []
  if (c.state === 'stopping') changes.push({seq: c.seq + 1, action: 'resume', by: byWhom(owner), at: now, reason: 're-run of the command after a stop'})
  // The printed resume command repeats the starter's --max-rate: that must not undo an operator's throttle. Another value was typed on purpose.
  const startedWith = c.changes.find((ch) => ch.action === 'start')?.maxRate
  if (req?.maxRate !== undefined && req.maxRate !== c.maxRate && req.maxRate !== startedWith) {
    next.maxRate = req.maxRate
    changes.push({seq: c.seq + changes.length + 1, action: 'throttle', by: byWhom(owner), at: now, reason: 'max rate of the re-run command', maxRate: req.maxRate})
  }
  next.seq = c.seq + changes.length
  next.changes = [...c.changes, ...changes].slice(-MAX_CHANGES)
  return next
}

export function parseRun(data: unknown): RunRecord {
  return RunRecordSchema.parse(data)
}
