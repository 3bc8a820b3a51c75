import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {Plan, planHash, PlanSchema} from '../../src/services/plan'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {
  countDocs,
  devArgs,
  latestFile,
  ledgerRuns,
  readJson,
  runCli,
  snapshotCollection,
  testDb,
  tmpDir,
  uniqueProject,
} from '../support/harness'

/**
 * Saving a reviewed plan: a dry run with --save-plan writes what it found (target, tool and
 * vocabulary, counts, unmapped values, estimate) with a hash of it; a plan without a dry run is
 * refused before anything happens. Applying it (--plan): a plan made for anything else, or
 * edited, is refused with nothing written; the run stops before updating more items than the
 * plan counted plus --max-drift; the run record and the stats carry the plan's hash.
 */
const ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined}

describe('--save-plan', () => {
  let project: string
  let db: Firestore
  let out: string

  beforeEach(async () => {
    project = uniqueProject('plan')
    db = testDb(project)
    out = tmpDir()
    await writeItems(db, 'wardrobe_items', generateItems(60, {seed: 5, malformedRate: 0.1}))
  })
  afterEach(async () => {
    await db.terminate()
  })

  test("a backfill dry run writes the plan: its counts are the dry run's, its hash covers it", async () => {
    const file = path.join(out, 'plan.json')
    const r = await runCli(['backfill', ...devArgs(project, out), '--dry-run', '--save-plan', file], {env: ENV})
    expect(r.code).toBe(3) // some generated items are malformed: error items
    expect(r.stdout).toMatch(/^Plan: .*plan\.json \(plan hash [0-9a-f]{16}\)$/m)
    const plan = PlanSchema.parse(readJson(file))
    const stats = readJson(latestFile(out, 'backfill_stats'))
    const shipped = loadVocabulary()
    expect(plan).toMatchObject({
      command: 'backfill',
      environment: 'development',
      projectId: project,
      scope: {collection: 'wardrobe_items', collectionGroup: false, version: null, run: null},
      ledgerCollection: '_backfill_runs',
      toolVersion: '0.1.0',
      vocabulary: {version: shipped.version, hash: shipped.hash},
      counts: {scanned: 60, update: stats.updated, skip: stats.skipped, error: stats.failed},
      unmapped: stats.unmapped,
      estimate: stats.estimate,
    })
    expect(plan.counts.error).toBeGreaterThan(0)
    expect(plan.planHash).toBe(planHash(plan))
    // Any change to what was reviewed changes the hash.
    expect(planHash({...plan, counts: {...plan.counts, update: plan.counts.update + 1}})).not.toBe(plan.planHash)
    // A dry run: nothing written.
    expect((await db.collection('_backfill_runs').get()).size).toBe(0)
  })

  test('a rollback dry run writes its scope', async () => {
    const file = path.join(out, 'plan.json')
    const r = await runCli(
      ['rollback', ...devArgs(project, out), '--dry-run', '--version', '1.0', '--save-plan', file, '--json'],
      {env: ENV},
    )
    expect(r.code).toBe(0)
    expect(PlanSchema.parse(readJson(file))).toMatchObject({
      command: 'rollback',
      vocabulary: null,
      scope: {version: '1.0', run: null},
    })
  })

  test('without --dry-run it is refused before anything happens (exit 2)', async () => {
    const file = path.join(out, 'plan.json')
    const r = await runCli(['backfill', ...devArgs(project, out), '--save-plan', file], {env: ENV})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: --save-plan saves what a dry run found \(fix: add --dry-run/)
    expect(fs.existsSync(file)).toBe(false)
    expect(
      (await db.collection('wardrobe_items').where('normalized.normalized_version', '!=', '').count().get()).data()
        .count,
    ).toBe(0)
  })
})

const normalizedCount = async (db: Firestore) =>
  (await db.collection('wardrobe_items').where('normalized.normalized_version', '!=', '').count().get()).data().count

