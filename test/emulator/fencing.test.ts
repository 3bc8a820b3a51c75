/**
 * Exclusive runs under what production varies: another host's clock minutes ahead or behind,
 * a holder frozen past its lease (SIGSTOP: a closed laptop lid, a long GC or network stall)
 * and woken after a rollback took the collection over, Ctrl-C in one process of a sharded
 * run, and a gentle --max-rate. Real CLI processes against the real emulator; the clock and
 * host of a child are changed by a test-only preload (test/support/preload.js). One case
 * drives the sharded engine itself, for an order of events a frozen process meets by chance.
 */
import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {exitCodeForRun} from '../../src/errors'
import type {Hold} from '../../src/engine/job'
import {Ledger} from '../../src/engine/ledger'
import {runSharded} from '../../src/engine/workers'
import {GuardedWriter} from '../../src/engine/writer'
import {targetOf} from '../../src/firestore/target'
import {
  CliResult,
  devArgs,
  latestFile,
  readJson,
  runCli,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

const COL = 'wardrobe_items'
const LEDGER = '_backfill_runs'
/** Writes per BatchWrite call (the client's BulkWriter). */
const BULK_BATCH = 20
const PRELOAD = path.join(__dirname, '..', 'support', 'preload.js')
/** Another machine: its clock `skewMs` off, optionally another host name and boot. */
const otherMachine = (skewMs: number, host?: string) => ({
  NODE_OPTIONS: `--require ${PRELOAD}`,
  WARDROBE_TEST_CLOCK_SKEW_MS: String(skewMs),
  ...(host ? {WARDROBE_TEST_HOST: host} : {}),
})

function configWith(settings: Record<string, unknown>): string {
  const file = path.join(tmpDir(), 'wardrobe.config.json')
  fs.writeFileSync(file, JSON.stringify(settings))
  return file
}

async function runningRun(db: Firestore, minScanned = 1): Promise<Record<string, any> | undefined> {
  const runs = (await db.collection(LEDGER).where('status', '==', 'running').get()).docs.map((d) => d.data())
  const run = runs[0]
  if (!run) return undefined
  if (run.partitions > 0) {
    const parts = (await db.collection(LEDGER).doc(run.runId).collection('partitions').get()).docs.map((d) => d.data())
    return parts.reduce((n, p) => n + p.counters.scanned, 0) >= minScanned ? run : undefined
  }
  return run.counters.scanned >= minScanned ? run : undefined
}

const normalizedCount = async (db: Firestore) =>
  (await db.collection(COL).where('normalized.normalized_version', '!=', '').count().get()).data().count
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('a live run is never taken over because another host’s clock disagrees', () => {
  const N = 3000
  let db: Firestore
  let project: string

  beforeAll(async () => {
    project = uniqueProject('skew')
    db = testDb(project)
    await writeItems(db, COL, generateItems(N, {seed: 21, malformedRate: 0}))
  })

  test('a rollback on a host 2 minutes ahead, and one 2 minutes behind, are refused; the backfill completes alone', async () => {
    const config = configWith({staleAfterSeconds: 10})
    const backfill = startCli(['backfill', ...devArgs(project, tmpDir()), '--config', config, '--max-rate', '100'], {
      timeoutMs: 180_000,
    })
    let run: Record<string, any> | undefined
    await waitFor(async () => (run = await runningRun(db, 200)) !== undefined, 60_000, 100)
    for (const skew of [120_000, -120_000]) {
      const rollback = await runCli(['rollback', ...devArgs(project, tmpDir()), '--config', config], {
        env: otherMachine(skew, 'other-host'),
      })
      expect({skew, code: rollback.code}).toEqual({skew, code: 2})
      expect(rollback.stderr).toContain(`already holds ${COL}`)
    }
    const done = await backfill.done
    expect(done.code).toBe(0)
    const record = (await db.collection(LEDGER).doc(run!.runId).get()).data()!
    expect(record.status).toBe('completed')
    expect((await db.collection(LEDGER).where('kind', '==', 'rollback').get()).size).toBe(0)
    expect(await normalizedCount(db)).toBe(N)
  })

  test('a dead holder on another host is taken over once stale by Firestore’s clock, even from a host 2 minutes behind', async () => {
    await db.recursiveDelete(db.collection(LEDGER))
    await db.recursiveDelete(db.collection('_backfill_locks'))
    const config = configWith({staleAfterSeconds: 8})
    const args = ['backfill', ...devArgs(project, tmpDir()), '--config', config, '--force', '--max-rate', '300']
    const holder = startCli(args, {env: otherMachine(0, 'dead-host'), timeoutMs: 180_000})
    let run: Record<string, any> | undefined
    await waitFor(async () => (run = await runningRun(db, 200)) !== undefined, 60_000, 100)
    holder.child.kill('SIGKILL')
    await holder.done
    const killedAt = Date.now()
    // Behind by 2 minutes, this host's own clock would call the heartbeat 2 minutes in the future.
    let result: CliResult
    for (;;) {
      result = await runCli(args, {env: otherMachine(-120_000)})
      if (result.code !== 2 || Date.now() - killedAt > 60_000) break
      expect(result.stderr).toContain(`already holds ${COL}`)
      await sleep(1000)
    }
    const waited = (Date.now() - killedAt) / 1000
    console.log(`dead holder on another host taken over after ${waited.toFixed(1)} s (stale limit 8 s)`)
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/took over run .*heartbeat is \d+s old by Firestore's clock/)
    expect(waited).toBeLessThan(40)
    const record = (await db.collection(LEDGER).doc(run!.runId).get()).data()!
    expect(record.status).toBe('completed')
    expect(record.resumes).toBe(1)
  })
})

describe('a holder frozen past its lease writes nothing after it wakes', () => {
  const N = 4000
  let db: Firestore
  let project: string

  beforeEach(async () => {
    project = uniqueProject('freeze')
    db = testDb(project)
    await writeItems(db, COL, generateItems(N, {seed: 5, malformedRate: 0}))
  })

  async function freezeThenRollback(extra: string[]): Promise<void> {
    const config = configWith({staleAfterSeconds: 5})
    const out = tmpDir()
    const backfill = startCli(
      ['backfill', ...devArgs(project, out), '--config', config, '--max-rate', '200', ...extra],
      {timeoutMs: 240_000},
    )
    let run: Record<string, any> | undefined
    await waitFor(async () => (run = await runningRun(db, 300)) !== undefined, 60_000, 100)
    backfill.child.kill('SIGSTOP')
    const frozenAt = Date.now()
    const rollbackOut = tmpDir()
    let rollback: CliResult
    // Refused while the lease could still be live; taken over once it is stale by Firestore's clock.
    for (;;) {
      rollback = await runCli(['rollback', ...devArgs(project, rollbackOut), '--config', config, '--json'])
      if (rollback.code !== 2) break
      await sleep(1000)
    }
    expect(rollback.code).toBe(0)
    expect(rollback.stderr).toContain(`took over run ${run!.runId}`)
    const afterRollback = await normalizedCount(db)
    expect(afterRollback).toBe(0)
    const wokeAt = Date.now()
    backfill.child.kill('SIGCONT')
    const woke = await backfill.done
    const leaked = (await db.collection(COL).where('normalized.normalized_version', '!=', '').get()).docs
    if (leaked.length)
      console.log(
        'DIAG',
        {
          frozenAt,
          wokeAt,
          items: leaked
            .slice(0, 5)
            .map((d) => ({at: d.get('normalized.normalized_at').toMillis(), up: d.updateTime.toMillis()})),
        },
        woke.stderr.slice(-2000),
      )
    expect(woke.code).toBe(1)
    expect(woke.stderr).toMatch(/lease lost/)
    // Nothing the woken process had queued, retried or re-read on a conflict reached an item.
    // What no client-side fence reaches (README, "A holder fences itself"): a BatchWrite that
    // gRPC had already started when the process froze leaves as it resumes: at most one
    // batch, landing at once.
    expect(leaked.length).toBeLessThanOrEqual(BULK_BATCH)
    const landed = leaked.map((d) => d.updateTime.toMillis())
    if (landed.length) expect(Math.max(...landed) - Math.min(...landed)).toBeLessThan(100)
    const record = (await db.collection(LEDGER).doc(run!.runId).get()).data()!
    expect(record.status).toBe('interrupted')
    expect(record.error).toMatch(/taken over by rollback/)
    expect((await db.collection('_backfill_locks').get()).size).toBe(0)
    const stats = readJson(latestFile(out, 'backfill_stats_')!)
    expect(stats.status).toBe('failed')
  }

  test('a one-worker backfill', async () => {
    await freezeThenRollback([])
  })

  test('a sharded backfill (two workers)', async () => {
    await freezeThenRollback(['--workers', '2', '--partitions', '4'])
  })
})

describe('a sharded process whose run was taken over while its worker failed on another error', () => {
  test('reports failed with its lease lost (exit 1), not the taker-over’s interrupted (exit 130)', async () => {
    const project = uniqueProject('taken')
    const db = testDb(project)
    await writeItems(db, COL, generateItems(20, {seed: 3, malformedRate: 0}))
    const ledger = new Ledger(db, LEDGER)
    const settings = {
      environment: 'development' as const,
      projectId: project,
      collection: COL,
      ledgerCollection: LEDGER,
    }
    const staleAfterMs = 60_000
    const {run} = (await ledger.acquire({
      ...settings,
      kind: 'backfill',
      version: '1',
      resumeKey: 'taken',
      options: {},
      fromStart: false,
      staleAfterMs,
      total: 20,
      sharded: true,
      workers: 1,
      partitions: [{startAfter: null, endAt: null}],
    }))!
    const takenOver = 'taken over by rollback (ops@elsewhere pid 1): none of its processes is alive'
    // Once the worker holds its partition, another process takes the run over (as acquire does a
    // stale one); the worker then stops on an error of its own before a checkpoint or write tells
    // it of the lost lease: a frozen process woken to an expired deadline, say.
    const events: {message: string; status?: unknown}[] = []
    let taken = false
    const takeOver: Hold = {
      get holding() {
        return !taken && events.some((e) => e.message === 'partition claimed')
      },
      async whenWriting() {
        const batch = db.batch()
        batch.set(
          ledger.runRef(run.runId),
          {status: 'interrupted', leaseId: null, error: takenOver, finishedAt: new Date()},
          {merge: true},
        )
        for (const p of (await ledger.partitionsOf(run.runId).where('status', '==', 'running').get()).docs)
          batch.update(p.ref, {status: 'interrupted', leaseId: null})
        batch.delete(ledger.lockRef(COL))
        await batch.commit()
        taken = true
      },
    }
    const log = (message: string, meta?: {status?: unknown}) => void events.push({message, status: meta?.status})
    const {result} = await runSharded({
      ctx: {
        db,
        emulator: true,
        settings: {...settings, staleAfterMs},
        logger: {info: log, warn: log, error: log, debug() {}},
      },
      ledger,
      run,
      job: {
        db,
        target: targetOf({collection: COL}),
        select: [],
        dryRun: false,
        total: 20,
        plan: () => {
          throw new Error('an error of the worker’s own')
        },
      },
      writerFor: (fence) => new GuardedWriter(db, {emulator: true, fence}),
      sharding: {workers: 1, shardIndex: 0, shardCount: 1},
      control: takeOver,
    })
    // The setup did what it says: taken over, then the worker left its partition failed, not lease-lost.
    expect(taken).toBe(true)
    expect(events.filter((e) => e.message.startsWith('partition'))).toEqual([
      {message: 'partition claimed'},
      {message: 'partition left', status: 'failed'},
    ])
    const exit = exitCodeForRun({status: result.status, failed: result.counters.failed})
    expect({status: result.status, leaseLost: result.leaseLost, exit}).toEqual({
      status: 'failed',
      leaseLost: true,
      exit: 1,
    })
    expect(result.error).toMatch(/^lease lost: run \S+ is interrupted \(taken over by rollback/)
    // The taker-over's record stands.
    const record = (await ledger.get(run.runId))!
    expect({status: record.status, error: record.error}).toEqual({status: 'interrupted', error: takenOver})
    expect(await normalizedCount(db)).toBe(0)
  })
})

describe('Ctrl-C in one process of a sharded run stops that process only', () => {
  const N = 3000
  let db: Firestore
  let project: string

  beforeAll(async () => {
    project = uniqueProject('shint')
    db = testDb(project)
    await writeItems(db, COL, generateItems(N, {seed: 9, malformedRate: 0}))
  })

  test('the other process finishes the run completed; a rollback meanwhile is refused naming the run', async () => {
    const config = configWith({staleAfterSeconds: 10})
    const args = (i: number, out = tmpDir()) => [
      'backfill',
      ...devArgs(project, out),
      '--config',
      config,
      '--shard-count',
      '2',
      '--shard-index',
      String(i),
      '--partitions',
      '6',
      '--max-rate',
      '150',
    ]
    const a = startCli(args(0), {timeoutMs: 180_000})
    let run: Record<string, any> | undefined
    await waitFor(async () => (run = await runningRun(db, 100)) !== undefined, 60_000, 100)
    const bOut = tmpDir()
    const b = startCli(args(1, bOut), {timeoutMs: 180_000})
    await waitFor(
      async () => (await db.collection(LEDGER).doc(run!.runId).collection('processes').get()).size === 2,
      60_000,
      100,
    )
    a.child.kill('SIGINT')
    const stopped = await a.done
    expect(stopped.code).toBe(130)
    const rollback = await runCli(['rollback', ...devArgs(project, tmpDir()), '--config', config])
    expect(rollback.code).toBe(2)
    expect(rollback.stderr).toContain(run!.runId)
    const finished = await b.done
    expect(finished.code).toBe(0)
    const record = (await db.collection(LEDGER).doc(run!.runId).get()).data()!
    expect(record.status).toBe('completed')
    expect(record.counters.scanned).toBe(N)
    expect(readJson(latestFile(bOut, 'backfill_stats_')!).status).toBe('completed')
    expect(await normalizedCount(db)).toBe(N)
    expect((await db.collection('_backfill_locks').get()).size).toBe(0)
  })
})

describe('--max-rate below BulkWriter’s batch of 20', () => {
  let db: Firestore
  let project: string

  beforeEach(async () => {
    project = uniqueProject('slow')
    db = testDb(project)
    await writeItems(db, COL, generateItems(100, {seed: 4, malformedRate: 0}))
  })

  test.each([
    ['--max-rate 10', ['--max-rate', '10']],
    ['--max-rate 60 --workers 4 (15 per worker)', ['--max-rate', '60', '--workers', '4', '--partitions', '4']],
  ])('%s finishes at that rate, not as a false outage', async (_name, flags) => {
    // A stall is declared an outage after 5 s of silence: before, these runs failed that way.
    const config = configWith({outageAfterSeconds: 5})
    const started = Date.now()
    const result = await runCli(['backfill', ...devArgs(project, tmpDir()), '--config', config, ...flags])
    console.log(`${flags.join(' ')}: 100 items in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    expect(result.code).toBe(0)
    expect(await normalizedCount(db)).toBe(100)
  })
})

describe('identity in containers: pids are compared only within one pid namespace', () => {
  const N = 3000
  let db: Firestore
  let project: string
  // A container's view of this host: same host name, its own pid namespace (the CLI is pid 1 in it).
  const container = ['unshare', '--pid', '--fork', '--mount-proc']

  beforeEach(async () => {
    project = uniqueProject('pidns')
    db = testDb(project)
    await writeItems(db, COL, generateItems(N, {seed: 13, malformedRate: 0}))
  })

  test('a live holder on this host is not taken for dead by a process in another pid namespace', async () => {
    const config = configWith({staleAfterSeconds: 10})
    const backfill = startCli(['backfill', ...devArgs(project, tmpDir()), '--config', config, '--max-rate', '150'], {
      timeoutMs: 180_000,
    })
    await waitFor(async () => (await runningRun(db, 100)) !== undefined, 60_000, 100)
    // Its pid does not exist in the container's namespace: that must not read as "its process is gone".
    const rollback = await runCli(['rollback', ...devArgs(project, tmpDir()), '--config', config], {wrapper: container})
    expect(rollback.code).toBe(2)
    expect(rollback.stderr).toContain(`already holds ${COL}`)
    expect((await backfill.done).code).toBe(0)
    expect(await normalizedCount(db)).toBe(N)
  })

  test('a dead holder that was pid 1 in one container is taken over by pid 1 of another, once stale', async () => {
    const config = configWith({staleAfterSeconds: 6})
    const args = ['backfill', ...devArgs(project, tmpDir()), '--config', config, '--max-rate', '150']
    const holder = startCli(args, {wrapper: container, timeoutMs: 180_000})
    let run: Record<string, any> | undefined
    await waitFor(async () => (run = await runningRun(db, 100)) !== undefined, 60_000, 100)
    expect(run!.owner.pid).toBe(1)
    // pid 1 of a namespace dies, and the namespace with it.
    const [inner] = fs
      .readFileSync(`/proc/${holder.child.pid}/task/${holder.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
    process.kill(Number(inner), 'SIGKILL')
    await holder.done
    const killedAt = Date.now()
    let result: CliResult
    for (;;) {
      result = await runCli(args, {wrapper: container})
      if (result.code !== 2 || Date.now() - killedAt > 60_000) break
      await sleep(1000)
    }
    // Before, the same host name and pid 1 read as "me": the dead holder was never taken over.
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`took over run ${run!.runId}`)
    const record = (await db.collection(LEDGER).doc(run!.runId).get()).data()!
    expect(record.status).toBe('completed')
    expect(await normalizedCount(db)).toBe(N)
  })
})
