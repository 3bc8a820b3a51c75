/** A run's start, resume, join or takeover (the lock and the run record in one transaction), and a one-worker run's end. */
import crypto from 'node:crypto'
import {FieldValue} from 'firebase-admin/firestore'
import type {KeyRange} from '../checkpoint'
import {UsageError} from '../../errors'
import {runTransaction} from '../../firestore/transaction'
import {currentOwner, describeOwner, Fence, holderGone, LeaseLostError, Owner} from '../lease'
import {ControlRequest, lastChange, newControl, resumedControl} from './control-changes'
import {
  endedByThisCall,
  LockHeldError,
  memberRecords,
  parseRun,
  PartitionRecordSchema,
  partitionRecords,
  RunKind,
  RunRecord,
  RunRecordSchema,
  serverNow,
  shardedRunGone,
  stored,
  summarize,
  zeroCounters,
} from './records'
import {newMember} from './shards'
import {Lease, LedgerStore, newLeaseId, PARTITIONS, PROCESSES} from './store'
import {sameRun} from '../run-identity'

/** How long a run's final ledger write may take: during an outage it would otherwise wait on the client's own retries. */
export const FINISH_DEADLINE_MS = 15_000

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
  planHash?: string
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

function newRunId(kind: RunKind): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
  return `${kind}-${stamp}-${crypto.randomBytes(3).toString('hex')}`
}

/**
 * Takes the collection's lock and returns the run to work on: the unfinished run of the
 * same command (resumed from its checkpoint) or a new one. A live holder is refused,
 * unless it is a sharded run of the same command: then this process joins it. A holder
 * that is gone (any kind) is marked interrupted and its leases revoked.
 */
