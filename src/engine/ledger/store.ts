/**
 * Where the ledger's documents are, what reads them, and leases: every write of a holder is
 * conditional on still holding (a fence token and the record's update time).
 */
import crypto from 'node:crypto'
import {
  DocumentReference,
  DocumentSnapshot,
  FieldValue,
  Firestore,
  Timestamp,
  Transaction,
} from 'firebase-admin/firestore'
import type {Progress, ProgressStore} from '../checkpoint'
import {GrpcCode} from '../../errors'
import {LOCK_COLLECTION, RUN_SUBCOLLECTIONS} from '../../domain/ledger-layout'
import {Fence, LeaseLostError, trustMs} from '../lease'
import {
  ErrorRecord,
  ErrorRecordSchema,
  errorDocId,
  MemberRecord,
  memberRecords,
  parseRun,
  PartitionRecord,
  partitionRecords,
  RunRecord,
} from './records'

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

export const [ERRORS, PARTITIONS, PROCESSES] = RUN_SUBCOLLECTIONS

export const newLeaseId = () => crypto.randomBytes(8).toString('hex')

/** The ledger's documents and leases; the transactions that start, join and end runs build on it (runs.ts, shards.ts, control-changes.ts). */
export class LedgerStore {
  /** Partition leases this process's workers are on: one it holds but no worker works is an orphan of a retried claim. */
  readonly working = new Set<string>()

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

  lockRef(collection: string): DocumentReference {
    return this.db.collection(LOCK_COLLECTION).doc(collection)
  }

  /** The run a lock names, read from the ledger it names. */
  async lockHolder(
    tx: Transaction,
    lock: DocumentSnapshot,
  ): Promise<{ref: DocumentReference; run: RunRecord | undefined}> {
    const ref = this.db
      .collection((lock.get('ledger') as string | undefined) ?? this.collectionName)
      .doc(lock.get('runId') as string)
    const snap = await tx.get(ref)
    return {ref, run: snap.exists ? parseRun(snap.data()) : undefined}
  }

  lease(
    snap: DocumentSnapshot,
    leaseId: string,
    what: string,
    staleAfterMs: number,
    granted: ReturnType<typeof Fence.now>,
  ): Lease {
    const lease: Lease = {
      ref: snap.ref,
      leaseId,
      updateTime: snap.updateTime!,
      what,
      fence: undefined as unknown as Fence,
    }
    lease.fence = new Fence(trustMs(staleAfterMs), () => this.updateLeased(lease, {}), granted)
    return lease
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
      const result = await lease.ref.update(
        {...patch, heartbeatAt: FieldValue.serverTimestamp()},
        {lastUpdateTime: lease.updateTime},
      )
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

  /** The run holding the target's lock, if it is recorded in this ledger. */
  async activeRunId(collection: string): Promise<string | null> {
    const lock = await this.lockRef(collection).get()
    return lock.exists && (lock.get('ledger') ?? this.collectionName) === this.collectionName
      ? (lock.get('runId') as string)
      : null
  }

  set(tx: Transaction, runId: string, patch: Partial<RunRecord>): void {
    tx.set(this.runRef(runId), patch, {merge: true})
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
