/**
 * Sharded runs and collection groups, against the real emulator: partitions that cover the
 * key space exactly once, four worker processes on one run with one killed, workers in one
 * process, and backfill / monitor / validate / rollback over items nested under many users.
 */
import fs from 'node:fs'
import path from 'node:path'
import {DocumentSnapshot, FieldPath, Firestore, Timestamp} from 'firebase-admin/firestore'
import {UsageError} from '../../src/errors'
import {evenAutoIdSplits, planPartitions} from '../../src/engine/partitions'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {itemsQuery, Target} from '../../src/firestore/target'
import {shardFromEnvironment} from '../../src/engine/workers'
import {expectNormalizedBy, originals, wellFormed} from '../support/collection'
import {
  CliResult,
  devArgs,
  emulatorHost,
  readJson,
  latestFile,
  ROOT,
  runCli,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

const COL = 'wardrobe_items'
const LEDGER = '_backfill_runs'

/**
 * The container arguments of a docs/sharding manifest, pointed at a development project on the
 * test emulator instead of production (everything else as written there).
 */
function manifestArgs(file: string, project: string, outputDir: string, maxRate = 250): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'sharding', file), 'utf8')
  const args: string[] = JSON.parse(/^\s*args: (\[.*\])\s*$/m.exec(text)![1])
  const out = args.map((a, i) =>
    args[i - 1] === '--environment'
      ? 'development'
      : args[i - 1] === '--project'
        ? project
        : args[i - 1] === '--output-dir'
          ? outputDir
          : a,
  )
  return [...out, '--emulator-host', emulatorHost(), '--max-rate', String(maxRate)]
}

async function partitionDocs(db: Firestore, runId: string): Promise<Record<string, any>[]> {
  return (await db.collection(LEDGER).doc(runId).collection('partitions').orderBy('index').get()).docs.map((d) =>
    d.data(),
  )
}

describe('partitions', () => {
  let db: Firestore
  beforeAll(() => {
    db = testDb(uniqueProject('partitions'))
  })

  /** Reads every range and checks the ranges together yield each document exactly once. */
  async function expectExactCover(
    target: Target,
    ranges: {startAfter: string | null; endAt: string | null}[],
    all: string[],
  ) {
    const seen: string[] = []
    for (const r of ranges) {
      let q = itemsQuery(db, target).orderBy(FieldPath.documentId()).select()
      if (r.startAfter !== null) q = q.startAfter(r.startAfter)
      if (r.endAt !== null) q = q.endAt(r.endAt)
      seen.push(...(await q.get()).docs.map((d) => (target.group ? d.ref.path : d.id)))
    }
    expect(seen.length).toBe(all.length)
    expect(new Set(seen).size).toBe(all.length)
  }

  test('auto ids: an even split of the id alphabet covers every item once, in roughly equal parts', async () => {
    await writeItems(db, 'auto', generateItems(4000, {seed: 3}))
    const all = (await db.collection('auto').select().get()).docs.map((d) => d.id)
    const plan = await planPartitions(db, {collection: 'auto', group: false}, {count: 8, total: all.length})
    expect(plan.method).toBe('even-auto-id')
    expect(plan.ranges).toHaveLength(8)
    await expectExactCover({collection: 'auto', group: false}, plan.ranges, all)
    // Generated ids are uniform: no partition holds more than twice its share.
    const sizes = await Promise.all(
      plan.ranges.map(async (r) => {
        let q = db.collection('auto').orderBy(FieldPath.documentId())
        if (r.startAfter) q = q.startAfter(r.startAfter)
        if (r.endAt) q = q.endAt(r.endAt)
        return (await q.count().get()).data().count
      }),
    )
    expect(Math.max(...sizes)).toBeLessThan((2 * all.length) / 8)
    expect(evenAutoIdSplits(4)).toEqual([...evenAutoIdSplits(4)].sort())
  })

  test('other ids and collection groups: a sampled split of the actual keys covers every item once', async () => {
    const batch = db.batch()
    for (let i = 0; i < 300; i++) batch.set(db.doc(`named/item-${String(i).padStart(4, '0')}`), {i})
    for (let u = 0; u < 30; u++) for (let i = 0; i < 5; i++) batch.set(db.doc(`people/u${u}/closet/c${i}`), {i})
    await batch.commit()
    const named = await planPartitions(db, {collection: 'named', group: false}, {count: 6, total: 300})
    expect(named.method).toBe('sampled')
    expect(named.ranges).toHaveLength(6)
    await expectExactCover(
      {collection: 'named', group: false},
      named.ranges,
      (await db.collection('named').get()).docs.map((d) => d.id),
    )
    const group = await planPartitions(db, {collection: 'closet', group: true}, {count: 4, total: 150})
    expect(group.method).toBe('sampled')
    expect(group.ranges.length).toBe(4)
    await expectExactCover(
      {collection: 'closet', group: true},
      group.ranges,
      (await db.collectionGroup('closet').get()).docs.map((d) => d.ref.path),
    )
  })

  test('shard index and count come from Cloud Run or Kubernetes Indexed Job variables; flags win', () => {
    expect(shardFromEnvironment({}, {CLOUD_RUN_TASK_INDEX: '2', CLOUD_RUN_TASK_COUNT: '5'})).toEqual({
      shardIndex: 2,
      shardCount: 5,
    })
    expect(shardFromEnvironment({}, {JOB_COMPLETION_INDEX: '3', WARDROBE_SHARD_COUNT: '4'})).toEqual({
      shardIndex: 3,
      shardCount: 4,
    })
    expect(shardFromEnvironment({index: 0, count: 2}, {CLOUD_RUN_TASK_INDEX: '1', CLOUD_RUN_TASK_COUNT: '3'})).toEqual({
      shardIndex: 0,
      shardCount: 2,
    })
    expect(shardFromEnvironment({}, {})).toEqual({shardIndex: 0, shardCount: 1})
    expect(() => shardFromEnvironment({}, {CLOUD_RUN_TASK_INDEX: 'x'})).toThrow(UsageError)
    expect(() => shardFromEnvironment({}, {JOB_COMPLETION_INDEX: '4', WARDROBE_SHARD_COUNT: '4'})).toThrow(
      /not below the shard count/,
    )
  })
})

