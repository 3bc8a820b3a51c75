/**
 * The run ledger's public face: the Ledger (documents, leases and the transactions on them)
 * and the records it keeps. By concern: records.ts (schemas), store.ts (documents, reads,
 * leases), runs.ts (start, resume, join, takeover, finish), shards.ts (processes, claims,
 * a sharded run's end), control-changes.ts (live control as recorded).
 */
import type {ControlAction} from '../control'
import {changeControl} from './control-changes'
import {acquire, AcquireRequest, Acquired, finish} from './runs'
import {claim, finishSharded, memberHeartbeat} from './shards'
import {Lease, LedgerStore, PartitionLease} from './store'
import type {MemberRecord, PartitionSummary, RunRecord} from './records'

export {currentOwner, describeOwner, holderGone, LeaseLostError, OwnerSchema} from '../lease'
export type {Owner} from '../lease'
export * from './records'
export {byWhom, lastChange} from './control-changes'
export type {ControlRequest} from './control-changes'
export {FINISH_DEADLINE_MS} from './runs'
export type {AcquireRequest, Acquired} from './runs'
export type {Lease, PartitionLease} from './store'

/**
 * The run ledger: one record per non-dry run, error items beneath it, and one lock
 * document per collection so that two writing runs never overlap.
 *
 * Leases (see lease.ts): staleness is judged on Firestore's clock only (server-timestamped
 * heartbeats against a transaction's read time); every write of a holder is conditional on
 * still holding (a fence token and the record's update time); whoever takes a run over or
 * ends it revokes every lease on it in the same transaction.
 */
export class Ledger extends LedgerStore {
  acquire(req: AcquireRequest): Promise<Acquired | null> {
    return acquire(this, req)
  }

  claim(
    run: Pick<RunRecord, 'runId' | 'collection'>,
    prefer: number,
    staleAfterMs: number,
  ): Promise<{lease: PartitionLease | null; summary: PartitionSummary}> {
    return claim(this, run, prefer, staleAfterMs)
  }

  memberHeartbeat(
    runId: string,
    report?: Partial<Pick<MemberRecord, 'seenSeq' | 'state' | 'limit' | 'reason' | 'rate' | 'leftAt'>>,
  ): Promise<void> {
    return memberHeartbeat(this, runId, report)
  }

  changeControl(
    runId: string,
    action: Exclude<ControlAction, 'start'>,
    change: {by: string; reason?: string | null; maxRate?: number | null},
  ): Promise<{run: RunRecord; changed: boolean; members: MemberRecord[]; now: number}> {
    return changeControl(this, runId, action, change)
  }

  finish(lease: Lease, runId: string, collection: string, patch: Parameters<typeof finish>[4]): Promise<void> {
    return finish(this, lease, runId, collection, patch)
  }

  finishSharded(
    runId: string,
    collection: string,
    staleAfterMs: number,
  ): Promise<{run: RunRecord; summary: PartitionSummary; foundEnded: boolean}> {
    return finishSharded(this, runId, collection, staleAfterMs)
  }
}
