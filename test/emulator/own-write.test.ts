/**
 * The engine's own-write guard: after a precondition conflict, an item that already holds
 * exactly what the write sent counts as written (a retried write whose first attempt landed
 * unseen) and is not planned again. Without it a scoped rollback re-planned the item and
 * undid the next step too. The "landed first attempt" is made real here: the lease check the
 * writer does before sending is where the test puts the item in that state.
 */
import {performance} from 'node:perf_hooks'
import {Firestore} from 'firebase-admin/firestore'
import {runJob} from '../../src/engine/job'
import {Fence} from '../../src/engine/lease'
import {zeroCounters} from '../../src/engine/ledger'
import {planRollback} from '../../src/services/rollback'
import {GuardedWriter} from '../../src/engine/writer'
import {testDb, uniqueProject} from '../support/harness'

const COL = 'wardrobe_items'
const OLDER = {
  style: ['casual'],
  occasion: [],
  mood: [],
  season: [],
  normalized_version: '1.0',
  source_hash: 'h',
  run_id: 'backfill-20260101T000000-aaaaaa',
}
const NEWER = {...OLDER, style: ['formal'], run_id: 'backfill-20260102T000000-bbbbbb', previous: OLDER}

/** A lease that must be confirmed before the first write leaves; confirming it first runs `meanwhile`. */
function fenceRunning(meanwhile: () => Promise<unknown>): Fence {
  let ran = false
  const expired = {mono: performance.now() - 120_000, wall: Date.now() - 120_000}
  const fence: Fence = new Fence(
    60_000,
    async () => {
      if (!ran) {
        ran = true
        await meanwhile()
      }
      fence.confirm(Fence.now())
    },
    expired,
  )
  return fence
}

async function rollbackOneStep(db: Firestore, fence: Fence) {
  const writer = new GuardedWriter(db, {emulator: true, fence})
  try {
    return await runJob({
      db,
      target: {collection: COL, group: false},
      select: ['normalized'],
      // `rollback --version 1.0`: both values are in scope, one step per item.
      plan: (doc) => planRollback(doc.data() ?? {}, {owns: () => true, undoes: (v) => v.normalized_version === '1.0'}),
      dryRun: false,
      store: {
        saved: {cursor: null, counters: zeroCounters(), unmapped: {}, tags: {}},
        save: async () => {},
        heartbeat: async () => {},
        errorRef: (key) => db.collection('_errors').doc(key),
      },
      writer,
      total: 1,
    })
  } finally {
    await writer.close()
  }
}

test('a rollback write whose first attempt landed unseen undoes exactly one step', async () => {
  const db = testDb(uniqueProject('ownwrite'))
  const ref = db.collection(COL).doc('item-1')
  await ref.set({name: 'shirt', normalized: NEWER})
  // Between the read and the write, the item comes to hold exactly what the rollback sends: the older value.
  const result = await rollbackOneStep(
    db,
    fenceRunning(() => ref.update({normalized: OLDER})),
  )
  expect((await ref.get()).get('normalized')).toEqual(OLDER)
  expect(result.counters).toMatchObject({scanned: 1, updated: 1, conflicts: 0})
  expect(result.tags).toEqual({restored: 1})
})

test('a real change by the app between read and write is planned again', async () => {
  const db = testDb(uniqueProject('ownwrite'))
  const ref = db.collection(COL).doc('item-1')
  await ref.set({name: 'shirt', normalized: NEWER})
  const appValue = {...NEWER, style: ['sporty']}
  const result = await rollbackOneStep(
    db,
    fenceRunning(() => ref.update({normalized: appValue})),
  )
  // Re-read and re-planned from the app's value: one step back from it.
  expect((await ref.get()).get('normalized')).toEqual(OLDER)
  expect(result.counters).toMatchObject({scanned: 1, updated: 1, conflicts: 1})
})
