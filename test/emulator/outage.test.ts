import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {FaultProxy} from '../chaos/proxy'
import {
  devArgs,
  emulatorHost,
  latestFile,
  readJson,
  resetProject,
  runCli,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

/**
 * A persistent outage: the CLI reaches the emulator through a TCP proxy that is cut mid-run and
 * stays cut. With a 5 s budget the run gives up instead of waiting on the client's own retries
 * (up to 600 s a write): exit 1, why and how to resume on stderr, the checkpoint kept; the same
 * command then takes the run over and completes it.
 */
describe('wardrobe backfill: a persistent outage', () => {
  const N = 3000
  const BUDGET_SECONDS = 5
  let project: string
  let db: Firestore
  let out: string
  let proxy: FaultProxy

  beforeAll(async () => {
    project = uniqueProject('outage')
    db = testDb(project)
    out = tmpDir()
    await writeItems(db, 'wardrobe_items', generateItems(N, {seed: 17, malformedRate: 0}))
    proxy = FaultProxy.forHost(emulatorHost())
  })
  afterAll(async () => {
    await proxy.close()
    await resetProject(project)
    await db.terminate()
  })

  it('ends the run failed within the budget, keeps the checkpoint, and a re-run completes every item', async () => {
    const via = await proxy.listen()
    const args = devArgs(project, out).map((a, i, all) => (all[i - 1] === '--emulator-host' ? via : a))
    // Throttled so that the cut lands mid-run; a small window keeps the run's tail short.
    const flags = ['--max-rate', '300', '--batch-size', '200', '--outage-after', String(BUDGET_SECONDS)]
    const {done} = startCli(['backfill', ...args, ...flags], {timeoutMs: 100_000})

    let runId = ''
    await waitFor(async () => {
      const run = (await db.collection('_backfill_runs').get()).docs[0]?.data()
      runId = run?.runId ?? ''
      return run?.cursor != null && run.counters.scanned >= 400
    }, 60_000)
    proxy.startDrop()
    const cutAt = Date.now()
    const res = await done
    const seconds = (Date.now() - cutAt) / 1000

    // Budget, then at most the 15 s ledger deadline and the 5 s close: not the client's minutes.
    expect({code: res.code, signal: res.signal}).toEqual({code: 1, signal: null})
    expect(seconds).toBeLessThan(BUDGET_SECONDS + 15 + 5 + 20)
    expect(res.stderr).toMatch(/^Error: Firestore unreachable: nothing answered for \d+ s/m)
    expect(res.stderr).toMatch(/may still say "running"/)
    expect(res.stderr).toMatch(/^Resume with: wardrobe backfill .*--outage-after 5/m)
    const stats = readJson(latestFile(out, 'backfill_stats_'))
    expect(stats).toMatchObject({runId, status: 'failed', resumeCommand: expect.stringContaining('backfill')})

    // The ledger could not be reached at the end: the record keeps its last checkpoint and the lock.
    const record = (await db.collection('_backfill_runs').doc(runId).get()).data()!
    expect(record.status).toBe('running')
    expect(record.cursor).not.toBeNull()
    expect(record.counters.scanned).toBeLessThan(N)
    expect((await db.collection('_backfill_locks').doc('wardrobe_items').get()).get('runId')).toBe(runId)
    const upToCursor = await db.collection('wardrobe_items').orderBy('__name__').endAt(record.cursor).get()
    expect(upToCursor.size).toBe(record.counters.scanned)
    expect(upToCursor.docs.filter((d) => d.get('normalized.run_id') !== runId).map((d) => d.id)).toEqual([])

    proxy.restore()
    const again = await runCli(['backfill', ...devArgs(project, out), '--json'])
    expect(again.code).toBe(0)
    expect(again.stderr).toMatch(/took over run/)
    expect(JSON.parse(again.stdout)).toMatchObject({
      runId,
      status: 'completed',
      resumed: true,
      scanned: N,
      failed: 0,
      scannedHere: N - record.counters.scanned,
    })
    const items = await db.collection('wardrobe_items').get()
    expect(items.docs.filter((d) => d.get('normalized.run_id') !== runId).map((d) => d.id)).toEqual([])
    expect((await db.collection('_backfill_runs').doc(runId).get()).get('status')).toBe('completed')
  }, 180_000)

  it('Firestore unreachable when the run starts: exit 1 within the budget, nothing written; the same command later runs', async () => {
    const late = FaultProxy.forHost(emulatorHost())
    const via = await late.listen()
    // The CLI's reachability probe gets through; the client's connection does not.
    late.admitOnly(1)
    const project2 = uniqueProject('outage-start')
    const db2 = testDb(project2)
    await writeItems(db2, 'wardrobe_items', generateItems(200, {seed: 5, malformedRate: 0}))
    const args = devArgs(project2, tmpDir()).map((a, i, all) => (all[i - 1] === '--emulator-host' ? via : a))
    const started = Date.now()
    const res = await runCli(['backfill', ...args, '--outage-after', String(BUDGET_SECONDS)], {timeoutMs: 120_000})
    const seconds = (Date.now() - started) / 1000
    try {
      expect({code: res.code, signal: res.signal}).toEqual({code: 1, signal: null})
      // Budget, the 5 s close and start-up; the client alone would retry for minutes.
      expect(seconds).toBeLessThan(BUDGET_SECONDS + 5 + 20)
      expect(res.stderr).toMatch(
        /^Error: Firestore unavailable: no answer within 5 s .*\(fix: check the network path to Firestore/m,
      )
      expect(late.refused).toBeGreaterThan(0)
      expect((await db2.collection('_backfill_runs').get()).size).toBe(0)
      expect((await db2.collection('_backfill_locks').get()).size).toBe(0)
      expect((await db2.collection('wardrobe_items').where('normalized', '!=', null).count().get()).data().count).toBe(
        0,
      )

      late.restore()
      const again = await runCli(['backfill', ...args, '--json'])
      expect(again.code).toBe(0)
      expect(JSON.parse(again.stdout)).toMatchObject({status: 'completed', scanned: 200, updated: 200})
    } finally {
      await late.close()
      await resetProject(project2)
      await db2.terminate()
    }
  }, 120_000)
})