/**
 * Starts four worker processes of one run, kills the second (kill -9) once it has checkpointed
 * progress in a partition, takes a monitor report, and waits for the others.
 */
async function fourWorkersOneKilled(
  db: Firestore,
  task: (i: number) => {args: string[]; env: NodeJS.ProcessEnv},
  monitorArgs: string[],
) {
  const workers = [0, 1, 2, 3].map((i) => startCli(task(i).args, {env: task(i).env, timeoutMs: 600_000}))
  const victim = workers[1]
  const killedPid = victim.child.pid!
  let runId = ''
  await waitFor(
    async () => {
      const runs = (await db.collection(LEDGER).where('status', '==', 'running').get()).docs
      if (runs.length === 0) return false
      runId = runs[0].id
      const parts = await partitionDocs(db, runId)
      return parts.some((p) => p.owner?.pid === killedPid && p.status === 'running' && p.counters.scanned > 0)
    },
    180_000,
    100,
  )
  victim.child.kill('SIGKILL')
  // The run goes on in the other three: monitor sees one run, its partitions and live workers.
  const monitorDuring = JSON.parse((await runCli(monitorArgs)).stdout)
  const partitionsAtMonitor = await partitionsView(db, runId, monitorDuring.readTime, killedPid)
  const results = await Promise.all(workers.map((w) => w.done))
  return {results, killedPid, runId, monitorDuring, partitionsAtMonitor}
}

/**
 * What monitor should have shown of the run's partitions, from the partition records as of its
 * read time: a running partition is live unless its owner is the killed process (every worker
 * runs on this host, heartbeats are seconds old), and each live owner is one worker process.
 */
async function partitionsView(
  db: Firestore,
  runId: string,
  readTime: string,
  killedPid: number,
): Promise<Record<string, number>> {
  const snap = await db.runTransaction((tx) => tx.get(db.collection(LEDGER).doc(runId).collection('partitions')), {
    readOnly: true,
    readTime: Timestamp.fromDate(new Date(readTime)),
  })
  const parts = snap.docs.map((d) => d.data())
  const count = (status: string) => parts.filter((p) => p.status === status).length
  const live = parts.filter((p) => p.status === 'running' && p.owner.pid !== killedPid)
  return {
    total: parts.length,
    done: count('done'),
    running: live.length,
    stalled: count('running') - live.length,
    pending: count('pending'),
    interrupted: count('interrupted'),
    failed: count('failed'),
    workers: new Set(live.map((p) => p.owner.pid)).size,
  }
}