/** A plan file with `change` applied and its hash recomputed: a genuine plan made for something else. */
function rehashed(file: string, out: string, change: (plan: Plan) => Plan): string {
  const plan = change(PlanSchema.parse(readJson(file)))
  const to = path.join(out, `plan-${crypto.randomBytes(3).toString('hex')}.json`)
  fs.writeFileSync(to, JSON.stringify({...plan, planHash: planHash(plan)}))
  return to
}

describe('--plan', () => {
  let project: string
  let db: Firestore
  let out: string
  let file: string

  /** A dry run's plan of the collection as it is. */
  const savePlan = async () => {
    const r = await runCli(['backfill', ...devArgs(project, out), '--dry-run', '--save-plan', file], {env: ENV})
    expect([0, 3]).toContain(r.code)
    return PlanSchema.parse(readJson(file))
  }

  beforeEach(async () => {
    project = uniqueProject('plan-apply')
    db = testDb(project)
    out = tmpDir()
    file = path.join(out, 'plan.json')
  })
  afterEach(async () => {
    await db.terminate()
  })

  test('a plan made for anything else, or edited, is refused with one line (exit 2): nothing written, no run record', async () => {
    await writeItems(db, 'wardrobe_items', generateItems(60, {seed: 5, malformedRate: 0.1}))
    const plan = await savePlan()
    const before = await snapshotCollection(db, 'wardrobe_items')
    const taxonomy = path.join(out, 'taxonomy.json')
    const shipped = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'taxonomy', 'default.json'), 'utf8'))
    // Same version, one more alias: another content hash.
    shipped.fields.style.casual.push('weekend easy')
    fs.writeFileSync(taxonomy, JSON.stringify(shipped))
    const edited = path.join(out, 'edited.json')
    fs.writeFileSync(edited, JSON.stringify({...plan, counts: {...plan.counts, update: plan.counts.update + 100}}))
    const cases: [string, string[], RegExp][] = [
      [
        'edited file',
        ['backfill', '--plan', edited],
        /^Error: \S+edited\.json was changed after it was saved: its content does not match its planHash/,
      ],
      [
        'project',
        ['backfill', '--plan', rehashed(file, out, (p) => ({...p, projectId: 'prod-app'}))],
        new RegExp(`was made for project prod-app, this run targets ${project} `),
      ],
      [
        'environment',
        ['backfill', '--plan', rehashed(file, out, (p) => ({...p, environment: 'staging'}))],
        /was made for environment staging, this run targets development /,
      ],
      [
        'collection',
        ['backfill', '--plan', file, '--collection', 'other_items'],
        /was made for scope wardrobe_items, this run targets other_items /,
      ],
      [
        'collection group',
        ['backfill', '--plan', rehashed(file, out, (p) => ({...p, scope: {...p.scope, collectionGroup: true}}))],
        /was made for scope collection group wardrobe_items, this run targets wardrobe_items /,
      ],
      [
        'ledger',
        ['backfill', '--plan', file, '--ledger-collection', 'other_ledger'],
        /was made for ledger collection _backfill_runs, this run targets other_ledger /,
      ],
      [
        'vocabulary',
        ['backfill', '--plan', file, '--taxonomy', taxonomy],
        new RegExp(
          `was made for vocabulary ${plan.vocabulary!.version} \\(content hash ${plan.vocabulary!.hash.slice(0, 12)}\\), this run targets ${plan.vocabulary!.version} \\(content hash (?!${plan.vocabulary!.hash.slice(0, 12)})`,
        ),
      ],
      [
        'tool major version',
        ['backfill', '--plan', rehashed(file, out, (p) => ({...p, toolVersion: '1.0.0'}))],
        /was made for tool version 1\.0\.0, this run targets 0\.1\.0 /,
      ],
      ['command', ['rollback', '--plan', file], /was made for command backfill, this run targets rollback /],
      [
        'sharded',
        ['backfill', '--plan', file, '--workers', '2'],
        /^Error: --plan runs with one worker: its drift limit counts the writes of one process/,
      ],
      [
        'not a file',
        ['backfill', '--plan', path.join(out, 'missing.json')],
        /^Error: \S+missing\.json is not a readable plan: /,
      ],
    ]
    for (const [what, [command, ...args], message] of cases) {
      // A --collection of the case's own replaces the default one.
      const collection = args.indexOf('--collection')
      const target = collection < 0 ? devArgs(project, out) : devArgs(project, out, args.splice(collection, 2)[1])
      const r = await runCli([command, ...target, ...args, '--yes'], {env: ENV})
      expect({what, code: r.code}).toEqual({what, code: 2})
      expect({what, stderr: r.stderr}).toEqual({what, stderr: expect.stringMatching(message)})
      expect({what, lines: r.stderr.trim().split('\n').length}).toEqual({what, lines: 1})
    }
    expect(await snapshotCollection(db, 'wardrobe_items')).toEqual(before)
    expect(await ledgerRuns(db)).toEqual([])
    expect(await ledgerRuns(db, 'other_ledger')).toEqual([])
    // A patch-level newer tool (same major) accepts it: only the dry run's checks, nothing written.
    const patch = await runCli(
      [
        'backfill',
        ...devArgs(project, out),
        '--dry-run',
        '--plan',
        rehashed(file, out, (p) => ({...p, toolVersion: '0.1.9'})),
      ],
      {env: ENV},
    )
    expect(patch.code).toBe(3)
    expect(await snapshotCollection(db, 'wardrobe_items')).toEqual(before)
  })

  test("an exact apply writes what the dry run counted and records the plan's hash on the run and the stats", async () => {
    await writeItems(db, 'wardrobe_items', generateItems(60, {seed: 5, malformedRate: 0.1}))
    const plan = await savePlan()
    const r = await runCli(['backfill', ...devArgs(project, out), '--plan', file], {env: ENV})
    expect(r.code).toBe(3) // the plan's error items, left untouched
    expect(r.stdout).toMatch(
      new RegExp(
        `^Applied plan \\S+plan\\.json \\(plan hash ${plan.planHash.slice(0, 16)}; planned: update ${plan.counts.update}, error items ${plan.counts.error}; max drift 5%\\)$`,
        'm',
      ),
    )
    expect(r.stderr).not.toMatch(/Warning/)
    expect(await normalizedCount(db)).toBe(plan.counts.update)
    const stats = readJson(latestFile(out, 'backfill_stats'))
    expect(stats).toMatchObject({
      status: 'completed',
      updated: plan.counts.update,
      failed: plan.counts.error,
      plan: {
        hash: plan.planHash,
        planned: {update: plan.counts.update, error: plan.counts.error},
        maxDriftPercent: 5,
        exceeded: null,
        warnings: [],
      },
    })
    const runs = await ledgerRuns(db)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({runId: stats.runId, status: 'completed', planHash: plan.planHash})
    // What an auditor reads: `runs show` ties the run to the reviewed plan.
    const show = await runCli(['runs', 'show', stats.runId, ...devArgs(project, out), '--json'], {env: ENV})
    expect(JSON.parse(show.stdout)).toMatchObject({run: {runId: stats.runId}, planHash: plan.planHash})
    const text = await runCli(['runs', 'show', stats.runId, ...devArgs(project, out)], {env: ENV})
    expect(text.stdout).toContain(`plan: ${plan.planHash} (applied with --plan)`)
  })

  test('a rollback applies its plan the same way, and records it', async () => {
    await writeItems(db, 'wardrobe_items', generateItems(40, {seed: 11, malformedRate: 0}))
    expect((await runCli(['backfill', ...devArgs(project, out)], {env: ENV})).code).toBe(0)
    const dry = await runCli(
      ['rollback', ...devArgs(project, out), '--version', '1.0', '--dry-run', '--save-plan', file],
      {env: ENV},
    )
    expect(dry.code).toBe(0)
    const plan = PlanSchema.parse(readJson(file))
    expect(plan.counts.update).toBe(40)
    // Another scope than the plan's is refused.
    const other = await runCli(['rollback', ...devArgs(project, out), '--plan', file], {env: ENV})
    expect(other.code).toBe(2)
    expect(other.stderr).toMatch(/was made for scope wardrobe_items version 1\.0, this run targets wardrobe_items /)
    const r = await runCli(['rollback', ...devArgs(project, out), '--version', '1.0', '--plan', file], {env: ENV})
    expect(r.code).toBe(0)
    expect(await normalizedCount(db)).toBe(0)
    expect(readJson(latestFile(out, 'rollback_stats')).plan).toMatchObject({hash: plan.planHash, exceeded: null})
    expect((await ledgerRuns(db)).find((run) => run.kind === 'rollback')).toMatchObject({
      status: 'completed',
      planHash: plan.planHash,
    })
  })

  test('more items to update than planned: the run stops before writing past plan + 5% (exit 2); --max-drift 50 completes it', async () => {
    await writeItems(db, 'wardrobe_items', generateItems(200, {seed: 7, malformedRate: 0}))
    const plan = await savePlan()
    expect(plan.counts.update).toBe(200)
    // 20% more items needing an update since the review.
    await writeItems(db, 'wardrobe_items', generateItems(40, {seed: 7, malformedRate: 0, startIndex: 200}))
    expect(await countDocs(db, 'wardrobe_items')).toBe(240)
    const limit = Math.floor(200 * 1.05)

    // The same check as a dry run: it would stop, and writes nothing.
    const dry = await runCli(['backfill', ...devArgs(project, out), '--dry-run', '--plan', file], {env: ENV})
    expect(dry.code).toBe(2)
    expect(dry.stderr).toMatch(
      new RegExp(
        `^Error: plan drift: ${limit + 1} items to update so far, the plan counted 200 \\(max drift 5%: at most ${limit}\\); stopped before writing more$`,
        'm',
      ),
    )
    expect(await normalizedCount(db)).toBe(0)

    const r = await runCli(['backfill', ...devArgs(project, out), '--plan', file], {env: ENV})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      new RegExp(
        `^Error: plan drift: ${limit + 1} items to update so far, the plan counted 200 \\(max drift 5%: at most ${limit}\\); stopped before writing more$`,
        'm',
      ),
    )
    // Each write is admitted before it is issued, so in-flight writes are within the limit: the bound is exact.
    expect(await normalizedCount(db)).toBe(limit)
    const stats = readJson(latestFile(out, 'backfill_stats'))
    expect(stats).toMatchObject({
      status: 'failed',
      updated: limit,
      plan: {hash: plan.planHash, exceeded: expect.stringMatching(/^plan drift: /)},
    })
    const [run] = await ledgerRuns(db)
    expect(run).toMatchObject({
      runId: stats.runId,
      status: 'failed',
      error: stats.plan.exceeded,
      planHash: plan.planHash,
    })
    expect(run.counters.updated).toBe(limit)

    // Accepting the drift: the same run resumes from its checkpoint and completes.
    const more = await runCli(['backfill', ...devArgs(project, out), '--plan', file, '--max-drift', '50'], {env: ENV})
    expect(more.code).toBe(0)
    expect(await normalizedCount(db)).toBe(240)
    const [done] = await ledgerRuns(db)
    expect(done).toMatchObject({runId: run.runId, status: 'completed', planHash: plan.planHash})
    expect(done.counters.updated).toBe(240)
  })

  test('fewer items to update than planned: the run completes with a warning in the output and the stats', async () => {
    await writeItems(db, 'wardrobe_items', generateItems(100, {seed: 9, malformedRate: 0}))
    const plan = await savePlan()
    const ids = (await db.collection('wardrobe_items').select().limit(20).get()).docs
    await Promise.all(ids.map((d) => d.ref.delete()))
    const r = await runCli(['backfill', ...devArgs(project, out), '--plan', file], {env: ENV})
    expect(r.code).toBe(0)
    const warning = `updated 80 items, fewer than the plan's ${plan.counts.update} by more than 5%: items changed since the plan was made`
    expect(r.stderr).toContain(warning)
    expect(readJson(latestFile(out, 'backfill_stats')).plan.warnings).toEqual([warning])
  })

  test('--max-drift without --plan is refused (exit 2)', async () => {
    const r = await runCli(['backfill', ...devArgs(project, out), '--max-drift', '10', '--yes'], {env: ENV})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: --max-drift limits a run applying a plan/)
    expect(await ledgerRuns(db)).toEqual([])
  })
})
