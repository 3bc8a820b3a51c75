import fs from 'node:fs'
import path from 'node:path'
import {snapshotOriginals, verifyBackfill} from './checker'
import {COL, ended, parseJson, Report, Scenario, sigkill, Target} from './context'
import {runFlags} from './seeds'
import {CliResult, waitFor} from '../support/harness'

/** The refusal under --json: exit 2 and an error naming the holder's run, host and pid. */
function checkRefusal(report: Report, res: CliResult, holder: {runId: string; pid: number}, what: string): void {
  const message = String(parseJson(res.stdout)?.error?.message ?? res.stderr)
  report.check(res.code === 2, `${what} is refused with exit 2`, ended(res))
  report.check(
    message.includes(holder.runId) && message.includes(`pid ${holder.pid}`),
    `${what}'s refusal names the holder (run ${holder.runId}, pid ${holder.pid})`,
    message,
  )
}

/** Scenario 5: two backfills at once: one runs, the other is refused naming the holder; after kill -9 a new run takes over. */
export const lock: Scenario = {
  name: 'lock',
  title: 'two backfills at once on one collection; kill -9 of the holder, then a new run',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'lock')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      const before = await snapshotOriginals(t.db, COL)
      const flags = runFlags(ctx)

      // Started in the same instant: the lock transaction lets exactly one through.
      const a = t.start('backfill', flags)
      const b = t.start('backfill', flags)
      const first = await Promise.race([
        a.done.then((res) => ({res, loser: a, winner: b})),
        b.done.then((res) => ({res, loser: b, winner: a})),
      ])
      const {winner, res: lost} = first
      const holding = await t.waitForCheckpoint(winner.child, 1)
      if (!holding) {
        report.check(
          false,
          'of two runs started at once, one is refused while the other runs',
          `first ended: ${ended(lost)}; the other: ${ended(await winner.done)}`,
        )
        return
      }
      report.check(true, 'of two runs started at once, one runs')
      checkRefusal(report, lost, {runId: holding.runId, pid: winner.child.pid!}, 'the other')

      // A third one while the first is mid-run.
      checkRefusal(
        report,
        await t.start('backfill', flags).done,
        {runId: holding.runId, pid: winner.child.pid!},
        'a later one',
      )

      const killedAt = await t.waitForCheckpoint(winner.child, Math.round(before.size * 0.4))
      const killed = await sigkill(winner.child, winner.done)
      report.check(
        killed.signal === 'SIGKILL' && killedAt !== undefined,
        'the holder is killed with -9 mid-run',
        ended(killed),
      )
      report.check(
        (await t.runRecord(holding.runId))?.status === 'running',
        'its run is left "running", holding the lock',
      )

      const c = t.start('backfill', flags)
      const taken = await t.waitForCheckpoint(c.child, 1)
      report.check(
        taken?.runId === holding.runId && taken.owner.pid === c.child.pid,
        'a new run takes over the dead holder and resumes its run',
        `run ${taken?.runId}, pid ${taken?.owner.pid}`,
      )
      // The record shows the new owner as soon as the takeover commits, a moment before the
      // process hears so and logs it: wait for the line rather than read the log once.
      const logFile = path.join(t.out, 'backfill_normalize.log')
      const logged = () =>
        fs.existsSync(logFile) &&
        fs
          .readFileSync(logFile, 'utf8')
          .split('\n')
          .some((l) => l.includes('took over a stale run') && l.includes(`"pid":${winner.child.pid}`))
      const takeoverLogged = await waitFor(logged, 15_000).then(
        () => true,
        () => false,
      )
      report.check(takeoverLogged, 'the takeover is logged with the dead holder')
      checkRefusal(
        report,
        await t.start('backfill', flags).done,
        {runId: holding.runId, pid: c.child.pid!},
        'a run started during the takeover run',
      )

      const res = await c.done
      const s = parseJson(res.stdout)
      report.check(
        res.code === 3 && s?.status === 'completed' && s?.resumed === true,
        'the takeover run completes (exit 3: malformed items), resumed',
        ended(res),
      )
      report.check(
        res.stderr.includes(`took over run ${holding.runId}`) && res.stderr.includes(`pid ${winner.child.pid}`),
        'it tells the operator whose run it took over',
        res.stderr.slice(0, 300),
      )
      report.check(
        s?.scanned === before.size,
        'the run counted every item once',
        `scanned ${s?.scanned} of ${before.size}`,
      )
      report.figure('faults', `${t.runsStarted - 2} competing starts, 1 × kill -9`)
      report.verdict('after the takeover', await verifyBackfill(t.db, COL, before, ctx.vocab))
    } finally {
      await t.close()
    }
  },
}