/** The partitions that changed hands are exactly the killed worker's, taken over because its process was gone. */
async function expectTakenOverFrom(db: Firestore, runId: string, killedPid: number): Promise<void> {
  const parts = await partitionDocs(db, runId)
  expect(parts.every((p) => p.status === 'done')).toBe(true)
  const takenOver = parts.filter((p) => p.claims > 1)
  expect(takenOver.length).toBeGreaterThan(0)
  for (const p of takenOver) {
    expect(p.tookOverFrom.owner.pid).toBe(killedPid)
    expect(p.tookOverFrom.reason).toMatch(/is gone/)
    expect(p.owner.pid).not.toBe(killedPid)
  }
  // Four processes took part (the killed one included).
  expect(new Set(parts.flatMap((p) => [p.owner.pid, p.tookOverFrom?.owner.pid]).filter(Boolean)).size).toBe(4)
}

/** Every item counted once: a second write by another worker would count an item as updated twice. */
async function expectCountedOnce(db: Firestore, runId: string, items: number, malformed: number): Promise<void> {
  const run = (await db.collection(LEDGER).doc(runId).get()).data()!
  expect(run.status).toBe('completed')
  expect(run.counters.scanned).toBe(items)
  expect(run.counters.failed).toBe(malformed)
  // A re-read of the killed worker's tail finds this run's own write and counts it as skipped.
  expect(run.counters.updated + run.counters.skipped).toBe(items - malformed)
  expect(run.counters.skipped).toBeLessThan(5000)
  const errors = await db.collection(LEDGER).doc(runId).collection('errors').count().get()
  expect(errors.data().count).toBe(malformed)
}

describe('four worker processes on one run, one killed mid-run', () => {
  const N = 50_000
  let db: Firestore
  let project: string
  let before: Map<string, string>
  let results: CliResult[]
  let killedPid: number
  let runId: string
  let monitorDuring: any
  let partitionsAtMonitor: Record<string, number>

  beforeAll(async () => {
    project = uniqueProject('shards')
    db = testDb(project)
    await writeItems(db, COL, generateItems(N, {seed: 77, malformedRate: 0.005}))
    before = originals((await db.collection(COL).get()).docs, (d) => d.id)
    // Same host: a dead worker's leases are taken over as soon as another worker looks. Two
    // processes run as the Cloud Run Job's tasks, two as the Kubernetes Indexed Job's pods
    // (docs/sharding): their arguments, placed by the variables those engines set.
    // The one to be killed runs slower, so its partitions outlast a checkpoint (every 2 s). The
    // others are paced too (250 items/s each, ~65 s of run): faster, the run could end, or have
    // one live worker left, before monitor's process has started and counted (seen at 2,500/s
    // on CI and at 500/s in a full local run, where monitor took tens of seconds).
    const task = (i: number) =>
      i < 2
        ? {
            args: manifestArgs('cloud-run-job.yaml', project, tmpDir(), i === 1 ? 300 : undefined),
            env: {CLOUD_RUN_TASK_INDEX: String(i), CLOUD_RUN_TASK_COUNT: '4'},
          }
        : {
            args: manifestArgs('k8s-indexed-job.yaml', project, tmpDir()),
            env: {JOB_COMPLETION_INDEX: String(i), WARDROBE_SHARD_COUNT: '4'},
          }
    ;({results, killedPid, runId, monitorDuring, partitionsAtMonitor} = await fourWorkersOneKilled(db, task, [
      'monitor',
      ...devArgs(project, tmpDir()),
      '--json',
    ]))
  }, 900_000)

  test('the three survivors finish the run; the killed one died by SIGKILL', () => {
    expect(results[1].signal).toBe('SIGKILL')
    for (const i of [0, 2, 3]) {
      expect({i, code: results[i].code, stderr: results[i].stderr.split('\n').filter((l) => /Error/.test(l))}).toEqual({
        i,
        code: 3,
        stderr: [],
      })
      // Each reports the whole run (--json, as in the manifests), and its own share of it.
      const stats = JSON.parse(results[i].stdout)
      expect(stats).toMatchObject({runId, status: 'completed', partitions: 32, scanned: N})
      expect(stats.scannedHere).toBeGreaterThan(0)
      expect(stats.scannedHere).toBeLessThan(N)
    }
  })

  test('the collection ends correct: originals byte-identical, every well-formed item normalized by the run', async () => {
    const docs = (await db.collection(COL).get()).docs
    expect(originals(docs, (d) => d.id)).toEqual(before)
    expectNormalizedBy(docs, runId, (d) => d.id)
  })

  test("the killed worker's partitions were taken over from its checkpoint; no other partition changed hands", async () => {
    await expectTakenOverFrom(db, runId, killedPid)
  })

  test('every item was counted once: no item was written twice outside the killed worker’s unacknowledged tail', async () => {
    const docs = (await db.collection(COL).get()).docs
    await expectCountedOnce(db, runId, N, docs.filter((d) => !wellFormed(d)).length)
  })

  test('monitor showed the run as one sharded run: its partitions and workers', () => {
    const active = monitorDuring.runs.active
    expect(active).toHaveLength(1)
    expect(active[0].runId).toBe(runId)
    expect(active[0].status).toBe('running')
    // 4 per worker: 4 processes × --workers 2.
    expect(active[0].partitions.total).toBe(32)
    // Exactly the partition records as of monitor's read (monitor's own start and counts take
    // seconds, on a loaded machine tens of them), and still in full flight then.
    expect(active[0].partitions).toEqual(partitionsAtMonitor)
    // How many survivors hold a partition at that instant is timing (once seen: one, between
    // claims); the equality above is what checks monitor's count of them.
    expect(active[0].partitions.workers).toBeGreaterThanOrEqual(1)
    expect(active[0].scanned).toBeGreaterThan(0)
    expect(active[0].total).toBe(N)
  })
})

