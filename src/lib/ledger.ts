import crypto from 'node:crypto'
import os from 'node:os'
import {DocumentReference, Firestore, QuerySnapshot, Timestamp, Transaction} from 'firebase-admin/firestore'
import {z} from 'zod'
import {ExitCode, GrpcCode, UsageError, WardrobeError} from './errors'
import type {KeyRange, Progress} from './job'

/** How long a run's final ledger write may take: during an outage it would otherwise wait on the client's own retries. */
export const FINISH_DEADLINE_MS = 15_000

export const RUN_KINDS = ['backfill', 'rollback'] as const
export type RunKind = (typeof RUN_KINDS)[number]
export const RUN_STATUSES = ['running', 'completed', 'failed', 'interrupted', 'superseded'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

/** Firestore hands Timestamps back; records carry Dates. */
const date = z.preprocess((v) => (v instanceof Timestamp ? v.toDate() : v), z.date())

export const OwnerSchema = z.object({user: z.string(), host: z.string(), pid: z.number().int()})
export type Owner = z.infer<typeof OwnerSchema>

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
  /** Same command = same resume key: re-running it resumes this run. */
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
  claims: z.number().int().default(0),
  /** The last takeover: whose lease went stale, and the checkpoint the new owner went on from. */
  tookOverFrom: z.object({owner: OwnerSchema, cursor: z.string().nullable(), reason: z.string()}).nullable().default(null),
  error: z.string().nullable().default(null),
  finishedAt: date.nullable().default(null),
})
export type PartitionRecord = z.infer<typeof PartitionRecordSchema>

/** A partition claimed by this process: its record and the lease token its writes are guarded by. */
export interface Lease {
  partition: PartitionRecord
  leaseId: string
  /** The partition document's update time after our last write: every save is conditional on it. */
  updateTime: Timestamp
}

/** Partitions of a run by status, and whether another live worker still holds one. */
export interface PartitionSummary {
  partitions: PartitionRecord[]
  byStatus: Record<PartitionStatus, number>
  /** Running partitions whose lease is live (fresh heartbeat, process not known dead). */
  live: PartitionRecord[]
}

