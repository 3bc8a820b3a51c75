/**
 * `wardrobe runs …` through the real CLI, against live backfills (child processes) on the
 * test emulator: list and show, pause and resume, throttle, stop (with production's
 * confirmation), resuming a run no process runs, a change a frozen process has not
 * acknowledged (in `runs show` and `monitor`), and the one-line errors. Backfills are kept
 * slow with a small --max-rate so that each is still running when it is driven.
 */
import os from 'node:os'
import {Firestore} from 'firebase-admin/firestore'
import {MonitorReportSchema} from '../../src/services/monitor'
import {RunChangeReportSchema, RunListReportSchema, RunShowReportSchema, RunShowReport} from '../../src/services/runs'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {
  CliResult,
  devArgs,
  emulatorHost,
  runCli,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

const COL = 'wardrobe_items'
const LEDGER = '_backfill_runs'
const ME = `${os.userInfo().username}@${os.hostname()}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const normalizedCount = async (db: Firestore) =>
  (await db.collection(COL).where('normalized.normalized_version', '!=', '').count().get()).data().count

/** The running run's id, once its process has reported (its process record has a heartbeat) and it has written something. */
async function liveRun(db: Firestore): Promise<string> {
  let runId = ''
  await waitFor(
    async () => {
      const run = (await db.collection(LEDGER).where('status', '==', 'running').get()).docs[0]
      if (!run) return false
      const processes = await run.ref.collection('processes').get()
      runId = run.id
      return processes.docs.some((p) => p.get('state') === 'writing') && (await normalizedCount(db)) > 0
    },
    60_000,
    100,
  )
  return runId
}

describe('wardrobe runs', () => {
  let project: string
  let db: Firestore
  let args: string[]
  const runs = (command: string, extra: string[] = []) => runCli(['runs', command, ...args, ...extra])
  const show = async (runId: string): Promise<RunShowReport> =>
    RunShowReportSchema.parse(JSON.parse((await runs('show', [runId, '--json'])).stdout))

  beforeEach(async () => {
    project = uniqueProject('runs')
    db = testDb(project)
    args = devArgs(project, tmpDir())
  })
  afterEach(async () => {
    await db.terminate()
  })

  test('list and show a live backfill; pause it (it says who paused it and why, and writes nothing), resume it, throttle it, lift the limit: it completes', async () => {
    const N = 800
    await writeItems(db, COL, generateItems(N, {seed: 41, malformedRate: 0}))
    const backfill = startWatched(['backfill', ...args, '--max-rate', '40'], {timeoutMs: 120_000})
    const runId = await liveRun(db)

    const listed = await runs('list')
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(new RegExp(`${runId} {2}backfill {2}running \\(active\\).*1 live process`))
    expect(listed.stdout).toContain('control: running, max rate 40/s run-wide, no windows')
    expect(listed.stdout).toMatch(/pid \d+: limit 40\/s \(cap\)/)
    const list = RunListReportSchema.parse(JSON.parse((await runs('list', ['--json'])).stdout))
    expect(list.activeRunId).toBe(runId)
    expect(list.runs[0]).toMatchObject({
      runId,
      status: 'running',
      owners: [expect.stringMatching(new RegExp(`^${ME} pid \\d+$`))],
      control: {state: 'running', maxRate: 40},
    })

    const paused = await runs('pause', ['--reason', 'db alert'])
    expect(paused.code).toBe(0)
    expect(paused.stdout).toContain(`Paused run ${runId} (1 live process; each stops writing within 5 s`)
    // The backfill says who paused it and why; `runs show` says it has applied the change.
    await waitFor(() => /paused by .*: db alert/.test(backfill.stderr()), 10_000)
    expect(backfill.stderr()).toContain(`backfill: paused by ${ME}: db alert`)
    await waitFor(async () => (await show(runId)).run.control.ack?.status === 'applied', 10_000, 250)
    const held = await show(runId)
    expect(held.run.control).toMatchObject({state: 'paused', seq: 1, ack: {seq: 1, status: 'applied', waitingOn: []}})
    expect(held.processes).toEqual([
      expect.objectContaining({live: true, seenSeq: 1, state: 'paused', limit: 0, reason: `paused by ${ME}: db alert`}),
    ])
    expect(held.changes.map((c) => c.text)).toEqual([
      expect.stringMatching(/^start 40\/s by /),
      expect.stringMatching(new RegExp(`^pause by ${ME} at \\S+: db alert$`)),
    ])
    const shown = await runs('show', [runId])
    expect(shown.stdout).toContain(
      `control: paused, max rate 40/s run-wide, no windows; last change #1: pause by ${ME}`,
    )
    expect(shown.stdout).toMatch(/#1 pause by .*: db alert/)
    // Paused: writes in flight drain, then nothing more is written.
    await sleep(1500)
    const before = await normalizedCount(db)
    await sleep(3000)
    expect(await normalizedCount(db)).toBe(before)
    expect(before).toBeLessThan(N)

    const again = await runs('pause')
    expect({code: again.code, stdout: again.stdout.trim()}).toEqual({
      code: 0,
      stdout: `Run ${runId} is already paused: nothing changed.`,
    })

    const resumed = await runs('resume')
    expect(resumed.code).toBe(0)
    expect(resumed.stdout).toContain(`Resumed run ${runId} (1 live process; each writes again within 5 s)`)
    await waitFor(() => /backfill: writing again/.test(backfill.stderr()), 10_000)
    await waitFor(async () => (await normalizedCount(db)) > before, 10_000, 250)

    const throttled = RunChangeReportSchema.parse(
      JSON.parse((await runs('throttle', ['--max-rate', '15', '--json'])).stdout),
    )
    expect(throttled).toMatchObject({
      runId,
      changed: true,
      maxRate: 15,
      before: {maxRate: 40},
      live: [expect.any(String)],
    })
    await waitFor(async () => (await show(runId)).processes[0]?.reason === 'limit 15/s (cap)', 10_000, 250)

    const lifted = await runs('throttle', ['--max-rate', 'off'])
    expect(lifted.stdout).toContain(
      `Run ${runId}: max rate off run-wide (was 15/s; 1 live process, each takes its share within 5 s)`,
    )
    const done = await backfill.done
    expect(done.code).toBe(0)
    expect(await normalizedCount(db)).toBe(N)
    const ended = await show(runId)
    expect(ended.run).toMatchObject({
      status: 'completed',
      owners: [],
      control: {state: 'running', maxRate: null, ack: null},
    })
    expect(ended.changes.map((c) => c.action)).toEqual(['start', 'pause', 'resume', 'throttle', 'throttle'])

    // An ended run: nothing to change.
    const late = await runs('pause', ['--run', runId])
    expect(late.code).toBe(2)
    expect(late.stderr.trim()).toBe(
      `Error: run ${runId} is completed: there is nothing to pause (fix: list runs with \`wardrobe runs list\`)`,
    )
  })

  test('stop in production: refused without --yes and without a TTY; with --yes every process drains and exits 130; `runs resume` then prints the command that resumes it, and that command does', async () => {
    const N = 500
    await writeItems(db, COL, generateItems(N, {seed: 42, malformedRate: 0}))
    const prod = [
      '--environment',
      'production',
      '--project',
      project,
      '--emulator-host',
      emulatorHost(),
      '--output-dir',
      tmpDir(),
    ]
    const backfill = startWatched(['backfill', ...prod, '--yes', '--max-rate', '40'], {timeoutMs: 120_000})
    const runId = await liveRun(db)

    const refused = await runCli(['runs', 'stop', ...prod, '--reason', 'incident 4711'])
    expect(refused.code).toBe(2)
    expect(refused.stderr.trim()).toBe(
      `Error: refusing to stop run ${runId} in production project ${project} without confirmation (fix: run it in a terminal and type the project id, or pass --yes in scripts)`,
    )
    const refusedJson = await runCli(['runs', 'stop', ...prod, '--json'])
    expect({code: refusedJson.code, error: JSON.parse(refusedJson.stdout).error.message}).toEqual({
      code: 2,
      error: expect.stringMatching(/without confirmation/),
    })
    expect((await show2(prod, runId)).run.control).toMatchObject({state: 'running', seq: 0})

    const stopped = await runCli(['runs', 'stop', ...prod, '--yes', '--reason', 'incident 4711'])
    expect(stopped.code).toBe(0)
    expect(stopped.stderr).toContain(`production: stop run ${runId} in project ${project} (confirmed by --yes)`)
    expect(stopped.stdout).toContain(
      `Stopping run ${runId} (1 live process; each drains, checkpoints and exits 130 within 5 s; the run ends interrupted): incident 4711`,
    )
    const command = /Re-running its command resumes it: (.*)/.exec(stopped.stdout)?.[1]
    expect(command).toMatch(/^wardrobe backfill --environment production /)
    const stoppedAt = Date.now()
    const exited: CliResult = await backfill.done
    expect(exited.code).toBe(130)
    expect(Date.now() - stoppedAt).toBeLessThan(15_000)
    expect(exited.stderr).toContain('backfill: stopping')
    const record = (await db.collection(LEDGER).doc(runId).get()).data()!
    expect(record.status).toBe('interrupted')
    const written = await normalizedCount(db)
    expect(written).toBeLessThan(N)

    // No process runs it any more: resume says so and prints the command; running that command resumes the run.
    const resume = await runCli(['runs', 'resume', ...prod])
    expect(resume.code).toBe(0)
    expect(resume.stdout.trim()).toBe(`No process of run ${runId} is running (interrupted); resume it with: ${command}`)
    const [bin, ...rest] = command!.split(' ')
    expect(bin).toBe('wardrobe')
    const rerun = await runCli(rest, {timeoutMs: 120_000})
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toContain(`Resuming run ${runId}`)
    expect(await normalizedCount(db)).toBe(N)
    expect((await db.collection(LEDGER).doc(runId).get()).data()).toMatchObject({status: 'completed', resumes: 1})
  })

  test('a pause a frozen process has not applied shows as not acknowledged after 30 s, naming it, in `runs show` and `monitor`; woken, it applies it', async () => {
    await writeItems(db, COL, generateItems(600, {seed: 43, malformedRate: 0}))
    const backfill = startWatched(['backfill', ...args, '--max-rate', '20'], {timeoutMs: 150_000})
    try {
      const runId = await liveRun(db)
      const pid = backfill.child.pid!
      backfill.child.kill('SIGSTOP')
      const paused = await runs('pause', ['--reason', 'freeze drill'])
      expect(paused.code).toBe(0)
      const name = `${ME} pid ${pid}`
      expect((await show(runId)).run.control.ack).toMatchObject({seq: 1, status: 'pending', waitingOn: [name]})
      await waitFor(async () => (await show(runId)).run.control.ack?.status === 'not acknowledged', 50_000, 1000)

      const text = await runs('show')
      expect(text.stdout).toContain(`change #1 not acknowledged by ${name} after 30 s`)
      const monitor = MonitorReportSchema.parse(JSON.parse((await runCli(['monitor', ...args, '--json'])).stdout))
      expect(monitor.runs.active[0].control).toMatchObject({
        state: 'paused',
        ack: {status: 'not acknowledged', waitingOn: [name]},
      })
      expect(monitor.health.issues).toContainEqual(
        expect.objectContaining({
          level: 'warning',
          code: 'control-not-acknowledged',
          message: expect.stringContaining(name),
        }),
      )
      const dashboard = await runCli(['monitor', ...args])
      expect(dashboard.stdout).toContain(`change #1 not acknowledged by ${name} after 30 s`)

      backfill.child.kill('SIGCONT')
      await waitFor(async () => (await show(runId)).run.control.ack?.status === 'applied', 15_000, 250)
      expect(await runs('stop')).toMatchObject({code: 0})
      expect((await backfill.done).code).toBe(130)
    } finally {
      backfill.child.kill('SIGCONT')
      backfill.child.kill('SIGKILL')
    }
  })

  test("a sharded run of two processes: list names both owners and counts its partitions' progress; show has its partitions and each process's share of the cap; one stop ends both", async () => {
    await writeItems(db, COL, generateItems(900, {seed: 44, malformedRate: 0}))
    const first = startWatched(['backfill', ...args, '--workers', '2', '--partitions', '4', '--max-rate', '30'], {
      timeoutMs: 120_000,
    })
    const runId = await liveRun(db)
    const second = startWatched(['backfill', ...args, '--max-rate', '30'], {timeoutMs: 120_000})
    // Shares follow the workers: 2 of 3 and 1 of 3 of the run-wide 30/s, once both have heartbeated.
    await waitFor(
      async () =>
        (await show(runId)).processes
          .map((p) => p.reason)
          .sort()
          .join() === 'limit 10/s (cap),limit 20/s (cap)',
      20_000,
      500,
    )
    const shown = await show(runId)
    expect(shown.processes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({live: true, workers: 2, limit: 20}),
        expect.objectContaining({live: true, workers: 1, limit: 10}),
      ]),
    )
    expect(shown.partitions && Object.values(shown.partitions).reduce((a, b) => a + b, 0)).toBe(4)
    expect(shown.partitions?.running).toBeGreaterThan(0)
    const list = RunListReportSchema.parse(JSON.parse((await runs('list', ['--json'])).stdout))
    expect(list.runs[0].owners).toHaveLength(2)
    // The run record's counters are written at its end: until then, the partitions' sum.
    expect((await db.collection(LEDGER).doc(runId).get()).get('counters.scanned')).toBe(0)
    expect(list.runs[0]).toMatchObject({runId, partitions: 4, scanned: expect.any(Number)})
    expect(list.runs[0].scanned).toBeGreaterThan(0)

    const stopped = await runs('stop', ['--reason', 'both'])
    expect(stopped.stdout).toContain(`Stopping run ${runId} (2 live processes;`)
    expect([(await first.done).code, (await second.done).code]).toEqual([130, 130])
    expect((await db.collection(LEDGER).doc(runId).get()).get('status')).toBe('interrupted')
  })

  test('one-line errors with the fix, exit 2: no active run, no such run, a rate that is not one', async () => {
    const none = await runs('pause')
    expect(none.code).toBe(2)
    expect(none.stderr.trim()).toBe(
      `Error: no run is active for wardrobe_items of project ${project} (fix: pass --run ID (\`wardrobe runs list\` lists the runs), or check --environment, --project, --collection and --ledger-collection)`,
    )
    const missing = await runs('show', ['backfill-nope'])
    expect(missing.code).toBe(2)
    expect(missing.stderr.trim()).toBe(
      `Error: no run backfill-nope in _backfill_runs of project ${project} (fix: list the runs with \`wardrobe runs list\` (same --environment, --project and --ledger-collection))`,
    )
    for (const rate of ['0', 'fast', '2.5']) {
      const bad = await runs('throttle', ['--max-rate', rate])
      expect({rate, code: bad.code, stderr: bad.stderr.trim()}).toEqual({
        rate,
        code: 2,
        stderr: `Error: --max-rate ${rate} is not a rate (fix: pass --max-rate N, writes per second for the whole run (an integer of at least 1), or --max-rate off to lift the limit)`,
      })
    }
    const json = await runs('resume', ['--json'])
    expect({code: json.code, error: JSON.parse(json.stdout).error}).toEqual({
      code: 2,
      error: expect.objectContaining({
        message: expect.stringMatching(/^no run is active or unfinished for wardrobe_items/),
      }),
    })
    const empty = await runs('list')
    expect({code: empty.code, stdout: empty.stdout}).toEqual({
      code: 0,
      stdout: expect.stringContaining('no runs recorded'),
    })
  })

  /** `runs show --json` of a run with the given target flags. */
  async function show2(target: string[], runId: string): Promise<RunShowReport> {
    return RunShowReportSchema.parse(JSON.parse((await runCli(['runs', 'show', runId, ...target, '--json'])).stdout))
  }
})

/** A CLI child whose stderr can be read while it runs. */
function startWatched(
  args: string[],
  options: Parameters<typeof startCli>[1],
): ReturnType<typeof startCli> & {stderr: () => string} {
  const cli = startCli(args, options)
  let err = ''
  cli.child.stderr!.on('data', (d) => (err += d))
  return {...cli, stderr: () => err}
}