export async function acquire(ledger: LedgerStore, req: AcquireRequest): Promise<Acquired | null> {
  const me = currentOwner()
  const leaseId = newLeaseId()
  const granted = Fence.now()
  const acquired = await runTransaction(ledger.db, async (tx): Promise<Omit<Acquired, 'lease'> | null> => {
    const lockRef = ledger.lockRef(req.collection)
    const lock = await tx.get(lockRef)
    const now = serverNow(lock)
    let tookOverFrom: Acquired['tookOverFrom']
    let revoke: ((patch: Record<string, unknown>) => void) | undefined
    if (lock.exists) {
      const {ref: holderRef, run: holder} = await ledger.lockHolder(tx, lock)
      if (holder && holder.status === 'running') {
        // Our own acquisition, committed unseen and retried by the client: it is ours already.
        if (holder.leaseId !== null && holder.leaseId === leaseId)
          return {run: holder, resumed: holder.resumes > 0, joined: false}
        const sameLedger = holderRef.parent.id === ledger.collectionName
        const sameCommand = sameLedger && sameRun(holder, req) && (req.join === undefined || req.join === holder.runId)
        const running =
          holder.partitions > 0 ? await tx.get(holderRef.collection(PARTITIONS).where('status', '==', 'running')) : null
        const members = holder.partitions > 0 ? memberRecords(await tx.get(holderRef.collection(PROCESSES))) : undefined
        const gone =
          running !== null
            ? shardedRunGone(
                holder,
                summarize(partitionRecords(running), req.staleAfterMs, now, me),
                req.staleAfterMs,
                now,
                members,
              )
            : holderGone(holder, req.staleAfterMs, now, me)
        // Workers join a live sharded run; leases, not the lock, decide who works on what. A dead one is resumed below.
        if (holder.partitions > 0 && sameCommand && !req.fromStart && !gone) {
          if (holder.control.state === 'stopping')
            throw new UsageError(
              `run ${holder.runId} is being stopped (${lastChange(holder.control)})`,
              're-run the command once its processes have exited: it then resumes the run',
            )
          tx.set(ledger.membersOf(holder.runId).doc(me.processId), newMember(me, req))
          return {run: holder, resumed: true, joined: true}
        }
        if (!gone) throw new LockHeldError(holder, now - holder.heartbeatAt.getTime())
        tookOverFrom = {runId: holder.runId, owner: holder.owner, reason: gone}
        // The old holder learns it on its next write (its lease token is gone) and stops. --from-start leaves it behind for good.
        const status = req.fromStart && sameCommand ? 'superseded' : 'interrupted'
        revoke = (patch) => {
          tx.set(
            holderRef,
            {
              status,
              leaseId: null,
              error: `taken over by ${req.kind} (${describeOwner(me)}): ${gone}`,
              finishedAt: new Date(),
              ...patch,
            },
            {merge: true},
          )
          for (const d of running?.docs ?? []) tx.update(d.ref, {status: 'interrupted', leaseId: null})
        }
      }
    }
    // A rollback marks the unfinished backfill runs it undoes: resuming one from its checkpoint would skip the items undone before it.
    const undone = req.undoes
      ? (
          await tx.get(
            ledger
              .runs()
              .where('collection', '==', req.collection)
              .where('kind', '==', 'backfill')
              .where('status', 'in', ['running', 'interrupted', 'failed']),
          )
        ).docs
          .map((d) => parseRun(d.data()))
          .filter((r) => req.undoes!.runIds === null || req.undoes!.runIds.includes(r.runId))
      : []
    const unfinished = await tx.get(
      ledger
        .runs()
        .where('collection', '==', req.collection)
        .where('kind', '==', req.kind)
        .where('status', 'in', ['running', 'interrupted', 'failed']),
    )
    const candidates = unfinished.docs
      .map((d) => parseRun(d.data()))
      .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())
    const at = new Date()
    const resumable = req.fromStart
      ? undefined
      : candidates.find((r) => r.undoneBy === null && (req.join === undefined ? sameRun(r, req) : r.runId === req.join))
    if (req.join !== undefined && !resumable) {
      throw new UsageError(
        `run ${req.join} is not an unfinished ${req.kind} run of ${req.collection}`,
        `list runs with \`wardrobe monitor\`; drop --join to start or resume the run of this command`,
      )
    }
    if (resumable && !sameRun(resumable, req)) {
      throw new UsageError(
        `run ${resumable.runId} was started with other options (${resumable.resumeKey})`,
        'pass the same options as the run you join (taxonomy, --force, scope)',
      )
    }
    // Splitting the key space may take a scan: done outside the transaction, then acquire again.
    if (!resumable && req.sharded && !req.partitions) return null
    // Reads first (a transaction's rule), then every write.
    const stopped =
      resumable && resumable.partitions > 0
        ? await tx.get(ledger.partitionsOf(resumable.runId).where('status', 'in', ['failed', 'running']))
        : null
    const runId = resumable?.runId ?? newRunId(req.kind)
    const undoneBy = (id: string) => (undone.some((r) => r.runId === id) ? {undoneBy: runId} : {})
    // A holder resumed by this very acquisition is rewritten below instead.
    if (tookOverFrom && tookOverFrom.runId !== resumable?.runId) revoke?.(undoneBy(tookOverFrom.runId))
    for (const r of undone) if (r.runId !== tookOverFrom?.runId) ledger.set(tx, r.runId, {undoneBy: runId})
    for (const r of candidates) {
      if (r.runId === resumable?.runId || r.runId === tookOverFrom?.runId) continue
      // A running record here holds no lock (an older ledger's leftover): mark it so. --from-start, or a rollback since, leaves old runs behind for good.
      if (r.status === 'running')
        ledger.set(tx, r.runId, {status: 'interrupted', leaseId: null, error: 'taken over by a new run'})
      else if ((req.fromStart || r.undoneBy !== null) && sameRun(r, req))
        ledger.set(tx, r.runId, {status: 'superseded', finishedAt: at})
    }
    let run: RunRecord
    if (resumable) {
      run = {
        ...resumable,
        owner: me,
        status: 'running',
        heartbeatAt: at,
        finishedAt: null,
        error: null,
        resumes: resumable.resumes + 1,
        total: req.total ?? resumable.total,
        staleAfterMs: req.staleAfterMs,
        control: resumedControl(resumable.control, req.control, me, new Date(now)),
        command: resumable.command ?? req.command ?? null,
      }
      // A failed partition is worked again by the resumed run; a stale lease on one is revoked.
      for (const d of stopped?.docs ?? [])
        tx.update(d.ref, {status: d.get('status') === 'failed' ? 'pending' : 'interrupted', error: null, leaseId: null})
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
        planHash: req.planHash ?? null,
      })
      ranges.forEach((range, index) =>
        tx.set(
          ledger.partitionRef(run.runId, index),
          PartitionRecordSchema.parse({index, ...range, status: 'pending', counters: zeroCounters()}),
        ),
      )
    }
    run.leaseId = run.partitions > 0 ? null : leaseId
    tx.set(ledger.runRef(run.runId), stored(run))
    // Every process of a run has a process record: its liveness (sharded runs end by it) and the control it has applied.
    tx.set(ledger.membersOf(run.runId).doc(me.processId), newMember(me, req))
    tx.set(lockRef, {
      runId: run.runId,
      ledger: ledger.collectionName,
      kind: run.kind,
      leaseId: run.leaseId,
      owner: me,
      acquiredAt: at,
    })
    return {run, resumed: Boolean(resumable), joined: false, tookOverFrom}
  })
  if (!acquired) return null
  const {run} = acquired
  if (run.partitions > 0) return {...acquired, lease: null}
  // The update time of our acquisition: every later write to the record is conditional on the last one.
  const snap = await ledger.runRef(run.runId).get()
  const what = `run ${run.runId}`
  if (snap.get('leaseId') !== leaseId) throw new LeaseLostError(what)
  return {...acquired, lease: ledger.lease(snap, leaseId, what, req.staleAfterMs, granted)}
}

/**
 * Ends a one-worker run and releases the collection's lock, only while the lease is ours
 * (a successor may have resumed this very run): LeaseLostError otherwise, and nothing written.
 */
export async function finish(
  ledger: LedgerStore,
  lease: Lease,
  runId: string,
  collection: string,
  patch: Pick<RunRecord, 'status' | 'cursor' | 'counters' | 'unmapped' | 'tags'> & {error?: string | null},
): Promise<void> {
  const at = new Date()
  await runTransaction(ledger.db, async (tx) => {
    const [record, lock] = await Promise.all([tx.get(ledger.runRef(runId)), tx.get(ledger.lockRef(collection))])
    if (record.get('leaseId') !== lease.leaseId) {
      if (endedByThisCall(parseRun(record.data()), at)) return
      throw (
        lease.fence.lost ??
        new LeaseLostError(lease.what, (record.get('error') as string | null) ?? 'taken over by another process')
      )
    }
    const ended = patch.status !== 'running'
    tx.set(
      ledger.runRef(runId),
      {
        ...patch,
        error: patch.error ?? null,
        heartbeatAt: FieldValue.serverTimestamp(),
        finishedAt: ended ? at : null,
        leaseId: ended ? null : lease.leaseId,
      },
      {merge: true},
    )
    if (ended && lock.get('runId') === runId && lock.get('leaseId') === lease.leaseId)
      tx.delete(ledger.lockRef(collection))
  })
}