describe('a worker that lost its lease while paused', () => {
  const N = 20_000
  let db: Firestore
  let project: string
  let config: string

  beforeAll(async () => {
    project = uniqueProject('lease')
    db = testDb(project)
    config = path.join(tmpDir(), 'wardrobe.config.json')
    fs.writeFileSync(config, JSON.stringify({staleAfterSeconds: 5}))
    await writeItems(db, COL, generateItems(N, {seed: 12, malformedRate: 0}))
  })

  test('stops on its next checkpoint and leaves the partition to its new owner: every item counted once', async () => {
    const pausedOut = tmpDir()
    const args = (out: string) => [
      'backfill',
      ...devArgs(project, out),
      '--config',
      config,
      '--shard-count',
      '2',
      '--partitions',
      '4',
      '--max-rate',
      '800',
    ]
    const paused = startCli([...args(pausedOut), '--shard-index', '0'], {timeoutMs: 300_000})
    let runId = ''
    let held: Record<string, any> | undefined
    await waitFor(
      async () => {
        const runs = (await db.collection(LEDGER).where('status', '==', 'running').get()).docs
        if (runs.length === 0) return false
        runId = runs[0].id
        held = (await partitionDocs(db, runId)).find(
          (p) => p.owner?.pid === paused.child.pid && p.status === 'running' && p.counters.scanned > 0,
        )
        return held !== undefined
      },
      120_000,
      100,
    )
    // Frozen, not dead: its pid lives, so only its heartbeat going stale lets the other take over.
    paused.child.kill('SIGSTOP')
    const other = startCli([...args(tmpDir()), '--shard-index', '1'], {timeoutMs: 300_000})
    await waitFor(
      async () => {
        const p = (await partitionDocs(db, runId)).find((x) => x.index === held!.index)!
        return p.claims > 1 && p.owner.pid === other.child.pid && p.counters.scanned > held!.counters.scanned
      },
      120_000,
      200,
    )
    paused.child.kill('SIGCONT')
    const [a, b] = await Promise.all([paused.done, other.done])
    expect([a.code, b.code]).toEqual([0, 0])
    const parts = await partitionDocs(db, runId)
    const taken = parts.find((p) => p.index === held!.index)!
    expect(taken.tookOverFrom.owner.pid).toBe(paused.child.pid)
    expect(taken.tookOverFrom.reason).toMatch(/heartbeat is \d+s old/)
    expect(taken.owner.pid).toBe(other.child.pid)
    const run = (await db.collection(LEDGER).doc(runId).get()).data()!
    expect(run.status).toBe('completed')
    // Had the paused worker written its stale checkpoint over the new owner's, counts would be off.
    expect(run.counters.scanned).toBe(N)
    expect(run.counters.updated + run.counters.skipped).toBe(N)
    expect(fs.readFileSync(path.join(pausedOut, 'backfill_normalize.log'), 'utf8')).toContain(
      'partition taken over by another worker',
    )
    expectNormalizedBy((await db.collection(COL).get()).docs, runId, (d) => d.id)
  }, 400_000)
})

