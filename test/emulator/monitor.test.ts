/**
 * `wardrobe monitor` against the real emulator: its numbers against direct counts of the
 * collection (also mid-backfill, at the report's snapshot), the report file and --json,
 * --watch while a backfill runs in another process, a kill -9'd backfill shown as stalled
 * with the command that resumes it, and --fail-on exit codes.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {Firestore, Timestamp} from 'firebase-admin/firestore'
import {colorLevel, renderDashboard, renderWatchLine, visibleLength} from '../../src/cli/dashboard'
import {currentOwner, RunRecordSchema} from '../../src/engine/ledger'
import {
  assessHealth,
  compareVersions,
  Counts,
  DEFAULT_THRESHOLDS,
  HealthFacts,
  judgeVersion,
  MonitorReport,
  MonitorReportSchema,
  RunView,
} from '../../src/services/monitor'
import {resumeCommandFor} from '../../src/engine/run-identity'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {DEFAULT_TAXONOMY_FILE, loadVocabulary} from '../../src/domain/vocabulary'
import {devArgs, emulatorHost, runCli, startCli, testDb, tmpDir, uniqueProject, waitFor} from '../support/harness'

const COL = 'wardrobe_items'
const LEDGER = '_backfill_runs'
const VERSION = loadVocabulary().version
const SHIPPED_HASH = loadVocabulary().hash
// jest's NODE_ENV=test makes oclif print a ts-source warning on stderr; a user's shell has no such variable.
const ENV = {NODE_ENV: undefined}

/** What a reader of every document finds, classified by the rules monitor documents. */
interface Direct {
  total: number
  current: number
  outdated: number
  notNormalized: number
  byVersion: Record<string, number>
  errors: number
}

/** Reads the whole collection (and the run's error records) at `readTime`, or now: the ground truth. */
async function directCounts(db: Firestore, version: string, runId: string | null, readTime?: string): Promise<Direct> {
  const read = <T>(fn: (tx: FirebaseFirestore.Transaction) => Promise<T>) =>
    db.runTransaction(
      fn,
      readTime ? {readOnly: true, readTime: Timestamp.fromDate(new Date(readTime))} : {readOnly: true},
    )
  const [items, errors] = await read((tx) =>
    Promise.all([
      tx.get(db.collection(COL)),
      runId ? tx.get(db.collection(LEDGER).doc(runId).collection('errors')) : Promise.resolve(null),
    ]),
  )
  const d: Direct = {
    total: items.size,
    current: 0,
    outdated: 0,
    notNormalized: 0,
    byVersion: {},
    errors: errors?.size ?? 0,
  }
  for (const doc of items.docs) {
    const v = doc.get('normalized.normalized_version')
    if (typeof v !== 'string' || v === '') d.notNormalized++
    else {
      d.byVersion[v] = (d.byVersion[v] ?? 0) + 1
      if (v === version) d.current++
      else d.outdated++
    }
  }
  return d
}

function expectMatches(report: MonitorReport, direct: Direct): void {
  expect({
    total: report.counts.total,
    current: report.counts.normalizedCurrent,
    outdated: report.counts.normalizedOutdated,
    notNormalized: report.counts.notNormalized,
    errors: report.errors.total,
  }).toEqual({
    total: direct.total,
    current: direct.current,
    outdated: direct.outdated,
    notNormalized: direct.notNormalized,
    errors: direct.errors,
  })
  for (const v of report.counts.versions)
    expect([v.version, v.count]).toEqual([v.version, direct.byVersion[v.version] ?? 0])
}

