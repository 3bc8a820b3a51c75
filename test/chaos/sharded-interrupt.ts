import {DEFAULT_LEDGER} from '../../src/config'
import {waitFor} from '../support/harness'
import {snapshotOriginals, verifyBackfill} from './checker'
import {COL, ended, parseJson, refusedFor, Scenario, Target} from './context'
import {legacyItems} from './seeds'

/**
 * Scenario 10: Ctrl-C in one of two processes of a sharded run stops that process only: the
 * run stays `running` and keeps its lock (a rollback is refused naming it), and the other
 * process finishes its partitions too and ends the run `completed`.
 */
export const shardedInterrupt: Scenario = {
  name: 'sharded-interrupt',
  title: 'Ctrl-C in one of two processes of a sharded run; a rollback meanwhile',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'sharded-interrupt')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      await t.seed(legacyItems(ctx.items))
      const before = await snapshotOriginals(t.db, COL)
      const total = before.size
      const config = t.config('sharded', {staleAfterSeconds: 10})
      // Per process: the survivor alone needs ~30 s for the whole, so it is still at work when the rollback comes.
      const flags = (index: number) => [
        '--config',
        config,
        '--shard-count',
        '2',
        '--shard-index',
        String(index),
        '--partitions',
        '6',
        '--max-rate',
        String(Math.max(10, Math.round(total / 30))),
      ]

      const a = t.start('backfill', flags(0))
      const run = await t.waitForCheckpoint(a.child, Math.round(total * 0.05))
      if (!run) return void report.check(false, 'the first process is running the sharded run', ended(await a.done))
      const b = t.start('backfill', flags(1))
      const processes = t.db.collection(DEFAULT_LEDGER).doc(run.runId).collection('processes')
      const joined = await waitFor(async () => (await processes.get()).size === 2, 60_000, 100).then(
        () => true,
        () => false,
      )
      report.check(joined, 'the second process joins the run', `${(await processes.get()).size} processes`)
      await t.waitForCheckpoint(b.child, Math.round(total * 0.15))

      const signalled = Date.now()
      a.child.kill('SIGINT')
      const stopped = await a.done
      const stopSeconds = (Date.now() - signalled) / 1000
      report.figure(
        'faults',
        `1 × SIGINT in process 1 of 2 at ~${Math.round((100 * (await t.shardedScanned(run.runId))) / total)}%`,
      )
      report.figure('stopSeconds', Number(stopSeconds.toFixed(1)))
      report.check(
        stopped.code === 130 && stopSeconds < 60,
        'the interrupted process exits 130 within 60 s',
        `${ended(stopped)} after ${stopSeconds.toFixed(0)} s`,
      )
      const mid = await t.runRecord(run.runId)
      const bAlive = b.child.exitCode === null
      report.check(
        bAlive && mid?.status === 'running' && (await t.activeRun())?.runId === run.runId,
        'the run stays running and keeps the lock while the other process works',
        `status ${mid?.status}, other process ${bAlive ? 'alive' : 'ended'}`,
      )

      const rollback = await t.run('rollback', ['--config', config])
      report.check(
        refusedFor(rollback, run.runId),
        'a rollback started meanwhile is refused with exit 2 naming the run',
        ended(rollback),
      )

      const res = await b.done
      const s = parseJson(res.stdout)
      report.check(
        res.code === 3 && s?.status === 'completed' && s?.runId === run.runId,
        'the other process finishes the run completed (exit 3: malformed items)',
        ended(res),
      )
      const rec = await t.runRecord(run.runId)
      report.check(
        rec?.status === 'completed' && rec.counters.scanned === total,
        'the run record says completed, every item counted once',
        `status ${rec?.status}, scanned ${rec?.counters.scanned} of ${total}`,
      )
      const parts = (await t.db.collection(DEFAULT_LEDGER).doc(run.runId).collection('partitions').get()).docs.map(
        (d) => d.get('status') as string,
      )
      report.check(
        parts.length === 6 && parts.every((p) => p === 'done'),
        'every partition is done, the interrupted process’s too',
        parts.join(', '),
      )
      report.check(!(await t.locked()), 'the lock is released')
      report.figure(
        'scannedHere',
        `${parseJson(stopped.stdout)?.scannedHere ?? '?'} + ${s?.scannedHere ?? '?'} of ${total}`,
      )
      report.verdict('after the run', await verifyBackfill(t.db, COL, before, ctx.vocab))
    } finally {
      await t.close()
    }
  },
}
