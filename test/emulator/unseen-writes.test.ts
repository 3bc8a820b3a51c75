/**
 * A ledger transaction whose commit the server applied but whose answer was lost (DEADLINE_EXCEEDED
 * after the write, as the service answers under load): the client runs the transaction again,
 * and it then finds its own write. The run's start, a partition's claim and the run's end must
 * each recognise themselves there, not take their own write for another process's.
 */
import * as grpc from '@grpc/grpc-js'
import {Firestore} from 'firebase-admin/firestore'
import {AcquireRequest, Ledger, zeroCounters} from '../../src/engine/ledger'
import {emulatorHost, testDb, uniqueProject} from '../support/harness'
import {GrpcFaultProxy, throughProxy} from '../support/grpc-proxy'

const COL = 'wardrobe_items'
const LEDGER = '_backfill_runs'

let proxy: GrpcFaultProxy
let via: string

beforeAll(async () => {
  proxy = new GrpcFaultProxy(emulatorHost())
  via = await proxy.listen()
})
afterAll(() => proxy.close())

/** The next commit is applied, and its answer is DEADLINE_EXCEEDED. */
function loseNextCommitAnswer(): number {
  proxy.set('Commit', {fail: {code: grpc.status.DEADLINE_EXCEEDED, applied: true}, times: 1})
  return proxy.stats.Commit.failed
}

function request(projectId: string, extra: Partial<AcquireRequest> = {}): AcquireRequest {
  return {
    kind: 'backfill',
    environment: 'development',
    projectId,
    collection: COL,
    version: '1',
    resumeKey: 'unseen',
    options: {},
    fromStart: false,
    staleAfterMs: 60_000,
    total: 0,
    ...extra,
  }
}

async function setUp(): Promise<{direct: Firestore; db: Firestore; ledger: Ledger; projectId: string}> {
  const projectId = uniqueProject('unseen')
  const db = throughProxy(via, projectId)
  return {direct: testDb(projectId), db, ledger: new Ledger(db, LEDGER), projectId}
}

const end = {status: 'completed' as const, cursor: null, counters: zeroCounters(), unmapped: {}, tags: {}}

test('a one-worker run: its start and its end, each applied with the answer lost, are its own', async () => {
  const {direct, db, ledger, projectId} = await setUp()
  try {
    let before = loseNextCommitAnswer()
    const acquired = (await ledger.acquire(request(projectId)))!
    expect(proxy.stats.Commit.failed - before).toBe(1)
    const {run, lease} = acquired
    expect(acquired.resumed).toBe(false)

    before = loseNextCommitAnswer()
    await ledger.finish(lease!, run.runId, COL, end)
    expect(proxy.stats.Commit.failed - before).toBe(1)
    const record = (await direct.collection(LEDGER).doc(run.runId).get()).data()!
    expect({status: record.status, leaseId: record.leaseId, error: record.error}).toEqual({
      status: 'completed',
      leaseId: null,
      error: null,
    })
    expect((await direct.collection('_backfill_locks').doc(COL).get()).exists).toBe(false)
  } finally {
    await Promise.all([db.terminate(), direct.terminate()])
  }
})

test('a sharded run: a claim and the run’s end, each applied with the answer lost, are its own', async () => {
  const {direct, db, ledger, projectId} = await setUp()
  try {
    const {run} = (await ledger.acquire(
      request(projectId, {sharded: true, workers: 1, partitions: [{startAfter: null, endAt: null}]}),
    ))!
    let before = loseNextCommitAnswer()
    const {lease} = await ledger.claim(run, 0, 60_000)
    expect(proxy.stats.Commit.failed - before).toBe(1)
    expect(lease?.partition.index).toBe(0)
    await ledger.updateLeased(lease!, {...end, status: 'done', leaseId: null, finishedAt: new Date()})
    ledger.release(lease!)

    before = loseNextCommitAnswer()
    const left = await ledger.finishSharded(run.runId, COL, 60_000)
    expect(proxy.stats.Commit.failed - before).toBe(1)
    expect({status: left.run.status, foundEnded: left.foundEnded}).toEqual({status: 'completed', foundEnded: false})
    const record = (await direct.collection(LEDGER).doc(run.runId).get()).data()!
    expect(record.status).toBe('completed')
    expect((await direct.collection('_backfill_locks').doc(COL).get()).exists).toBe(false)
  } finally {
    await Promise.all([db.terminate(), direct.terminate()])
  }
})
