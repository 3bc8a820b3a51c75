import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {planHash, PlanSchema} from '../../src/services/plan'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {devArgs, latestFile, readJson, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

/**
 * Saving a reviewed plan: a dry run with --save-plan writes what it found (target, tool and
 * vocabulary, counts, unmapped values, estimate) with a hash of it; a plan without a dry run is
 * refused before anything happens.
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

  test('a backfill dry run writes the plan: its counts are the dry run\'s, its hash covers it', async () => {
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
    const r = await runCli(['rollback', ...devArgs(project, out), '--dry-run', '--version', '1.0', '--save-plan', file, '--json'], {env: ENV})
    expect(r.code).toBe(0)
    expect(PlanSchema.parse(readJson(file))).toMatchObject({command: 'rollback', vocabulary: null, scope: {version: '1.0', run: null}})
  })

  test('without --dry-run it is refused before anything happens (exit 2)', async () => {
    const file = path.join(out, 'plan.json')
    const r = await runCli(['backfill', ...devArgs(project, out), '--save-plan', file], {env: ENV})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: --save-plan saves what a dry run found \(fix: add --dry-run/)
    expect(fs.existsSync(file)).toBe(false)
    expect((await db.collection('wardrobe_items').where('normalized.normalized_version', '!=', '').count().get()).data().count).toBe(0)
  })
})