describe('workers in one process, and the lock rule', () => {
  let db: Firestore
  let project: string
  let out: string

  beforeAll(async () => {
    project = uniqueProject('workers')
    db = testDb(project)
    out = tmpDir()
    await writeItems(db, COL, generateItems(6000, {seed: 8, malformedRate: 0}))
  })

  test('--workers 3: one run of 12 partitions, all done; a rollback meanwhile is refused naming the run', async () => {
    // ~20 s of lock, so the rollback's cold start reaches its lock check in time on a loaded machine.
    const cli = startCli(['backfill', ...devArgs(project, out), '--workers', '3', '--max-rate', '300'])
    let ended = false
    cli.done.then(() => (ended = true))
    await waitFor(
      async () => ended || (await db.collection(LEDGER).where('status', '==', 'running').get()).size > 0,
      60_000,
      50,
    )
    const refused = await runCli(['rollback', ...devArgs(project, tmpDir()), '--workers', '2'])
    const result = await cli.done
    expect(result.code).toBe(0)
    const stats = readJson(latestFile(out, 'backfill_stats'))
    expect(stats).toMatchObject({status: 'completed', partitions: 12, scanned: 6000, scannedHere: 6000, updated: 6000})
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(`backfill run ${stats.runId} already holds ${COL}`)
    const parts = await partitionDocs(db, stats.runId)
    expect(parts.map((p) => p.status)).toEqual(Array(12).fill('done'))
    expectNormalizedBy((await db.collection(COL).get()).docs, stats.runId, (d) => d.id)
  })

  test('a sharded rollback undoes it exactly, and --join of an unknown run is a usage error', async () => {
    const bad = await runCli(['rollback', ...devArgs(project, tmpDir()), '--join', 'rollback-nope'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/run rollback-nope is not an unfinished rollback run/)
    const rb = await runCli([
      'rollback',
      ...devArgs(project, tmpDir()),
      '--workers',
      '2',
      '--partitions',
      '5',
      '--json',
    ])
    expect(rb.code).toBe(0)
    expect(JSON.parse(rb.stdout)).toMatchObject({status: 'completed', partitions: 5, removed: 6000})
    const left = await db.collection(COL).where('normalized.run_id', '>', '').count().get()
    expect(left.data().count).toBe(0)
  })
})

describe('four worker processes on a collection group, one killed mid-run', () => {
  const USERS = 100
  const PER_USER = 100
  const N = USERS * PER_USER

  test('the group ends correct, the killed worker’s partitions taken over, every item counted once', async () => {
    const project = uniqueProject('group-shards')
    const db = testDb(project)
    for (let u = 0; u < USERS; u++)
      await writeItems(
        db,
        `users/u${String(u).padStart(3, '0')}/wardrobe`,
        generateItems(PER_USER, {seed: 500 + u, malformedRate: 0.01}),
      )
    const pathKey = (d: DocumentSnapshot) => d.ref.path
    const before = originals((await db.collectionGroup('wardrobe').get()).docs, pathKey)
    const group = (out: string) => [
      '--environment',
      'development',
      '--project',
      project,
      '--emulator-host',
      emulatorHost(),
      '--collection-group',
      'wardrobe',
      '--output-dir',
      out,
    ]
    const task = (i: number) => ({
      args: ['backfill', ...group(tmpDir()), '--shard-index', String(i), '--shard-count', '4', '--max-rate', '100'],
      env: {},
    })
    const {results, killedPid, runId, monitorDuring, partitionsAtMonitor} = await fourWorkersOneKilled(db, task, [
      'monitor',
      ...group(tmpDir()),
      '--json',
    ])
    expect(results[1].signal).toBe('SIGKILL')
    for (const i of [0, 2, 3]) expect(results[i].code).toBe(3)
    expect(monitorDuring.collectionGroup).toBe(true)
    expect(monitorDuring.runs.active[0].partitions.total).toBe(16)
    expect(monitorDuring.runs.active[0].partitions).toEqual(partitionsAtMonitor)
    const docs = (await db.collectionGroup('wardrobe').get()).docs
    expect(originals(docs, pathKey)).toEqual(before)
    expectNormalizedBy(docs, runId, pathKey)
    await expectTakenOverFrom(db, runId, killedPid)
    await expectCountedOnce(db, runId, N, docs.filter((d) => !wellFormed(d)).length)
  }, 900_000)
})

describe('collection group: items nested under many users', () => {
  const USERS = 60
  const PER_USER = 50
  let db: Firestore
  let project: string
  let args: (out: string) => string[]
  let before: Map<string, string>
  let untouched: Map<string, string>
  let backfill: any
  const pathKey = (d: DocumentSnapshot) => d.ref.path

  beforeAll(async () => {
    project = uniqueProject('group')
    db = testDb(project)
    args = (out) => [
      '--environment',
      'development',
      '--project',
      project,
      '--emulator-host',
      emulatorHost(),
      '--collection-group',
      'wardrobe',
      '--output-dir',
      out,
    ]
    for (let u = 0; u < USERS; u++) {
      await writeItems(db, `users/user${u}/wardrobe`, generateItems(PER_USER, {seed: 100 + u, malformedRate: 0.05}))
    }
    // Same ids elsewhere: another collection name under the users, which the group must not touch.
    await writeItems(db, 'users/user0/outfits', generateItems(PER_USER, {seed: 100}))
    before = originals((await db.collectionGroup('wardrobe').get()).docs, pathKey)
    untouched = originals((await db.collection('users/user0/outfits').get()).docs, (d) => d.id)
    const result = await runCli(['backfill', ...args(tmpDir()), '--workers', '2', '--json'], {timeoutMs: 300_000})
    expect(result.code).toBe(3)
    backfill = JSON.parse(result.stdout)
  }, 600_000)

  test('backfill normalizes every nested item, keyed by path; other collections stay as they were', async () => {
    const docs = (await db.collectionGroup('wardrobe').get()).docs
    expect(docs).toHaveLength(USERS * PER_USER)
    expect(backfill).toMatchObject({
      status: 'completed',
      collection: 'wardrobe',
      collectionGroup: true,
      scanned: USERS * PER_USER,
      partitions: 8,
    })
    expect(originals(docs, pathKey)).toEqual(before)
    expectNormalizedBy(docs, backfill.runId, pathKey)
    expect(originals((await db.collection('users/user0/outfits').get()).docs, (d) => d.id)).toEqual(untouched)
    expect(
      (await db.collection('users/user0/outfits').where('normalized', '!=', null).count().get()).data().count,
    ).toBe(0)
    // Error items are reported by path (ids repeat across users).
    expect(backfill.failed).toBe(docs.filter((d) => !wellFormed(d)).length)
    expect(backfill.errorSamples[0].id).toMatch(/^users\/user\d+\/wardrobe\/\w+$/)
  })

  test('monitor and validate see the group', async () => {
    const monitor = await runCli(['monitor', ...args(tmpDir()), '--json'])
    const report = JSON.parse(monitor.stdout)
    expect(report.collectionGroup).toBe(true)
    expect(report.counts.total).toBe(USERS * PER_USER)
    expect(report.counts.normalizedCurrent).toBe(backfill.updated)
    expect(report.runs.recent[0].runId).toBe(backfill.runId)
    expect(report.recent[0].id).toMatch(/^users\//)
    const validate = await runCli(['validate', ...args(tmpDir()), '--all', '--json'])
    expect(validate.code).toBe(0)
    const v = JSON.parse(validate.stdout)
    expect(v).toMatchObject({status: 'passed', collectionGroup: true})
    expect(v.checked).toBe(backfill.updated)
    // The plain collection of that name is another scope: it has no items and no runs.
    const plain = JSON.parse((await runCli(['monitor', ...devArgs(project, tmpDir(), 'wardrobe'), '--json'])).stdout)
    expect(plain.counts.total).toBe(0)
    expect(plain.runs.recent).toEqual([])
  })

  test('rollback over the group gives back every nested item exactly', async () => {
    const rb = await runCli(['rollback', ...args(tmpDir()), '--json'])
    expect(rb.code).toBe(0)
    expect(JSON.parse(rb.stdout)).toMatchObject({status: 'completed', collectionGroup: true, removed: backfill.updated})
    const after = (await db.collectionGroup('wardrobe').get()).docs
    expect(after.filter((d) => d.get('normalized') !== undefined)).toHaveLength(0)
    expect(originals(after, pathKey)).toEqual(before)
  })
})
