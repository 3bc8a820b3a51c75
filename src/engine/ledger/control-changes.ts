/** Live control as the ledger records it: a new run's, a resumed run's, and an operator's change (`wardrobe runs pause|resume|stop|throttle`). */
import {Control, ControlAction, ControlChange, ControlSchema, MAX_CHANGES} from '../control'
import {Window} from '../../domain/windows'
import {UsageError} from '../../errors'
import {runTransaction} from '../../firestore/transaction'
import type {Owner} from '../lease'
import {MemberRecord, memberRecords, parseRun, RunRecord, serverNow} from './records'
import type {LedgerStore} from './store'

/** Control settings a command gives (undefined: not given). */
export interface ControlRequest {
  maxRate?: number
  targetLatencyMs?: number
  windows?: Window[]
  timezone?: string
}

/** Who made a control change: user@host. */
export const byWhom = (owner: Owner) => `${owner.user}@${owner.host}`

export const lastChange = (c: Control): string => {
  const last = c.changes[c.changes.length - 1]
  return last ? `${last.action} by ${last.by}${last.reason ? `: ${last.reason}` : ''}` : c.state
}

/** A new run's control: what the command gives, the ramp counting from now (Firestore's time). */
export function newControl(req: ControlRequest | undefined, owner: Owner, now: Date): Control {
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
export function resumedControl(c: Control, req: ControlRequest | undefined, owner: Owner, now: Date): Control {
  const next: Control = {
    ...c,
    state: c.state === 'stopping' ? 'running' : c.state,
    targetLatencyMs: req?.targetLatencyMs ?? c.targetLatencyMs,
    windows: req?.windows?.length ? req.windows : c.windows,
    timezone: req?.windows?.length ? (req.timezone ?? c.timezone) : c.timezone,
    rampStartedAt: now,
  }
  const changes: ControlChange[] = []
  if (c.state === 'stopping')
    changes.push({
      seq: c.seq + 1,
      action: 'resume',
      by: byWhom(owner),
      at: now,
      reason: 're-run of the command after a stop',
    })
  // The printed resume command repeats the starter's --max-rate: that must not undo an operator's throttle. Another value was typed on purpose.
  const startedWith = c.changes.find((ch) => ch.action === 'start')?.maxRate
  if (req?.maxRate !== undefined && req.maxRate !== c.maxRate && req.maxRate !== startedWith) {
    next.maxRate = req.maxRate
    changes.push({
      seq: c.seq + changes.length + 1,
      action: 'throttle',
      by: byWhom(owner),
      at: now,
      reason: 'max rate of the re-run command',
      maxRate: req.maxRate,
    })
  }
  next.seq = c.seq + changes.length
  next.changes = [...c.changes, ...changes].slice(-MAX_CHANGES)
  return next
}

/**
 * An operator's change to a run's control (`wardrobe runs pause|resume|stop|throttle`), in
 * a transaction on the run record: recorded with who, when and why, numbered so that each
 * process says which change it has applied. Refused (UsageError) where it means nothing:
 * stopping or changing an ended run, resuming one that is not paused.
 */
export async function changeControl(
  ledger: LedgerStore,
  runId: string,
  action: Exclude<ControlAction, 'start'>,
  change: {by: string; reason?: string | null; maxRate?: number | null},
): Promise<{run: RunRecord; changed: boolean; members: MemberRecord[]; now: number}> {
  return runTransaction(ledger.db, async (tx) => {
    const [snap, memberSnap] = await Promise.all([tx.get(ledger.runRef(runId)), tx.get(ledger.membersOf(runId))])
    if (!snap.exists)
      throw new UsageError(`no run ${runId} in ${ledger.collectionName}`, 'list runs with `wardrobe runs list`')
    const run = parseRun(snap.data())
    const members = memberRecords(memberSnap)
    const now = serverNow(snap)
    const unfinished = run.status === 'running' || run.status === 'interrupted' || run.status === 'failed'
    if (!unfinished || run.undoneBy !== null)
      throw new UsageError(
        `run ${runId} is ${run.undoneBy ? `undone by ${run.undoneBy}` : run.status}: there is nothing to ${action}`,
        'list runs with `wardrobe runs list`',
      )
    const c = run.control
    if (action === 'stop' && run.status !== 'running')
      throw new UsageError(
        `run ${runId} is ${run.status}: no process of it is running`,
        'it stays as it is until the command that started it is run again',
      )
    const next: Control = {...c}
    if (action === 'pause') next.state = c.state === 'stopping' ? 'stopping' : 'paused'
    if (action === 'resume') next.state = c.state === 'stopping' ? 'stopping' : 'running'
    if (action === 'stop') next.state = 'stopping'
    if (action === 'throttle') next.maxRate = change.maxRate ?? null
    const changed = next.state !== c.state || next.maxRate !== c.maxRate
    if (!changed) return {run, changed, members, now}
    const entry: ControlChange = {
      seq: c.seq + 1,
      action,
      by: change.by,
      at: new Date(now),
      reason: change.reason ?? null,
      ...(action === 'throttle' ? {maxRate: next.maxRate} : {}),
    }
    next.seq = entry.seq
    next.changes = [...c.changes, entry].slice(-MAX_CHANGES)
    // The record's update time changes: each holder's next conditional write re-reads it and finds its lease intact.
    tx.update(snap.ref, {control: next})
    return {run: {...run, control: next}, changed, members, now}
  })
}
