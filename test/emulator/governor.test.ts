/**
 * A process's governor against the real emulator's ledger: its share of the run-wide cap and
 * of the shared ramp follows the live processes' records (joining, leaving), and the ramp
 * counts from the run's ramp start on Firestore's clock, not from the process's own start.
 */
import {FieldValue, Firestore, Timestamp} from 'firebase-admin/firestore'
import {RunGovernor} from '../../src/engine/governor'
import {AcquireRequest, Lease, Ledger, RunRecord} from '../../src/engine/ledger'
import {currentOwner} from '../../src/engine/lease'
import {testDb, uniqueProject, waitFor} from '../support/harness'

const LEDGER = '_backfill_runs'

async function newRun(db: Firestore, maxRate: number): Promise<{ledger: Ledger; run: RunRecord; lease: Lease}> {
  const ledger = new Ledger(db, LEDGER)
  const acquired = await ledger.acquire(request(maxRate))
  return {ledger, run: acquired!.run, lease: acquired!.lease!}
}

function request(maxRate: number | undefined): AcquireRequest {
  return {
    kind: 'backfill',
    environment: 'production',
    projectId: 'p',
    collection: 'wardrobe_items',
    version: '1',
    resumeKey: 'k',
    options: {},
    fromStart: false,
    staleAfterMs: 60_000,
    total: 0,
    control: {maxRate},
  }
}

/** Another process of the run, as its own governor records it: alive, with `workers`. */
async function otherProcess(
  ledger: Ledger,
  runId: string,
  workers: number,
): Promise<FirebaseFirestore.DocumentReference> {
  const ref = ledger.membersOf(runId).doc('other-process')
  await ref.set({
    owner: {...currentOwner(), processId: 'other-process', pid: 1, host: 'pod-1'},
    workers,
    heartbeatAt: FieldValue.serverTimestamp(),
    staleAfterMs: 60_000,
    leftAt: null,
  })
  return ref
}

describe('a process’s share of the run-wide limit', () => {
  test('split by workers among the live processes, re-split when one joins and when it leaves; the ramp is shared and counts from the run’s start', async () => {
    const db = testDb(uniqueProject('governor'))
    const {ledger, run} = await newRun(db, 1000)
    // As on Firestore (not an emulator): the 500/50/5 ramp applies.
    const governor = new RunGovernor({ledger, run, emulator: false, workers: 1, staleAfterMs: 1000, pollMs: 100})
    governor.start()
    try {
      /** Waits for the governor's limit, showing it when it does not come. */
      const until = (predicate: () => boolean | Promise<boolean>) =>
        waitFor(predicate, 10_000).catch((err) => {
          throw new Error(`${err.message}: limit ${JSON.stringify(governor.limit())}`)
        })
      await until(() => governor.limit().reason === 'ramp' && governor.limit().perSecond === 500)
      const other = await otherProcess(ledger, run.runId, 3)
      // One worker of four: a quarter of the ramp's 500 (the cap's quarter, 250, is higher).
      await until(() => governor.limit().perSecond === 125)
      expect(governor.limit().reason).toBe('ramp')
      // Eleven minutes into the run (two 5-minute steps): 500 × 1.5² = 1125, a quarter is 281; the cap's quarter, 250, binds.
      await ledger
        .runRef(run.runId)
        .update({'control.rampStartedAt': Timestamp.fromMillis(governor.serverNow() - 11 * 60_000)})
      await until(() => governor.limit().reason === 'cap')
      expect(governor.limit().perSecond).toBe(250)
      await other.update({leftAt: new Date()})
      await until(() => governor.limit().perSecond === 1000)
      // The process record says what limits it.
      await until(
        async () =>
          (await ledger.members(run.runId)).find((m) => m.owner.processId === currentOwner().processId)?.reason ===
          'limit 1000/s (cap)',
      )
    } finally {
      await governor.close()
    }
  })
})

describe('the control a resumed run takes on', () => {
  test('a stop is done with; the resume command’s own --max-rate does not undo a throttle; another rate, typed on purpose, applies', async () => {
    const db = testDb(uniqueProject('resume-control'))
    const {ledger, run, lease} = await newRun(db, 60)
    await ledger.changeControl(run.runId, 'throttle', {by: 'ops@laptop', maxRate: 30})
    await ledger.changeControl(run.runId, 'stop', {by: 'ops@laptop', reason: 'drill'})
    const interrupt = async (l: Lease) =>
      ledger.finish(l, run.runId, 'wardrobe_items', {
        status: 'interrupted',
        cursor: null,
        counters: {scanned: 0, updated: 0, skipped: 0, failed: 0, conflicts: 0},
        unmapped: {},
        tags: {},
      })
    await interrupt(lease)

    const again = (await ledger.acquire(request(60)))!
    expect(again.run.runId).toBe(run.runId)
    expect(again.run.control).toMatchObject({state: 'running', maxRate: 30})
    expect(again.run.control.changes.map((c) => c.action)).toEqual(['start', 'throttle', 'stop', 'resume'])
    await interrupt(again.lease!)

    const faster = (await ledger.acquire(request(90)))!
    expect(faster.run.control.maxRate).toBe(90)
    expect(faster.run.control.changes.at(-1)).toMatchObject({action: 'throttle', maxRate: 90})
  })
})