export class LeaseLostError extends Error {
  constructor(runId: string, index: number) {
    super(`partition ${index} of run ${runId} was taken over by another worker`)
    this.name = 'LeaseLostError'
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
}

export interface Acquired {
  run: RunRecord
  resumed: boolean
  /** This process joined a sharded run that other workers hold. */
  joined: boolean
  /** The holder whose stale or dead run was taken over, if any. */
  tookOverFrom?: {runId: string; owner: Owner; reason: string}
}

export class LockHeldError extends WardrobeError {
  constructor(readonly holder: RunRecord) {
    super(
      `${holder.kind} run ${holder.runId} already holds ${holder.collection}: ${describeOwner(holder.owner)}, heartbeat ${Math.round((Date.now() - holder.heartbeatAt.getTime()) / 1000)}s ago`,
      ExitCode.USAGE,
      'wait for it to finish, stop it (Ctrl-C in its terminal), or, if its process is gone, retry once its heartbeat is stale',
    )
    this.name = 'LockHeldError'
  }
}

export function describeOwner(owner: Owner): string {
  return `${owner.user}@${owner.host} pid ${owner.pid}`
}

export function currentOwner(): Owner {
  let user = 'unknown'
  try {
    user = os.userInfo().username
  } catch {
    /* no passwd entry in some containers */
  }
  return {user, host: os.hostname(), pid: process.pid}
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Why a running holder (a run, or a partition's lease) may be taken over, or null when it is alive. */
export function holderGone(holder: {owner: Owner | null; heartbeatAt: Date | null}, staleAfterMs: number, now = Date.now(), me = currentOwner()): string | null {
  const {owner} = holder
  if (!owner || !holder.heartbeatAt) return 'it has no owner'
  if (owner.host === me.host && owner.pid === me.pid) return null
  if (owner.host === me.host && !pidAlive(owner.pid)) return `its process ${owner.pid} is gone`
  const age = now - holder.heartbeatAt.getTime()
  if (age > staleAfterMs) return `its heartbeat is ${Math.round(age / 1000)}s old`
  return null
}

/** Why a sharded run may be taken over: every lease on it is gone (and the run record's heartbeat is stale). */
export function shardedRunGone(run: RunRecord, summary: PartitionSummary, staleAfterMs: number, now: number): string | null {
  if (summary.live.length > 0) return null
  const age = now - run.heartbeatAt.getTime()
  return age > staleAfterMs ? `none of its workers is alive (last claim ${Math.round(age / 1000)}s ago)` : null
}

export function summarize(partitions: PartitionRecord[], staleAfterMs: number, now = Date.now(), me = currentOwner()): PartitionSummary {
  const byStatus = Object.fromEntries(PARTITION_STATUSES.map((s) => [s, 0])) as Record<PartitionStatus, number>
  const live: PartitionRecord[] = []
  for (const p of partitions) {
    byStatus[p.status]++
    if (p.status === 'running' && holderGone(p, staleAfterMs, now, me) === null) live.push(p)
  }
  return {partitions, byStatus, live}
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

/** Error records are keyed by item; a path (collection group) is encoded to one document id. */
export function errorDocId(key: string): string {
  return key.includes('/') ? encodeURIComponent(key) : key
}

function newRunId(kind: RunKind): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
  return `${kind}-${stamp}-${crypto.randomBytes(3).toString('hex')}`
}

/**
 * The run ledger: one record per non-dry run, error items beneath it, and one lock
 * document per collection so that two writing runs never overlap.
 */
export class Ledger {
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
    return this.runRef(runId).collection('errors').doc(errorDocId(itemKey))
  }

  partitionsOf(runId: string) {
    return this.runRef(runId).collection('partitions')
  }

  partitionRef(runId: string, index: number): DocumentReference {
    return this.partitionsOf(runId).doc(`p${String(index).padStart(4, '0')}`)
  }

  async partitions(runId: string): Promise<PartitionRecord[]> {
    return partitionRecords(await this.partitionsOf(runId).orderBy('index').get())
  }

  private lockRef(collection: string): DocumentReference {
    return this.db.collection(`${this.collectionName}_locks`).doc(collection)
  }

  /**
   * Takes the collection's lock and returns the run to work on: the unfinished run of the
   * same command (resumed from its checkpoint) or a new one. A live holder is refused,
   * unless it is a sharded run of the same command: then this process joins it.
   */
  async acquire(req: AcquireRequest): Promise<Acquired | null> {
    const me = currentOwner()
    return this.db.runTransaction(async (tx) => {
      const lockRef = this.lockRef(req.collection)
      const lock = await tx.get(lockRef)
      let tookOverFrom: Acquired['tookOverFrom']
      let holder: RunRecord | undefined
      if (lock.exists) {
        const holderSnap = await tx.get(this.runRef(lock.get('runId') as string))
        holder = holderSnap.exists ? parseRun(holderSnap.data()) : undefined
        if (holder && holder.status === 'running') {
          const sameCommand = holder.kind === req.kind && holder.resumeKey === req.resumeKey && (req.join === undefined || req.join === holder.runId)
          // Workers join a sharded run; leases, not the lock, decide who works on what.
          if (holder.partitions > 0 && sameCommand && !req.fromStart) return {run: holder, resumed: true, joined: true}
          const now = Date.now()
          const running = async () => partitionRecords(await tx.get(this.partitionsOf(holder!.runId).where('status', '==', 'running')))
          const gone =
            holder.partitions > 0
              ? shardedRunGone(holder, summarize(await running(), req.staleAfterMs, now, me), req.staleAfterMs, now)
              : holderGone(holder, req.staleAfterMs, now, me)
          if (!gone) throw new LockHeldError(holder)
          tookOverFrom = {runId: holder.runId, owner: holder.owner, reason: gone}
        }
      }
      const unfinished = await tx.get(
        this.runs().where('collection', '==', req.collection).where('kind', '==', req.kind).where('status', 'in', ['running', 'interrupted', 'failed']),
      )
      const candidates = unfinished.docs.map((d) => parseRun(d.data())).sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      const now = new Date()
      const resumable = req.fromStart ? undefined : candidates.find((r) => (req.join === undefined ? r.resumeKey === req.resumeKey : r.runId === req.join))
      if (req.join !== undefined && !resumable) {
        throw new UsageError(`run ${req.join} is not an unfinished ${req.kind} run of ${req.collection}`, `list runs with \`wardrobe monitor\`; drop --join to start or resume the run of this command`)
      }
      if (resumable && resumable.resumeKey !== req.resumeKey) {
        throw new UsageError(`run ${resumable.runId} was started with other options (${resumable.resumeKey})`, 'pass the same options as the run you join (taxonomy, --force, scope)')
      }
      // Splitting the key space may take a scan: done outside the transaction, then acquire again.
      if (!resumable && req.sharded && !req.partitions) return null
      for (const r of candidates) {
        if (r.runId === resumable?.runId) continue
        // A stale holder of another command is marked so, and --from-start leaves old runs behind on purpose.
        if (r.status === 'running') this.set(tx, r.runId, {status: 'interrupted', error: 'taken over by a new run', heartbeatAt: now})
        else if (req.fromStart && r.resumeKey === req.resumeKey) this.set(tx, r.runId, {status: 'superseded', finishedAt: now})
      }
      let run: RunRecord
      if (resumable) {
        run = {...resumable, owner: me, status: 'running', heartbeatAt: now, finishedAt: null, error: null, resumes: resumable.resumes + 1, total: req.total ?? resumable.total}
        if (run.partitions > 0) {
          // A failed partition (an outage) is worked again by the resumed run.
          const failed = await tx.get(this.partitionsOf(run.runId).where('status', '==', 'failed'))
          for (const d of failed.docs) tx.update(d.ref, {status: 'pending', error: null, leaseId: null})
        }
      } else {
        const ranges = req.partitions ?? []
        run = RunRecordSchema.parse({
          runId: newRunId(req.kind),
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
          startedAt: now,
          heartbeatAt: now,
          partitions: ranges.length,
        })
        ranges.forEach((range, index) =>
          tx.set(this.partitionRef(run.runId, index), PartitionRecordSchema.parse({index, ...range, status: 'pending', counters: zeroCounters()})),
        )
      }
      tx.set(this.runRef(run.runId), run)
      tx.set(lockRef, {runId: run.runId, kind: run.kind, owner: me, acquiredAt: now})
      return {run, resumed: Boolean(resumable), joined: false, tookOverFrom}
    })
  }

  /**
   * Claims a partition of a sharded run for this process: a pending or interrupted one, or
   * one whose lease is gone (stale heartbeat, or a dead process on this host), looking from
   * `prefer` on so that workers spread out. Null when there is none to claim now.
   */
  async claim(runId: string, prefer: number, staleAfterMs: number): Promise<{lease: Lease | null; summary: PartitionSummary}> {
    const me = currentOwner()
    const leaseId = crypto.randomBytes(6).toString('hex')
    const claimed = await this.db.runTransaction(async (tx) => {
      const partitions = partitionRecords(await tx.get(this.partitionsOf(runId).orderBy('index')))
      const now = Date.now()
      const n = partitions.length
      for (let i = 0; i < n; i++) {
        const p = partitions[(prefer + i) % n]
        const gone = p.status === 'running' ? holderGone(p, staleAfterMs, now, me) : null
        if (!(p.status === 'pending' || p.status === 'interrupted' || gone)) continue
        const at = new Date(now)
        const next: PartitionRecord = {
          ...p,
          status: 'running',
          owner: me,
          leaseId,
          heartbeatAt: at,
          claims: p.claims + 1,
          error: null,
          tookOverFrom: gone && p.owner ? {owner: p.owner, cursor: p.cursor, reason: gone} : p.tookOverFrom,
        }
        tx.set(this.partitionRef(runId, p.index), next)
        tx.set(this.runRef(runId), {heartbeatAt: at}, {merge: true})
        partitions[(prefer + i) % n] = next
        return {index: p.index, partitions}
      }
      return {index: null, partitions}
    })
    const summary = summarize(claimed.partitions, staleAfterMs, Date.now(), me)
    if (claimed.index === null) return {lease: null, summary}
    // The update time of our claim: every later write to the partition is conditional on the last one.
    const snap = await this.partitionRef(runId, claimed.index).get()
    const partition = PartitionRecordSchema.parse(snap.data())
    if (partition.leaseId !== leaseId) return {lease: null, summary}
    return {lease: {partition, leaseId, updateTime: snap.updateTime!}, summary}
  }

  /** Writes to a leased partition, only while the lease is still ours. */
  async updateLeased(runId: string, lease: Lease, patch: Record<string, unknown>): Promise<void> {
    const ref = this.partitionRef(runId, lease.partition.index)
    try {
      const result = await ref.update({...patch, heartbeatAt: new Date()}, {lastUpdateTime: lease.updateTime})
      lease.updateTime = result.writeTime
    } catch (err) {
      if ((err as {code?: number}).code !== GrpcCode.FAILED_PRECONDITION) throw err
      // Our own earlier write may have landed unseen (a retried RPC): the lease is then still ours.
      const snap = await ref.get()
      if (snap.get('leaseId') !== lease.leaseId) throw new LeaseLostError(runId, lease.partition.index)
      lease.updateTime = snap.updateTime!
      await this.updateLeased(runId, lease, patch)
    }
  }

  async summary(runId: string, staleAfterMs: number): Promise<PartitionSummary> {
    return summarize(await this.partitions(runId), staleAfterMs)
  }

  private set(tx: Transaction, runId: string, patch: Partial<RunRecord>): void {
    tx.set(this.runRef(runId), patch, {merge: true})
  }

  /** Saves progress; the caller guarantees every item up to `cursor` is acknowledged. */
  async checkpoint(runId: string, patch: Pick<RunRecord, 'cursor' | 'counters' | 'unmapped' | 'tags'>): Promise<void> {
    await this.runRef(runId).set({...patch, heartbeatAt: new Date()}, {merge: true})
  }

  async heartbeat(runId: string): Promise<void> {
    await this.runRef(runId).set({heartbeatAt: new Date()}, {merge: true})
  }

  /** Ends the run and releases the collection's lock if this run still holds it. */
  async finish(runId: string, collection: string, patch: Pick<RunRecord, 'status' | 'cursor' | 'counters' | 'unmapped' | 'tags'> & {error?: string | null}): Promise<void> {
    const now = new Date()
    await this.db.runTransaction(async (tx) => {
      const lock = await tx.get(this.lockRef(collection))
      tx.set(this.runRef(runId), {...patch, error: patch.error ?? null, heartbeatAt: now, finishedAt: patch.status === 'running' ? null : now}, {merge: true})
      if (lock.exists && lock.get('runId') === runId) tx.delete(this.lockRef(collection))
    })
  }

  /**
   * Ends a sharded run once no live worker holds a partition: completed when every partition
   * is done, otherwise failed or interrupted. Its counters become the partitions' sum. Returns
   * the run as this call leaves it (still running while other workers go on).
   */
  async finishSharded(runId: string, collection: string, staleAfterMs: number): Promise<{run: RunRecord; summary: PartitionSummary}> {
    const me = currentOwner()
    return this.db.runTransaction(async (tx) => {
      const [runSnap, partSnap, lock] = await Promise.all([tx.get(this.runRef(runId)), tx.get(this.partitionsOf(runId).orderBy('index')), tx.get(this.lockRef(collection))])
      const run = parseRun(runSnap.data())
      const summary = summarize(partitionRecords(partSnap), staleAfterMs, Date.now(), me)
      if (run.status !== 'running' || summary.live.length > 0) return {run, summary}
      const {byStatus} = summary
      const status: RunStatus = byStatus.done === summary.partitions.length ? 'completed' : byStatus.failed > 0 ? 'failed' : 'interrupted'
      const error = summary.partitions.find((p) => p.error)?.error ?? null
      const now = new Date()
      const ended: RunRecord = {...run, ...sumProgress(summary.partitions), status, error, heartbeatAt: now, finishedAt: now}
      tx.set(this.runRef(runId), ended)
      if (lock.exists && lock.get('runId') === runId) tx.delete(this.lockRef(collection))
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
    const col = this.runRef(runId).collection('errors')
    const [count, snap] = await Promise.all([col.count().get(), col.orderBy('at', 'desc').limit(limit).get()])
    return {total: count.data().count, items: snap.docs.map((d) => ErrorRecordSchema.parse(d.data()))}
  }
}

export function parseRun(data: unknown): RunRecord {
  return RunRecordSchema.parse(data)
}
