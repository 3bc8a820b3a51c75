import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {freePort} from '../../src/dev/emulator'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {devArgs, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

/**
 * `wardrobe doctor` as an operator runs it before a production run, here against the emulator:
 * what each line says, what it leaves behind (nothing), and exit 0 / 4. Failures come from a
 * wrong port, a bad config file, no credentials and a skewed clock (the test-only preload).
 */
const PRELOAD = path.join(__dirname, '..', 'support', 'preload.js')
const ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined}

interface Report {
  ok: boolean
  checks: {check: string; status: string; detail: string; fix: string | null}[]
  summary: {
    items: number
    estimate: {reads: number; writes: number}
    costUsd: {total: number; writes: number; pricesTakenOn: string}
  } | null
  latencyMs: number | null
  clockSkewMs: number | null
}
const statuses = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.check, c.status]))
const check = (r: Report, name: string) => r.checks.find((c) => c.check === name)!

describe('wardrobe doctor', () => {
  let project: string
  let db: Firestore
  let out: string

  beforeEach(async () => {
    project = uniqueProject('doctor')
    db = testDb(project)
    out = tmpDir()
    await writeItems(db, 'wardrobe_items', generateItems(40, {seed: 3, malformedRate: 0}))
  })
  afterEach(async () => {
    await db.terminate()
  })

  test('a healthy emulator target: every check passes, nothing is left behind, exit 0', async () => {
    const r = await runCli(['doctor', ...devArgs(project, out)], {env: ENV})
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    for (const name of ['config', 'credentials', 'reachable', 'read', 'ledger-write', 'clock', 'node'])
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^✓ ${name} `)))
    expect(lines).toContainEqual(expect.stringMatching(/^- indexes +not checked on the emulator/))
    expect(r.stdout).toContain('wardrobe_items: 40 items')
    expect(r.stdout).toMatch(/Summary: 40 items in scope\. A backfill writing every one: 41 reads, 40 writes/)
    expect(r.stdout).toContain('All checks passed.')
    // The probe was created and deleted: the ledger holds nothing.
    expect((await db.collection('_backfill_runs').doc('_doctor').collection('probes').get()).size).toBe(0)
    expect((await db.collection('_backfill_runs').get()).size).toBe(0)
  })

  test("--json: a typed report with latency, clock skew, and the cost at the config file's prices", async () => {
    const config = path.join(out, 'wardrobe.config.json')
    fs.writeFileSync(config, JSON.stringify({prices: {writesPer100k: 100_000, takenOn: '2030-01-01'}}))
    const r = await runCli(['doctor', ...devArgs(project, out), '--config', config, '--json'], {env: ENV})
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout) as Report
    expect(report.ok).toBe(true)
    expect(check(report, 'config').detail).toBe(`${config} is valid`)
    expect(report.latencyMs).toEqual(expect.any(Number))
    expect(Math.abs(report.clockSkewMs!)).toBeLessThan(5000)
    // 40 writes at 100,000 USD per 100,000 writes.
    expect(report.summary).toMatchObject({
      items: 40,
      estimate: {reads: 41, writes: 40},
      costUsd: {writes: 40, pricesTakenOn: '2030-01-01'},
    })
  })

  test('a wrong emulator port: reachable fails with the fix, what needs it is skipped, exit 4', async () => {
    const r = await runCli(
      [
        'doctor',
        '--emulator-host',
        `127.0.0.1:${await freePort()}`,
        '--project',
        project,
        '--output-dir',
        out,
        '--json',
      ],
      {env: ENV},
    )
    expect(r.code).toBe(4)
    const report = JSON.parse(r.stdout) as Report
    expect(statuses(report)).toEqual({
      config: 'pass',
      credentials: 'pass',
      reachable: 'fail',
      read: 'skipped',
      'ledger-write': 'skipped',
      clock: 'skipped',
      indexes: 'skipped',
      node: 'pass',
    })
    expect(check(report, 'reachable').fix).toContain('gcloud emulators firestore start')
    expect(report.summary).toBeNull()
  })

  test('a config file with a bad key fails the first check, exit 4', async () => {
    const config = path.join(out, 'wardrobe.config.json')
    fs.writeFileSync(config, JSON.stringify({batchsize: 10}))
    const r = await runCli(['doctor', ...devArgs(project, out), '--config', config], {env: ENV})
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(/^✗ config +config file .*batchsize/m)
    expect(r.stdout).toContain('fix: rename "batchsize" to "batchSize"')
  })

  test('production without credentials: the credentials line names where it looked and the fix, exit 4', async () => {
    const env = {
      ...ENV,
      HOME: tmpDir(),
      GOOGLE_APPLICATION_CREDENTIALS: undefined,
      CLOUDSDK_CONFIG: undefined,
      METADATA_SERVER_DETECTION: 'none',
    }
    const r = await runCli(
      ['doctor', '--environment', 'production', '--project', 'my-app', '--output-dir', out, '--json'],
      {env},
    )
    expect(r.code).toBe(4)
    const c = check(JSON.parse(r.stdout) as Report, 'credentials')
    expect(c).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('GOOGLE_APPLICATION_CREDENTIALS (not set)'),
      fix: expect.stringContaining('gcloud auth application-default login'),
    })
  })

  test('a clock a minute ahead of Firestore is a warning (exit 0)', async () => {
    const r = await runCli(['doctor', ...devArgs(project, out), '--json'], {
      env: {...ENV, NODE_OPTIONS: `--require ${PRELOAD}`, WARDROBE_TEST_CLOCK_SKEW_MS: '60000'},
    })
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout) as Report
    expect(check(report, 'clock')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^this machine is 60\.\d s ahead of Firestore/),
      fix: expect.stringContaining('NTP'),
    })
    expect(report.clockSkewMs).toBeGreaterThan(55_000)
  })
})
