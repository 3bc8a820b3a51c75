import crypto from 'node:crypto'
import os from 'node:os'
import {DocumentReference, Firestore, Timestamp, Transaction} from 'firebase-admin/firestore'
import {z} from 'zod'
import {ExitCode, WardrobeError} from './errors'

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
})
export type RunRecord = z.infer<typeof RunRecordSchema>

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
}

export interface Acquired {
  run: RunRecord
  resumed: boolean
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

/** Why a running holder may be taken over, or null when it is alive. */
export function holderGone(run: RunRecord, staleAfterMs: number, now = Date.now(), me = currentOwner()): string | null {
  if (run.owner.host === me.host && run.owner.pid === me.pid) return null
  if (run.owner.host === me.host && !pidAlive(run.owner.pid)) return `its process ${run.owner.pid} is gone`
  const age = now - run.heartbeatAt.getTime()
  if (age > staleAfterMs) return `its heartbeat is ${Math.round(age / 1000)}s old`
  return null
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

  errorRef(runId: string, itemId: string): DocumentReference {
    return this.runRef(runId).collection('errors').doc(itemId)
  }

  private lockRef(collection: string): DocumentReference {
    return this.db.collection(`${this.collectionName}_locks`).doc(collection)
  }

  /**
   * Takes the collection's lock and returns the run to work on: the unfinished run of the
   * same command (resumed from its checkpoint) or a new one. A live holder is refused.
   */
  async acquire(req: AcquireRequest): Promise<Acquired> {
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
          const gone = holderGone(holder, req.staleAfterMs, Date.now(), me)
          if (!gone) throw new LockHeldError(holder)
          tookOverFrom = {runId: holder.runId, owner: holder.owner, reason: gone}
        }
      }
      const unfinished = await tx.get(
        this.runs().where('collection', '==', req.collection).where('kind', '==', req.kind).where('status', 'in', ['running', 'interrupted', 'failed']),
      )
      const candidates = unfinished.docs.map((d) => parseRun(d.data())).sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
      const now = new Date()
      const resumable = req.fromStart ? undefined : candidates.find((r) => r.resumeKey === req.resumeKey)
      for (const r of candidates) {
        if (r.runId === resumable?.runId) continue
        // A stale holder of another command is marked so, and --from-start leaves old runs behind on purpose.
        if (r.status === 'running') this.set(tx, r.runId, {status: 'interrupted', error: 'taken over by a new run', heartbeatAt: now})
        else if (req.fromStart && r.resumeKey === req.resumeKey) this.set(tx, r.runId, {status: 'superseded', finishedAt: now})
      }
      let run: RunRecord
      if (resumable) {
        run = {...resumable, owner: me, status: 'running', heartbeatAt: now, finishedAt: null, error: null, resumes: resumable.resumes + 1, total: req.total ?? resumable.total}
      } else {
        run = RunRecordSchema.parse({
          runId: newRunId(req.kind),
          kind: req.kind,
          environment: req.environment,
          projectId: req.projectId,
          collection: req.collection,
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
        })
      }
      tx.set(this.runRef(run.runId), run)
      tx.set(lockRef, {runId: run.runId, kind: run.kind, owner: me, acquiredAt: now})
      return {run, resumed: Boolean(resumable), tookOverFrom}
    })
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
