import {DEFAULT_LEDGER} from '../../src/config'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {snapshotOriginals, verifyBackfill} from './checker'
import {
  COL,
  ended,
  otherMachine,
  parseJson,
  refusedFor,
  Scenario,
  sigkill,
  takeOver,
  Target,
  taxonomyWithVersion,
} from './context'
import {legacyItems} from './seeds'

/** Minutes off: far beyond any stale limit, so a reader trusting its own clock would misjudge at once. */
const SKEW_MS = 3 * 60_000

/**
 * Scenario 8: other hosts' clocks minutes ahead and behind. A live run is never taken over
 * (the holder's heartbeat is judged on Firestore's clock), and a dead one on another host
 * (its pid means nothing here) is taken over once stale by that clock, even from a host behind.
 */
export const skew: Scenario = {
  name: 'skew',
  title: 'hosts with clocks 3 min ahead and behind: a live run is never taken over, a dead one promptly',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'skew')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      await t.seed(legacyItems(ctx.items))
      const before = await snapshotOriginals(t.db, COL)
      const total = before.size
      // A run of about `seconds` whatever the size.
      const paced = (seconds: number) => ['--max-rate', String(Math.max(10, Math.round(total / seconds)))]

      // A: a live backfill (vocabulary 0.9), and rollbacks from hosts 3 min ahead and 3 min behind.
      const live = {staleAfterSeconds: 10}
      const liveConfig = t.config('live', live)
      const v09 = taxonomyWithVersion(t.out, '0.9')
      // About 30 s: long enough for several attempts spanning the stale limit.
      const flagsA = ['--config', liveConfig, '--taxonomy', v09, ...paced(30)]
      const holder = t.start('backfill', flagsA)
      const run = await t.waitForCheckpoint(holder.child, Math.round(total * 0.1))
      if (!run) return void report.check(false, 'the backfill is running at 10%', ended(await holder.done))
      const attempts: {skew: number; res: Awaited<ReturnType<Target['run']>>}[] = []
      const startedAt = Date.now()
      // Until 75%: a rollback started later might legitimately follow the run's end.
      for (let i = 0; ; i++) {
        const at = await t.runRecord(run.runId)
        if (holder.child.exitCode !== null || at?.status !== 'running' || at.counters.scanned > total * 0.75) break
        const skewMs = i % 2 === 0 ? SKEW_MS : -SKEW_MS
        attempts.push({
          skew: skewMs,
          res: await t.run('rollback', ['--config', liveConfig], {
            env: otherMachine(skewMs, skewMs > 0 ? 'host-ahead' : 'host-behind'),
          }),
        })
      }
      const span = (Date.now() - startedAt) / 1000
      const wrong = attempts.filter((a) => !refusedFor(a.res, run.runId))
      report.check(
        attempts.some((a) => a.skew > 0) && attempts.some((a) => a.skew < 0),
        'rollbacks were tried from a host 3 min ahead and one 3 min behind while the backfill ran',
        `${attempts.length} attempts`,
      )
      report.check(
        wrong.length === 0,
        `each of ${attempts.length} rollbacks over ${span.toFixed(0)} s (stale limit ${live.staleAfterSeconds} s) is refused with exit 2 naming the live run`,
        wrong.map((a) => `clock ${a.skew / 1000}s: ${ended(a.res)}`).join('; '),
      )
      report.figure('refusedLive', `${attempts.length - wrong.length}/${attempts.length} over ${span.toFixed(0)} s`)
      const a = await holder.done
      const recA = await t.runRecord(run.runId)
      report.check(
        a.code === 3 && recA?.status === 'completed' && recA.resumes === 0,
        'the live backfill completes (exit 3: malformed items), never taken over',
        `${ended(a)}, status ${recA?.status}, resumes ${recA?.resumes}`,
      )
      const rollbacks = (await t.db.collection(DEFAULT_LEDGER).where('kind', '==', 'rollback').count().get()).data()
        .count
      report.check(rollbacks === 0, 'no rollback run was ever started', `${rollbacks} rollback runs in the ledger`)
      report.verdict('after the live run (0.9)', await verifyBackfill(t.db, COL, before, loadVocabulary(v09)), false)

      // B: a backfill (1.0) on another host, killed -9; a host 3 min behind takes it over.
      const dead = {staleAfterSeconds: 8}
      // Only needs to be mid-run when killed: about 15 s.
      const flagsB = ['--config', t.config('dead', dead), ...paced(15)]
      const victim = t.start('backfill', flagsB, {env: otherMachine(0, 'dead-host')})
      const deadRun = await t.waitForCheckpoint(victim.child, Math.round(total * 0.3))
      if (!deadRun)
        return void report.check(false, 'the backfill on the other host is running at 30%', ended(await victim.done))
      const killed = await sigkill(victim.child, victim.done)
      report.check(killed.signal === 'SIGKILL', 'the backfill on another host is killed with -9 mid-run', ended(killed))
      const limitMs = (dead.staleAfterSeconds + 10) * 1000
      const {refused, winner, heldAfterMs} = await takeOver(
        t,
        'backfill',
        flagsB,
        {env: otherMachine(-SKEW_MS, 'host-behind')},
        limitMs + 20_000,
      )
      const waited = heldAfterMs / 1000
      report.figure('takeoverSeconds', Number(waited.toFixed(1)))
      report.figure('refusedDead', refused.length)
      report.check(
        refused.every((r) => refusedFor(r, deadRun.runId)),
        'until then each attempt is refused naming the run',
        refused.map(ended).join('; '),
      )
      if (!winner)
        return void report.check(
          false,
          `a host 3 min behind takes over the dead run`,
          `still refused after ${waited.toFixed(0)} s`,
        )
      report.check(
        heldAfterMs < limitMs,
        `a host 3 min behind takes the dead run over within the stale limit + 10 s (${limitMs / 1000} s)`,
        `after ${waited.toFixed(1)} s`,
      )
      const b = await winner.done
      const stats = parseJson(b.stdout) ?? {}
      report.check(
        b.code === 3 && stats.status === 'completed' && stats.resumed === true && stats.runId === deadRun.runId,
        'it resumes the dead run and completes it (exit 3)',
        ended(b),
      )
      report.check(
        /took over run .*Firestore's clock/.test(b.stderr),
        "it says whose run it took over, judged by Firestore's clock",
        b.stderr.slice(0, 300),
      )
      report.check(stats.scanned === total, 'the run counted every item once', `scanned ${stats.scanned} of ${total}`)
      report.check(!(await t.locked()), 'the lock is released')
      report.verdict('after the takeover (1.0)', await verifyBackfill(t.db, COL, before, ctx.vocab))
    } finally {
      await t.close()
    }
  },
}
