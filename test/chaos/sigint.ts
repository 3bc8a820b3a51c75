import {readCollection, snapshotOriginals, verifyBackfill} from './checker'
import {between, COL, ended, parseJson, Scenario, Target} from './context'
import {latestFile, readJson} from '../support/harness'
import {sleep} from './proxy'
import {legacyItems, runFlags} from './seeds'

/** Scenario 2: SIGINT mid-run: exit 130, the run marked interrupted, the same command resumes it. */
export const sigint: Scenario = {
  name: 'sigint',
  title: 'SIGINT mid-run, then the same command',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'sigint')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      await t.seed(legacyItems(ctx.items))
      const before = await snapshotOriginals(t.db, COL)
      const total = before.size
      const flags = runFlags(ctx)

      // At most 60%: the checkpoint the test sees lags the run by up to an interval and a
      // window of writes (~12% of this ~25 s run), the random sleep adds up to 8%, and a SIGINT
      // once every item is handed over only drains the last writes (the run then completes).
      const point = 0.2 + ctx.random() * 0.4
      const {child, done, args} = t.start('backfill', flags)
      const at = await t.waitForCheckpoint(child, Math.round(point * total))
      if (!at)
        return void report.check(false, `the run is still going at ${Math.round(point * 100)}%`, ended(await done))
      await sleep(between(ctx.random, 0, 2000))
      const signalled = Date.now()
      child.kill('SIGINT')
      const res = await done
      const stopSeconds = (Date.now() - signalled) / 1000
      const stats = parseJson(res.stdout)
      report.figure('faults', `1 × SIGINT at ~${Math.round(point * 100)}%`)
      report.check(res.code === 130, 'SIGINT ends the run with exit 130', ended(res))
      // Draining a window of writes takes seconds; minutes mean something hangs on the way out.
      report.check(stopSeconds < 60, 'the process exits within 60 s of the SIGINT', `${stopSeconds.toFixed(0)} s`)
      report.figure('stopSeconds', Number(stopSeconds.toFixed(1)))
      report.check(
        stats?.status === 'interrupted',
        '--json prints its stats on stdout: status interrupted',
        `stdout ${JSON.stringify(res.stdout.slice(0, 200))}`,
      )
      const file = readJson(latestFile(t.out, 'backfill_stats_'))
      report.check(
        file?.status === 'interrupted' && file.runId === at.runId,
        'its stats file says interrupted',
        `status ${file?.status}`,
      )
      const rec = await t.runRecord(at.runId)
      report.check(
        rec?.status === 'interrupted' && rec.finishedAt !== null,
        'the ledger marks the run interrupted',
        `status ${rec?.status}`,
      )
      report.check((await t.activeRun()) === undefined, 'the collection lock is released')
      const resume = typeof file?.resumeCommand === 'string' ? (file.resumeCommand as string) : ''
      report.check(
        resume.startsWith('wardrobe backfill') &&
          args.slice(1).every((a) => resume.includes(a)) &&
          res.stderr.includes(`Resume with: ${resume}`),
        'it prints the command that resumes it (the same command)',
        `${resume} / stderr ${res.stderr.slice(-300)}`,
      )

      // Drain, then checkpoint: the checkpoint covers every write the interrupted run made.
      const cursor = rec?.cursor ?? null
      const docs = await readCollection(t.db, COL)
      const ids = [...docs.keys()].sort()
      const covered = cursor === null ? 0 : ids.filter((id) => id <= cursor).length
      const beyond = ids.filter(
        (id) => (cursor === null || id > cursor) && docs.get(id)!.data.normalized?.run_id === at.runId,
      ).length
      report.check(
        beyond === 0,
        'in-flight writes were drained before the last checkpoint: no write of the run lies beyond it',
        `${beyond} items after cursor ${cursor} hold the run's normalized`,
      )
      report.check(
        rec?.counters.scanned === covered,
        'its counters match its checkpoint',
        `scanned ${rec?.counters.scanned}, ids up to the cursor ${covered}`,
      )

      const expectScan = await t.countAfter(cursor)
      const again = await t.run('backfill', flags)
      const s = again.stats
      report.check(
        again.code === 3 && s?.status === 'completed',
        'the same command completes it (exit 3: the generated malformed items)',
        ended(again),
      )
      report.check(
        s?.resumed === true && s?.runId === at.runId,
        'it resumed the interrupted run',
        `resumed ${s?.resumed}, run ${s?.runId} vs ${at.runId}`,
      )
      report.check(
        s?.scannedHere === expectScan,
        `it scanned only the ${expectScan} items after the checkpoint`,
        `scanned ${s?.scannedHere}`,
      )
      report.check(s?.scanned === total, 'the run counted every item once', `scanned ${s?.scanned} of ${total}`)
      report.figure('reScanned', `${s?.scannedHere}/${total}`)
      report.verdict('after the resume', await verifyBackfill(t.db, COL, before, ctx.vocab))
    } finally {
      await t.close()
    }
  },
}
