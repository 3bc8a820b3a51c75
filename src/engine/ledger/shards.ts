/** A sharded run's processes (records and heartbeats), partition claims, and how the last process leaving ends the run. */
import {DocumentSnapshot, FieldValue} from 'firebase-admin/firestore'
import {runTransaction} from '../../firestore/transaction'
import {currentOwner, Fence, holderGone, isMe, Owner} from '../lease'
import {
  endedByThisCall,
  liveMembers,
  MemberRecord,
  MemberRecordSchema,
  memberRecords,
  parseRun,
  PartitionRecord,
  PartitionRecordSchema,
  partitionRecords,
  PartitionSummary,
  RunEndedError,
  RunRecord,
  RunStatus,
  serverNow,
  stored,
  summarize,
  sumProgress,
} from './records'
import {LedgerStore, newLeaseId, PartitionLease} from './store'

export const newMember = (owner: Owner, req: {workers?: number; staleAfterMs: number}) =>
  stored(
    MemberRecordSchema.parse({
      owner,
      workers: req.workers ?? 1,
      heartbeatAt: null,
      staleAfterMs: req.staleAfterMs,
      leftAt: null,
    }),
  )

/** A process of a run says it is alive (a sharded run's workers may all be waiting), and what control it applies. */
export async function memberHeartbeat(
  ledger: LedgerStore,
  runId: string,
  report: Partial<Pick<MemberRecord, 'seenSeq' | 'state' | 'limit' | 'reason' | 'rate' | 'leftAt'>> = {},
): Promise<void> {
  await ledger
    .membersOf(runId)
    .doc(currentOwner().processId)
    .set({...report, heartbeatAt: FieldValue.serverTimestamp()}, {merge: true})
}

/** The run is no longer running, or no longer holds the collection's lock (taken over). */
const runEnded = (run: RunRecord, lock: DocumentSnapshot): boolean =>
  run.status !== 'running' || lock.get('runId') !== run.runId

/**
 * Claims a partition of a sharded run for this process: a pending or interrupted one, or
 * one whose lease is gone (stale heartbeat by Firestore's clock, or a dead process in this
 * pid namespace), looking from `prefer` on so that workers spread out. Null when there is
 * none to claim now. Throws RunEndedError once the run is no longer running or no longer
 * holds the collection's lock.
 */
export async function claim(
  ledger: LedgerStore,
  run: Pick<RunRecord, 'runId' | 'collection'>,
  prefer: number,
  staleAfterMs: number,
): Promise<{lease: PartitionLease | null; summary: PartitionSummary}> {
  const {runId} = run
  const me = currentOwner()
  const leaseId = newLeaseId()
  const granted = Fence.now()
  const claimed = await runTransaction(ledger.db, async (tx) => {
    const [runSnap, lock, partSnap] = await Promise.all([
      tx.get(ledger.runRef(runId)),
      tx.get(ledger.lockRef(run.collection)),
      tx.get(ledger.partitionsOf(runId).orderBy('index')),
    ])
    const record = parseRun(runSnap.data())
    if (runEnded(record, lock)) throw new RunEndedError(record)
    const partitions = partitionRecords(partSnap)
    const now = serverNow(partSnap)
    const n = partitions.length
    for (let i = 0; i < n; i++) {
      const p = partitions[(prefer + i) % n]
      // This very claim, committed unseen and retried by the client.
      if (p.status === 'running' && p.leaseId === leaseId) return {index: p.index, partitions, now}
      const orphan =
        p.status === 'running' && p.owner !== null && isMe(p.owner, me) && !ledger.working.has(p.leaseId ?? '')
      const gone = orphan
        ? 'claimed by this process but worked by none of its workers (a retried claim)'
        : p.status === 'running'
          ? holderGone(p, staleAfterMs, now, me)
          : null
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
      tx.set(ledger.partitionRef(runId, p.index), stored(next))
      tx.set(ledger.runRef(runId), {heartbeatAt: FieldValue.serverTimestamp()}, {merge: true})
      partitions[(prefer + i) % n] = next
      return {index: p.index, partitions, now}
    }
    return {index: null, partitions, now}
  })
  const summary = summarize(claimed.partitions, staleAfterMs, claimed.now, me)
  if (claimed.index === null) return {lease: null, summary}
  const snap = await ledger.partitionRef(runId, claimed.index).get()
  const partition = PartitionRecordSchema.parse(snap.data())
  if (partition.leaseId !== leaseId) return {lease: null, summary}
  ledger.working.add(leaseId)
  return {
    lease: {
      ...ledger.lease(snap, leaseId, `partition ${claimed.index} of run ${runId}`, staleAfterMs, granted),
      partition,
    },
    summary,
  }
}

/**
 * This process leaves a sharded run. The run ends only when no other process of it is
 * alive (waiting ones included) and no lease on it is live: completed when every
 * partition is done, otherwise failed or interrupted; its counters become the
 * partitions' sum, any lease left on it is revoked, and the lock is released. Returns the
 * run as this call leaves it (still running while other processes go on), and `foundEnded`:
 * the run had ended, or been taken over, before this process left (what a claim throws
 * RunEndedError for).
 */
export async function finishSharded(
  ledger: LedgerStore,
  runId: string,
  collection: string,
  staleAfterMs: number,
): Promise<{run: RunRecord; summary: PartitionSummary; foundEnded: boolean}> {
  const me = currentOwner()
  const at = new Date()
  return runTransaction(ledger.db, async (tx) => {
    const [runSnap, partSnap, memberSnap, lock] = await Promise.all([
      tx.get(ledger.runRef(runId)),
      tx.get(ledger.partitionsOf(runId).orderBy('index')),
      tx.get(ledger.membersOf(runId)),
      tx.get(ledger.lockRef(collection)),
    ])
    const run = parseRun(runSnap.data())
    const now = serverNow(runSnap)
    const summary = summarize(partitionRecords(partSnap), staleAfterMs, now, me)
    const others = liveMembers(memberRecords(memberSnap), staleAfterMs, now, me).filter((m) => !isMe(m.owner, me))
    tx.set(ledger.membersOf(runId).doc(me.processId), {leftAt: at}, {merge: true})
    const foundEnded = runEnded(run, lock) && !endedByThisCall(run, at)
    if (run.status !== 'running' || others.length > 0 || summary.live.some((p) => !isMe(p.owner!, me)))
      return {run, summary, foundEnded}
    const {byStatus} = summary
    const status: RunStatus =
      byStatus.done === summary.partitions.length ? 'completed' : byStatus.failed > 0 ? 'failed' : 'interrupted'
    const error = summary.partitions.find((p) => p.error)?.error ?? null
    const ended: RunRecord = {
      ...run,
      ...sumProgress(summary.partitions),
      status,
      error,
      heartbeatAt: at,
      finishedAt: at,
    }
    tx.set(ledger.runRef(runId), stored(ended))
    for (const d of partSnap.docs)
      if (d.get('status') === 'running') tx.update(d.ref, {status: 'interrupted', leaseId: null})
    if (lock.get('runId') === runId) tx.delete(ledger.lockRef(collection))
    return {run: ended, summary, foundEnded}
  })
}