/** A pid that surely belongs to no process on this host: a child that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!
}

async function monitorJson(
  args: string[],
  extra: string[] = [],
): Promise<{report: MonitorReport; code: number | null; stderr: string}> {
  const res = await runCli(['monitor', ...args, ...extra, '--json'], {env: ENV})
  let report: MonitorReport
  try {
    report = MonitorReportSchema.parse(JSON.parse(res.stdout))
  } catch (err) {
    throw new Error(`monitor --json gave no report (exit ${res.code}): ${res.stdout}\n${res.stderr}`, {cause: err})
  }
  return {report, code: res.code, stderr: res.stderr}
}

function lineCollector(stream: NodeJS.ReadableStream): string[] {
  const lines: string[] = []
  let buf = ''
  stream.on('data', (d) => {
    buf += d
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
  })
  return lines
}

describe('wardrobe monitor on a known state', () => {
  const project = uniqueProject('monitor-state')
  const db = testDb(project)
  const out = tmpDir()
  const args = devArgs(project, out)
  const stalledRun = 'backfill-20260101T000000-aaaaaa'
  const oldRun = 'backfill-20250101T000000-bbbbbb'
  const base = Date.now() - 60_000
  const expectedRecent: string[] = []

  beforeAll(async () => {
    const col = db.collection(COL)
    const batch = db.batch()
    const item = (i: number) => ({name: `Item ${i}`, style: ['Casual'], occasion: 'Work', mood: [], season: ['Fall']})
    const at = (ms: number) => Timestamp.fromMillis(base + ms)
    // 30 never normalized
    for (let i = 0; i < 30; i++) batch.set(col.doc(`plain-${i}`), item(i))
    // 40 at the current version, written by the stalled run; the newest 10 are the recent ones
    for (let i = 0; i < 40; i++) {
      batch.set(col.doc(`cur-${String(i).padStart(2, '0')}`), {
        ...item(i),
        normalized: {
          style: ['casual'],
          occasion: ['work'],
          mood: [],
          season: ['autumn'],
          normalized_at: at(10_000 + i * 100),
          normalized_version: VERSION,
          taxonomy_hash: SHIPPED_HASH,
          source_hash: 'x',
          run_id: stalledRun,
        },
      })
    }
    for (let i = 39; i >= 30; i--) expectedRecent.push(`cur-${String(i).padStart(2, '0')}`)
    // 15 at 0.9 (a version the ledger knows), 5 at 0.5 (one it does not)
    for (let i = 0; i < 15; i++)
      batch.set(col.doc(`old-${i}`), {
        ...item(i),
        normalized: {
          style: [],
          occasion: [],
          mood: [],
          season: [],
          normalized_at: at(i),
          normalized_version: '0.9',
          run_id: oldRun,
        },
      })
    for (let i = 0; i < 5; i++)
      batch.set(col.doc(`older-${i}`), {
        ...item(i),
        normalized: {style: [], normalized_at: at(i), normalized_version: '0.5'},
      })
    // written by the app: a normalized without a version (and a string date), and a numeric version
    for (let i = 0; i < 4; i++)
      batch.set(col.doc(`app-${i}`), {...item(i), normalized: {style: ['casual'], normalized_at: 'yesterday'}})
    for (let i = 0; i < 3; i++)
      batch.set(col.doc(`numver-${i}`), {...item(i), normalized: {normalized_version: 1, normalized_at: at(0)}})
    // 6 error items, recorded under the stalled run
    for (let i = 0; i < 6; i++) {
      batch.set(col.doc(`bad-${i}`), {...item(i), style: 42})
      batch.set(db.collection(LEDGER).doc(stalledRun).collection('errors').doc(`bad-${i}`), {
        itemId: `bad-${i}`,
        field: 'style',
        reason: 'style: expected an array of strings or a string, got number',
        at: new Date(base + i),
      })
    }
    const me = currentOwner()
    const record = (over: Record<string, unknown>) =>
      RunRecordSchema.parse({
        kind: 'backfill',
        environment: 'development',
        projectId: project,
        collection: COL,
        resumeKey: 'k',
        owner: me,
        counters: {scanned: 60, updated: 40, skipped: 14, failed: 6, conflicts: 0},
        cursor: 'cur-39',
        total: 103,
        ...over,
      })
    // Running, but its process is gone: stalled. --force and a batch size of 200 must show up in the recommendations.
    batch.set(
      db.collection(LEDGER).doc(stalledRun),
      record({
        runId: stalledRun,
        version: VERSION,
        options: {force: true, batchSize: 200},
        owner: {...me, pid: deadPid()},
        status: 'running',
        unmapped: {'style:foo': 30},
        startedAt: new Date(base),
        heartbeatAt: new Date(Date.now() - 1000),
      }),
    )
    batch.set(
      db.collection(LEDGER).doc(oldRun),
      record({
        runId: oldRun,
        version: '0.9',
        options: {force: false, batchSize: 500},
        status: 'completed',
        counters: {scanned: 15, updated: 15, skipped: 0, failed: 0, conflicts: 0},
        startedAt: new Date(base - 86_400_000),
        heartbeatAt: new Date(base - 86_000_000),
        finishedAt: new Date(base - 86_000_000),
      }),
    )
    await batch.commit()
  })

  afterAll(() => db.terminate())

  it('counts, recent items, error items, runs and health', async () => {
    const {report, code} = await monitorJson(args)
    expect(code).toBe(0)
    expect(report.counts).toEqual({
      total: 103,
      normalizedCurrent: 40,
      normalizedOutdated: 20,
      normalizedNewer: 0,
      notNormalized: 43, // 30 plain + 4 without a version + 3 with a numeric one + 6 error items
      completionPercent: 38.8,
      versions: [
        {version: VERSION, count: 40, current: true, relation: 'current'},
        {version: '0.9', count: 15, current: false, relation: 'older'},
      ],
      outdatedUnknownVersions: 5,
    })
    expectMatches(report, await directCounts(db, VERSION, stalledRun, report.readTime))
    // The latest completed backfill wrote 0.9; the shipped vocabulary is newer, so it is the one judged by.
    expect(report.versionBasis).toMatchObject({version: VERSION, source: 'shipped', runId: oldRun})
    expect(report.recent.map((r) => r.id)).toEqual(expectedRecent)
    expect(report.recent[0]).toEqual({
      id: 'cur-39',
      name: 'Item 39',
      normalizedAt: new Date(base + 13_900).toISOString(),
      version: VERSION,
    })

    expect(report.errors).toMatchObject({runId: stalledRun, total: 6, processed: 60, rate: 0.1})
    expect(report.errors.latest.map((e) => e.itemId)).toEqual(['bad-5', 'bad-4', 'bad-3', 'bad-2', 'bad-1', 'bad-0'])
    expect(report.errors.latest[0].reason).toMatch(/got number/)

    const resume = `wardrobe backfill --environment development --project ${project} --collection ${COL} --emulator-host ${emulatorHost()} --force`
    expect(report.runs.active).toHaveLength(1)
    expect(report.runs.active[0]).toMatchObject({
      runId: stalledRun,
      status: 'stalled',
      scanned: 60,
      total: 103,
      percent: 58.2,
      etaSeconds: null,
      resumeCommand: resume,
    })
    expect(report.runs.active[0].stalledReason).toMatch(/process \d+ on \S+ is gone/)
    expect(report.runs.recent.map((r) => [r.runId, r.status, r.resumeCommand])).toEqual([[oldRun, 'completed', null]])

    expect(report.health.status).toBe('critical')
    const codes = report.health.issues.map((i) => `${i.level}:${i.code}`)
    expect(codes).toEqual(
      expect.arrayContaining(['critical:run-stalled', 'warning:error-rate', 'warning:unmapped-values']),
    )
    // The stalled run will reach outdated and missing items once resumed: no separate advice for them.
    expect(codes.filter((c) => /outdated|not-normalized/.test(c))).toEqual([])
    expect(report.health.recommendations[0]).toBe(`resume it: ${resume}`)
    expect(report.health.recommendations.join('\n')).toMatch(/--batch-size 100/)
    expect(report.health.recommendations.join('\n')).toMatch(/extend the vocabulary/)
    // Bounded: 10 recent items, 2 run records, 6 error records — never the collection.
    expect(report.reads.documents).toBe(18)
  })

  it('prints the dashboard without colour under NO_COLOR, and --save-report writes what --json prints', async () => {
    const human = await runCli(['monitor', ...args, '--save-report'], {env: {...ENV, FORCE_COLOR: '1', NO_COLOR: '1'}})
    expect(human.code).toBe(0)
    expect(human.stdout).not.toMatch(/\x1b\[/)
    expect(human.stdout).toMatch(/HEALTH {2}CRITICAL/)
    expect(human.stdout).toContain(`--collection ${COL} --emulator-host ${emulatorHost()} --force`)
    expect(human.stdout).toMatch(/not normalized +43/)
    const coloured = await runCli(['monitor', ...args], {env: {...ENV, FORCE_COLOR: '1', NO_COLOR: ''}})
    expect(coloured.stdout).toMatch(/\x1b\[/)

    const files = () => fs.readdirSync(out).filter((f) => /^backfill_report_\d{8}_\d{6}(_\d+)?\.json$/.test(f))
    expect(files()).toHaveLength(1)
    const before = new Set(files())
    const {report} = await monitorJson(args, ['--save-report'])
    const added = files().filter((f) => !before.has(f))
    expect(added).toHaveLength(1)
    const saved = MonitorReportSchema.parse(JSON.parse(fs.readFileSync(path.join(out, added[0]), 'utf8')))
    expect(saved).toEqual(report)
  })

  it('--fail-on exits 4 at or past the level, also in --watch at the first such sample', async () => {
    expect((await monitorJson(args, ['--fail-on', 'critical'])).code).toBe(4)
    expect((await monitorJson(args, ['--fail-on', 'warning'])).code).toBe(4)
    const watch = await runCli(['monitor', ...args, '--watch', '--interval', '1', '--fail-on', 'critical', '--json'], {
      env: ENV,
      timeoutMs: 60_000,
    })
    expect(watch.code).toBe(4)
    expect(watch.stdout.trim().split('\n')).toHaveLength(1)
    expect(MonitorReportSchema.parse(JSON.parse(watch.stdout)).health.status).toBe('critical')
  })

  it('--watch without a TTY prints one line per sample, stops cleanly on SIGINT and saves the last report', async () => {
    const watchOut = tmpDir()
    const {child, done} = startCli(
      ['monitor', ...devArgs(project, watchOut), '--watch', '--interval', '1', '--save-report'],
      {env: ENV},
    )
    const lines = lineCollector(child.stdout!)
    await waitFor(() => lines.length >= 2, 60_000)
    child.kill('SIGINT')
    const res = await done
    expect(res.code).toBe(0)
    for (const l of res.stdout.trim().split('\n'))
      expect(l).toMatch(
        / \| critical \| current 40\/103 \(38\.8%\) \| outdated 20 \| not normalized 43 \| errors 6 \| backfill .* stalled 60\/103/,
      )
    expect(res.stderr).toContain('Stopped watching.')
    // --save-report in watch mode: the last sample, once watching stops.
    const saved = fs.readdirSync(watchOut).filter((f) => f.startsWith('backfill_report_'))
    expect(saved).toHaveLength(1)
    expect(
      MonitorReportSchema.parse(JSON.parse(fs.readFileSync(path.join(watchOut, saved[0]), 'utf8'))).counts.total,
    ).toBe(103)
  })
})

describe('wardrobe monitor with a real backfill', () => {
  it('watch follows a backfill in another process; every number equals a direct count during and after', async () => {
    const project = uniqueProject('monitor-watch')
    const db = testDb(project)
    const out = tmpDir()
    const args = devArgs(project, out)
    await writeItems(db, COL, generateItems(20_000, {seed: 7}))
    try {
      const monitor = startCli(['monitor', ...args, '--watch', '--interval', '1', '--json'], {
        env: ENV,
        timeoutMs: 180_000,
      })
      const lines = lineCollector(monitor.child.stdout!)
      await waitFor(() => lines.length >= 1, 60_000)
      // Paced so the run lasts ~25 s: a sample walks the collection several times on the
      // emulator, and a loaded machine stretches samples, not the run.
      const backfill = startCli(['backfill', ...args, '--max-rate', '800', '--json'], {env: ENV, timeoutMs: 170_000})
      const bf = await backfill.done
      expect(bf.code).toBe(3) // finished, with the generator's malformed items as error items
      const stats = JSON.parse(bf.stdout)
      const finishedAt = Date.parse(stats.finishedAt)
      await waitFor(() => lines.some((l) => Date.parse(JSON.parse(l).readTime) > finishedAt + 500), 60_000)
      monitor.child.kill('SIGINT')
      const mon = await monitor.done
      expect(mon.code).toBe(0)

      const reports = mon.stdout
        .trim()
        .split('\n')
        .map((l) => MonitorReportSchema.parse(JSON.parse(l)))
      const during = reports.filter(
        (r) =>
          r.runs.active.some((a) => a.runId === stats.runId && a.status === 'running') &&
          r.counts.normalizedCurrent > 0 &&
          r.counts.normalizedCurrent < 19_000,
      )
      expect(during.length).toBeGreaterThanOrEqual(2)
      const current = reports.map((r) => r.counts.normalizedCurrent)
      expect(current).toEqual([...current].sort((a, b) => a - b)) // never goes back
      expect(during[during.length - 1].counts.normalizedCurrent).toBeGreaterThan(during[0].counts.normalizedCurrent) // growing while it runs
      for (const r of reports) {
        expect(r.counts.normalizedCurrent + r.counts.normalizedOutdated + r.counts.notNormalized).toBe(r.counts.total)
        // 20,000 items, yet only the 10 recent items, the run record, its process record and at most 10 error records are read.
        expect(r.reads.documents).toBeLessThanOrEqual(22)
      }
      // Mid-run, at the very snapshot the report was read at, a reader of every document finds the same numbers.
      const mid = during[Math.floor(during.length / 2)]
      expectMatches(mid, await directCounts(db, VERSION, stats.runId, mid.readTime))
      expect(mid.runs.active[0].etaSeconds).not.toBeNull()

      const last = reports[reports.length - 1]
      expect(last.runs.active).toEqual([])
      expect(last.runs.recent[0]).toMatchObject({
        runId: stats.runId,
        status: 'completed',
        scanned: 20_000,
        updated: stats.updated,
        failed: stats.failed,
      })
      expect(last.counts).toMatchObject({
        total: 20_000,
        normalizedCurrent: stats.updated,
        notNormalized: stats.failed,
        normalizedOutdated: 0,
      })
      expect(last.errors.total).toBe(stats.failed)
      // After: a fresh one-shot report against the collection as it is now.
      const {report} = await monitorJson(args)
      expectMatches(report, await directCounts(db, VERSION, stats.runId, report.readTime))
      expect(report.health.issues.map((i) => i.code)).not.toContain('not-normalized') // only error items are left
    } finally {
      await db.terminate()
    }
  }, 240_000)

  it('a kill -9ed backfill shows as stalled with the command that resumes it', async () => {
    const project = uniqueProject('monitor-stalled')
    const db = testDb(project)
    const out = tmpDir()
    const args = devArgs(project, out)
    await writeItems(db, COL, generateItems(8_000, {seed: 3}))
    try {
      const backfill = startCli(['backfill', ...args, '--max-rate', '500'], {env: ENV})
      let runId = ''
      await waitFor(
        async () => {
          const runs = await db.collection(LEDGER).where('collection', '==', COL).get()
          const run = runs.docs.map((d) => d.data()).find((r) => r.status === 'running' && r.cursor)
          runId = run?.runId ?? ''
          return Boolean(run)
        },
        60_000,
        100,
      )
      backfill.child.kill('SIGKILL')
      await backfill.done

      const stalled = await monitorJson(args, ['--fail-on', 'warning'])
      expect(stalled.code).toBe(4)
      const run = stalled.report.runs.active.find((r) => r.runId === runId)!
      expect(run.status).toBe('stalled')
      expect(run.stalledReason).toMatch(/is gone/)
      const resume = `wardrobe backfill --environment development --project ${project} --collection ${COL} --emulator-host ${emulatorHost()}`
      expect(run.resumeCommand).toBe(resume)
      expect(['warning', 'critical']).toContain(stalled.report.health.status)
      expect(stalled.report.health.recommendations).toContain(`resume it: ${resume}`)
      expectMatches(stalled.report, await directCounts(db, VERSION, runId, stalled.report.readTime))

      // The command as printed resumes that very run to the end.
      const resumed = await runCli([...resume.split(' ').slice(1), '--output-dir', out, '--json'], {env: ENV})
      expect(resumed.code).toBe(3)
      expect(JSON.parse(resumed.stdout)).toMatchObject({runId, resumed: true, status: 'completed', scanned: 8_000})

      const after = await monitorJson(args, ['--fail-on', 'critical'])
      expect(after.code).toBe(0)
      expect(after.report.runs.active).toEqual([])
      expect(after.report.runs.recent[0]).toMatchObject({runId, status: 'completed'})
      expectMatches(after.report, await directCounts(db, VERSION, runId, after.report.readTime))
    } finally {
      await db.terminate()
    }
  }, 240_000)
})

describe('wardrobe monitor after a backfill at a newer vocabulary (issue 12, finding 5)', () => {
  const project = uniqueProject('monitor-version')
  const db = testDb(project)
  const out = tmpDir()
  const args = devArgs(project, out)
  const shippedFile = DEFAULT_TAXONOMY_FILE
  const v11File = path.join(out, 'taxonomy-1.1.json')
  let runId = ''

  beforeAll(async () => {
    fs.writeFileSync(v11File, JSON.stringify({...JSON.parse(fs.readFileSync(shippedFile, 'utf8')), version: '1.1'}))
    const batch = db.batch()
    for (let i = 0; i < 40; i++)
      batch.set(db.collection(COL).doc(`item-${String(i).padStart(2, '0')}`), {
        name: `Item ${i}`,
        style: ['Casual'],
        occasion: 'Work',
        mood: [],
        season: ['Fall'],
      })
    await batch.commit()
    const backfill = await runCli(['backfill', ...args, '--taxonomy', v11File, '--json'], {env: ENV})
    expect(backfill.code).toBe(0)
    runId = JSON.parse(backfill.stdout).runId
  })
  afterAll(() => db.terminate())

  const rewrites = (recommendations: string[]) => recommendations.filter((r) => / backfill /.test(r))

  it('without --taxonomy judges by the latest completed backfill: 100% and nothing to re-run', async () => {
    const {report, code} = await monitorJson(args, ['--fail-on', 'warning'])
    expect(code).toBe(0)
    expect(report.version).toBe('1.1')
    expect(report.versionBasis).toEqual({
      version: '1.1',
      source: 'ledger',
      runId,
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
      note: expect.stringContaining(runId),
    })
    expect(report.counts).toMatchObject({
      total: 40,
      normalizedCurrent: 40,
      normalizedOutdated: 0,
      notNormalized: 0,
      completionPercent: 100,
    })
    expect(report.health.status).toBe('healthy')
    expect(rewrites(report.health.recommendations)).toEqual([])
    const human = await runCli(['monitor', ...args], {env: ENV})
    expect(human.stdout).toMatch(/vocabulary 1\.1 \(latest completed backfill backfill-\S+\)/)
  })

  it('with --taxonomy at the older 1.0 it recommends nothing that rewrites the 1.1 items, and says why', async () => {
    // Items added since the backfill: a backfill at 1.0 for them would also rewrite the 40 at 1.1.
    await db
      .collection(COL)
      .doc('new-0')
      .set({name: 'New', style: ['Boho']})
    await db
      .collection(COL)
      .doc('new-1')
      .set({name: 'New', style: ['Boho']})
    const {report, code} = await monitorJson(args, ['--taxonomy', shippedFile])
    expect(code).toBe(0)
    expect(report.versionBasis).toEqual({
      version: VERSION,
      source: 'flag',
      runId,
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
      note: `from --taxonomy; the latest completed backfill (${runId}) wrote 1.1`,
    })
    expect(report.counts).toMatchObject({
      normalizedCurrent: 0,
      normalizedNewer: 40,
      normalizedOutdated: 0,
      notNormalized: 2,
    })
    expect(report.health.issues.find((i) => i.code === 'not-normalized')).toMatchObject({
      message: expect.stringMatching(
        /a backfill at 1\.0 would rewrite the items at newer versions \(1\.1: 40\), so none is recommended$/,
      ),
      recommendation: null,
    })
    expect(report.counts.versions).toEqual(
      expect.arrayContaining([{version: '1.1', count: 40, current: false, relation: 'newer'}]),
    )
    expect(rewrites(report.health.recommendations)).toEqual([])
    const newer = report.health.issues.find((i) => i.code === 'newer-versions')
    expect(newer?.message).toMatch(
      /40 items are at versions newer than 1\.0 .*1\.1: 40.*would rewrite them to the older vocabulary/,
    )
    expect(newer?.recommendation).toMatch(/--taxonomy <taxonomy file with version 1\.1>/)
  })

  it('an edited 1.1 file (same version, other content) does not count the items as current', async () => {
    const edited = JSON.parse(fs.readFileSync(v11File, 'utf8'))
    edited.fields.style = {...edited.fields.style, 'gorpcore test term': ['gorpcore test alias']}
    const editedFile = path.join(out, 'taxonomy-1.1-edited.json')
    fs.writeFileSync(editedFile, JSON.stringify(edited))
    const {report} = await monitorJson(args, ['--taxonomy', editedFile])
    expect(report.versionBasis).toMatchObject({version: '1.1', source: 'flag'})
    // Before, version equality alone made all 40 current under a vocabulary that never wrote them.
    expect(report.counts).toMatchObject({normalizedCurrent: 0, normalizedOutdated: 40})
    expect(report.health.recommendations.join('\n')).toMatch(/backfill .*--taxonomy .*taxonomy-1\.1-edited\.json/)
  })
})

describe('health rules', () => {
  const counts = (over: Partial<Counts> = {}): Counts => ({
    total: 1000,
    normalizedCurrent: 1000,
    normalizedOutdated: 0,
    normalizedNewer: 0,
    notNormalized: 0,
    completionPercent: 100,
    versions: [{version: '2.0', count: 1000, current: true, relation: 'current'}],
    outdatedUnknownVersions: 0,
    ...over,
  })
  const run = (over: Partial<RunView> = {}): RunView => ({
    runId: 'backfill-x',
    kind: 'backfill',
    status: 'completed',
    stalledReason: null,
    partitions: null,
    control: null,
    environment: 'staging',
    version: '2.0',
    force: false,
    batchSize: 500,
    owner: 'op@host pid 1',
    startedAt: '2026-01-01T00:00:00.000Z',
    heartbeatAt: '2026-01-01T00:10:00.000Z',
    heartbeatAgeSeconds: 5,
    finishedAt: '2026-01-01T00:10:00.000Z',
    total: 1000,
    scanned: 1000,
    updated: 1000,
    skipped: 0,
    failed: 0,
    conflicts: 0,
    percent: 100,
    rate: 100,
    etaSeconds: null,
    resumes: 0,
    error: null,
    resumeCommand: null,
    ...over,
  })
  const facts = (over: Partial<HealthFacts> = {}): HealthFacts => ({
    counts: counts(),
    active: [],
    latestBackfill: run(),
    errors: {runId: 'backfill-x', total: 0, processed: 1000, rate: 0, latest: []},
    unmapped: {runId: 'backfill-x', distinct: 0, occurrences: 0, rate: 0, top: []},
    staleAfterSeconds: 60,
    ledgerCollection: LEDGER,
    version: '2.0',
    basis: {
      version: '2.0',
      source: 'ledger',
      runId: 'backfill-x',
      hash: null,
      note: 'the version the latest completed backfill (backfill-x) wrote',
    },
    commands: {
      backfill: 'wardrobe backfill --environment staging --project p --collection c',
      dryRun: 'wardrobe backfill --environment staging --project p --collection c --dry-run',
    },
    ...over,
  })
  const codes = (f: HealthFacts) => assessHealth(f, DEFAULT_THRESHOLDS).issues.map((i) => `${i.level}:${i.code}`)

  it('healthy when done; idle before any backfill or on an empty collection', () => {
    expect(assessHealth(facts())).toEqual({status: 'healthy', issues: [], recommendations: []})
    const before = assessHealth(
      facts({
        latestBackfill: null,
        counts: counts({normalizedCurrent: 0, notNormalized: 1000, completionPercent: 0}),
        errors: {runId: null, total: 0, processed: null, rate: null, latest: []},
      }),
    )
    expect(before.status).toBe('idle')
    expect(before.recommendations[0]).toMatch(
      /start with a dry run: wardrobe backfill .* --dry-run, then wardrobe backfill/,
    )
    expect(assessHealth(facts({latestBackfill: null, counts: counts({total: 0, normalizedCurrent: 0})})).status).toBe(
      'idle',
    )
  })

  it('outdated versions and items left over ask for the backfill; a live backfill silences them', () => {
    const outdated = facts({
      counts: counts({
        normalizedCurrent: 700,
        normalizedOutdated: 300,
        versions: [
          {version: '2.0', count: 700, current: true, relation: 'current'},
          {version: '1.0', count: 300, current: false, relation: 'older'},
        ],
      }),
    })
    const h = assessHealth(outdated)
    expect(h.status).toBe('warning')
    expect(h.issues[0]).toMatchObject({
      code: 'outdated-versions',
      message: expect.stringContaining('1.0: 300'),
      recommendation: expect.stringContaining('wardrobe backfill --environment staging'),
    })
    expect(
      codes({...outdated, active: [run({status: 'running', finishedAt: null, percent: 50, etaSeconds: 5})]}),
    ).toEqual(['info:run-active'])
    // Error items stay without normalized: only what is beyond them is flagged.
    const errors = {runId: 'backfill-x', total: 20, processed: 1000, rate: 0.02, latest: []}
    expect(codes(facts({counts: counts({normalizedCurrent: 980, notNormalized: 20}), errors}))).toEqual([
      'info:error-items',
    ])
    expect(codes(facts({counts: counts({normalizedCurrent: 970, notNormalized: 30}), errors}))).toEqual([
      'warning:not-normalized',
      'info:error-items',
    ])
  })

  it('stalled, failed and interrupted runs come with the command that resumes them', () => {
    const resumeCommand = 'wardrobe backfill --environment staging --project p --collection c'
    const stalled = assessHealth(
      facts({
        active: [run({status: 'stalled', stalledReason: 'its heartbeat is 300s old', resumeCommand, finishedAt: null})],
      }),
    )
    expect(stalled.status).toBe('critical')
    expect(stalled.recommendations).toEqual([`resume it: ${resumeCommand}`])
    expect(
      assessHealth(facts({latestBackfill: run({status: 'failed', error: 'UNAVAILABLE', resumeCommand})})).issues[0],
    ).toMatchObject({
      level: 'critical',
      code: 'run-failed',
      recommendation: `fix the cause, then resume it: ${resumeCommand}`,
    })
    expect(assessHealth(facts({latestBackfill: run({status: 'interrupted', resumeCommand})})).issues[0]).toMatchObject({
      level: 'warning',
      code: 'run-interrupted',
    })
    expect(codes(facts({active: [run({status: 'running', heartbeatAgeSeconds: 45, finishedAt: null})]}))).toEqual([
      'warning:heartbeat-late',
    ])
    expect(codes(facts({active: [run({status: 'running', version: '3.0', finishedAt: null})]}))).toEqual([
      'warning:version-mismatch',
      'info:run-active',
    ])
  })

  it('error rate over the threshold: inspect the errors, lower the batch size; unmapped values: extend the vocabulary', () => {
    const errs = (rate: number) =>
      facts({
        errors: {runId: 'backfill-x', total: rate * 1000, processed: 1000, rate, latest: []},
        counts: counts({normalizedCurrent: 1000 - rate * 1000, notNormalized: rate * 1000}),
      })
    expect(assessHealth(errs(0.04)).status).toBe('healthy')
    const warn = assessHealth(errs(0.08))
    expect(warn.status).toBe('warning')
    expect(warn.recommendations[0]).toMatch(
      /inspect the error items .*_backfill_runs\/backfill-x\/errors.*--batch-size 250$/,
    )
    expect(assessHealth(errs(0.3)).status).toBe('critical')
    expect(assessHealth(errs(0.08), {...DEFAULT_THRESHOLDS, errorRateWarning: 0.1}).status).toBe('healthy')
    const unmapped = assessHealth(
      facts({
        unmapped: {
          runId: 'backfill-x',
          distinct: 3,
          occurrences: 90,
          rate: 0.09,
          top: [{field: 'season', value: 'harmattan', count: 60}],
        },
      }),
    )
    expect(unmapped.issues[0]).toMatchObject({
      level: 'warning',
      code: 'unmapped-values',
      message: expect.stringContaining('season:"harmattan" ×60'),
      recommendation: expect.stringContaining('extend the vocabulary'),
    })
  })

  it('compares dotted versions by number; other versions only by equality', () => {
    expect(compareVersions('1.10', '1.9')).toBe(1)
    expect(compareVersions('1.0', '1')).toBe(0)
    expect(compareVersions('0.9', '1.0')).toBe(-1)
    expect(compareVersions('2024-beta', '1.0')).toBeNull()
    expect(compareVersions('beta', 'beta')).toBe(0)
  })

  it('judges by the taxonomy given, else the latest completed backfill, else (or when newer) the shipped vocabulary', () => {
    const rec = (runId: string, version: string, status: string, startedAt: number) =>
      RunRecordSchema.parse({
        runId,
        kind: 'backfill',
        environment: 'production',
        projectId: 'p',
        collection: 'c',
        version,
        resumeKey: 'k',
        owner: {user: 'u', host: 'h', pid: 1},
        status,
        counters: {},
        cursor: null,
        startedAt: new Date(startedAt),
        heartbeatAt: new Date(startedAt),
      })
    // Newest first, as monitor sorts them: a failed 1.2 run does not make 1.2 current.
    const runs = [rec('r3', '1.2', 'failed', 3), rec('r2', '1.1', 'completed', 2), rec('r1', '1.0', 'completed', 1)]
    expect(judgeVersion(undefined, runs, '1.0')).toMatchObject({version: '1.1', source: 'ledger', runId: 'r2'})
    expect(judgeVersion(undefined, runs, '1.10')).toMatchObject({version: '1.10', source: 'shipped', runId: 'r2'})
    expect(judgeVersion(undefined, [rec('r', 'beta', 'completed', 1)], '1.0')).toMatchObject({
      version: 'beta',
      source: 'ledger',
    })
    expect(judgeVersion(undefined, [], '1.0')).toMatchObject({version: '1.0', source: 'shipped', runId: null})
    expect(judgeVersion({version: '1.0', source: 'flag'}, runs, '1.0')).toMatchObject({
      version: '1.0',
      source: 'flag',
      note: expect.stringContaining('r2'),
    })
  })

  it('never recommends a backfill, fresh or resumed, that would rewrite items at newer or incomparable versions', () => {
    const versions: Counts['versions'] = [
      {version: '2.0', count: 100, current: true, relation: 'current'},
      {version: '1.0', count: 300, current: false, relation: 'older'},
      {version: '2.1', count: 500, current: false, relation: 'newer'},
      {version: 'exp', count: 50, current: false, relation: 'incomparable'},
    ]
    const mixed = facts({
      basis: {version: '2.0', source: 'flag', runId: 'backfill-x', hash: null, note: 'from --taxonomy'},
      counts: counts({
        normalizedCurrent: 100,
        normalizedOutdated: 300,
        normalizedNewer: 550,
        notNormalized: 50,
        completionPercent: 10,
        versions,
      }),
      latestBackfill: run({status: 'interrupted', version: '2.0', resumeCommand: 'wardrobe backfill --taxonomy x'}),
    })
    const h = assessHealth(mixed)
    expect(h.recommendations.filter((r) => / backfill /.test(r))).toEqual([])
    expect(h.issues.find((i) => i.code === 'newer-versions')).toMatchObject({
      level: 'warning',
      message: expect.stringMatching(
        /^550 items are at versions newer than 2\.0 \(2\.1: 500, exp: 50\).*from --taxonomy.*rewrite them to the older vocabulary/,
      ),
      recommendation: 'measure against their vocabulary: monitor with --taxonomy <taxonomy file with version 2.1>',
    })
    expect(h.issues.find((i) => i.code === 'run-interrupted')?.message).toMatch(
      /would rewrite the items at newer versions \(2\.1: 500, exp: 50\), so none is recommended$/,
    )
    // Resuming a run at the newest version is no downgrade: recommended, unless items carry a version not comparable with it.
    const upgrade = {
      ...mixed,
      latestBackfill: run({status: 'interrupted', version: '2.1', resumeCommand: 'wardrobe backfill --taxonomy y'}),
    }
    expect(assessHealth(upgrade).recommendations).not.toContain('resume it: wardrobe backfill --taxonomy y')
    const numeric = counts({
      normalizedCurrent: 100,
      normalizedOutdated: 300,
      normalizedNewer: 500,
      completionPercent: 10,
      versions: versions.slice(0, 3),
    })
    expect(assessHealth({...upgrade, counts: numeric}).recommendations).toContain(
      'resume it: wardrobe backfill --taxonomy y',
    )
  })

  it('resume commands: same force, rollback scope, and the taxonomy of the run version', () => {
    const record = RunRecordSchema.parse({
      runId: 'r',
      kind: 'backfill',
      environment: 'production',
      projectId: 'my-app',
      collection: 'items',
      version: '0.9',
      resumeKey: 'k',
      options: {force: true},
      owner: {user: 'u', host: 'h', pid: 1},
      status: 'interrupted',
      counters: {},
      cursor: null,
      startedAt: new Date(),
      heartbeatAt: new Date(),
    })
    const ctx = {bin: 'wardrobe', targetArgs: [], shippedVersion: '1.0'}
    expect(resumeCommandFor(record, ctx, '1.0')).toBe(
      'wardrobe backfill --environment production --project my-app --collection items --force --taxonomy <taxonomy file with version 0.9>',
    )
    expect(resumeCommandFor(record, {...ctx, taxonomyFile: '/t/v09 file.json'}, '0.9')).toBe(
      "wardrobe backfill --environment production --project my-app --collection items --force --taxonomy '/t/v09 file.json'",
    )
    expect(resumeCommandFor({...record, version: '1.0', options: {force: false}}, ctx, '1.0')).toBe(
      'wardrobe backfill --environment production --project my-app --collection items',
    )
    expect(
      resumeCommandFor(
        {...record, kind: 'rollback', version: '0.9', options: {version: '0.9', run: null}},
        {...ctx, targetArgs: ['--ledger-collection', 'runs']},
        '1.0',
      ),
    ).toBe(
      'wardrobe rollback --environment production --project my-app --collection items --ledger-collection runs --version 0.9',
    )
  })
})

describe('dashboard rendering', () => {
  it('honours NO_COLOR and needs a terminal (or FORCE_COLOR) for colour', () => {
    expect(colorLevel({isTTY: true}, {NO_COLOR: '1', FORCE_COLOR: '3'})).toBe(0)
    expect(colorLevel({isTTY: false}, {})).toBe(0)
  })

  it('fits a terminal screen but never cuts a command', () => {
    const command = `wardrobe backfill --environment development --project ${'p'.repeat(80)} --collection c`
    const report = MonitorReportSchema.parse({
      kind: 'monitor',
      generatedAt: '2026-01-01T00:00:10.000Z',
      readTime: '2026-01-01T00:00:10.000Z',
      environment: 'development',
      projectId: 'p',
      collection: 'c',
      ledgerCollection: LEDGER,
      version: '1.0',
      versionBasis: {
        version: '1.0',
        source: 'shipped',
        runId: null,
        note: 'the vocabulary shipped with the package: no completed backfill in the ledger',
      },
      counts: {
        total: 10,
        normalizedCurrent: 5,
        normalizedOutdated: 0,
        notNormalized: 5,
        completionPercent: 50,
        versions: [{version: '1.0', count: 5, current: true, relation: 'current'}],
        outdatedUnknownVersions: 0,
      },
      recent: Array.from({length: 10}, (_, i) => ({
        id: `id${i}`,
        name: `A rather long item name number ${i} that goes on`,
        normalizedAt: '2026-01-01T00:00:00.000Z',
        version: '1.0',
      })),
      errors: {runId: null, total: 0, processed: null, rate: null, latest: []},
      unmapped: {runId: null, distinct: 0, occurrences: 0, rate: null, top: []},
      runs: {active: [], recent: [], unreadable: 0},
      health: {
        status: 'critical',
        issues: [
          {level: 'critical', code: 'run-stalled', message: 'm'.repeat(200), recommendation: `resume it: ${command}`},
        ],
        recommendations: [`resume it: ${command}`],
      },
      reads: {aggregations: 3, documents: 10},
    })
    const lines = renderDashboard(report, {width: 60, height: 20})
    expect(lines.filter((l) => visibleLength(l) > 60 && !l.includes(command))).toEqual([])
    const coloured = renderDashboard(report, {width: 60, height: 20, colorLevel: 1})
    expect(coloured.filter((l) => visibleLength(l) > 60 && !l.includes(command))).toEqual([])
    expect(lines.some((l) => l.includes(command))).toBe(true)
    expect(lines[lines.length - 1]).toMatch(/more lines/)
    expect(renderDashboard(report).join('\n')).toContain('m'.repeat(200))
    expect(renderWatchLine(report)).toBe(
      '2026-01-01T00:00:10.000Z | critical | current 5/10 (50.0%) | outdated 0 | not normalized 5 | errors 0',
    )
  })
})
