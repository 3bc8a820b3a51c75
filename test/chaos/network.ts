import {snapshotOriginals, verifyBackfill} from './checker'
import {between, COL, ended, parseJson, Scenario, sigkill, Target} from './context'
import {FaultProxy, sleep} from './proxy'
import {runFlags} from './seeds'

/** The CLI's outage budget in this scenario (config `outageAfterSeconds`); CHAOS_OUTAGE_BUDGET overrides. */
function outageBudget(): number {
  const seconds = Number(process.env.CHAOS_OUTAGE_BUDGET ?? 20)
  if (!Number.isInteger(seconds) || seconds < 5)
    throw new Error(`CHAOS_OUTAGE_BUDGET must be an integer >= 5 (seconds), got ${process.env.CHAOS_OUTAGE_BUDGET}`)
  return seconds
}

/**
 * After the outage budget the run gives up: the ledger deadline (15 s) and the bounded close
 * (5 s) follow, the rest is slack for a loaded machine. Without the budget the client would
 * go on retrying each write for up to 600 s.
 */
const GIVE_UP_SLACK_SECONDS = 45

/** Scenario 4: a TCP proxy between the CLI and the emulator drops every connection for seconds, or adds latency. */
export const network: Scenario = {
  name: 'network',
  title: 'network faults through a TCP proxy: dropped connections, latency, a short and a long outage',
  async run(ctx, report) {
    const budget = outageBudget()
    const proxy = FaultProxy.forHost(ctx.host)
    const via = await proxy.listen()
    try {
      // A: latency throughout and several drops of a few seconds at random points.
      const a = await Target.create(ctx, 'network-a')
      try {
        await a.seedGenerated(ctx.items, ctx.seed)
        const before = await snapshotOriginals(a.db, COL)
        const latency = between(ctx.random, 20, 60)
        proxy.setLatency(latency)
        const {child, done} = a.start('backfill', runFlags(ctx), {host: via})
        const drops: number[] = []
        let runId: string | undefined
        for (const point of [0.15, 0.4, 0.65].map((p) => p + ctx.random() * 0.15)) {
          const at = await a.waitForCheckpoint(child, Math.round(point * before.size))
          if (!at) break
          runId ??= at.runId
          const ms = between(ctx.random, 2000, 8000)
          ctx.log(`dropping every connection for ${ms} ms at ${at.counters.scanned} items`)
          drops.push(ms)
          await proxy.drop(ms)
        }
        const res = await done
        const s = parseJson(res.stdout)
        proxy.setLatency(0)
        report.figure(
          'faults',
          `${latency} ms latency each way, drops of ${drops.map((d) => `${(d / 1000).toFixed(1)} s`).join(', ')}`,
        )
        report.check(drops.length >= 2, 'at least two drops hit the running backfill', `${drops.length}`)
        report.check(
          res.code === 3 && s?.status === 'completed' && s?.runId === runId && s?.resumed === false,
          'drops: the run completes through retries (exit 3: the generated malformed items)',
          ended(res),
        )
        report.check(
          s?.scanned === before.size,
          'drops: the run counted every item once',
          `scanned ${s?.scanned} of ${before.size}`,
        )
        report.verdict('after drops and latency', await verifyBackfill(a.db, COL, before, ctx.vocab))
      } finally {
        await a.close()
      }

      // B: an outage well inside the budget: the run rides it out through retries and completes.
      const b = await Target.create(ctx, 'network-b')
      try {
        await b.seedGenerated(ctx.items, ctx.seed + 1)
        const before = await snapshotOriginals(b.db, COL)
        const {child, done} = b.start(
          'backfill',
          ['--config', b.config('outage', {outageAfterSeconds: budget}), ...runFlags(ctx)],
          {host: via},
        )
        const at = await b.waitForCheckpoint(child, Math.round((0.2 + ctx.random() * 0.4) * before.size))
        const seconds = Math.max(3, Math.round(budget / 4))
        ctx.log(`short outage of ${seconds} s from ${at?.counters.scanned} items (budget ${budget} s)`)
        report.check(at !== undefined, 'the short outage hit the running backfill')
        await proxy.drop(seconds * 1000)
        const res = await done
        const s = parseJson(res.stdout)
        report.figure('shortOutage', `${seconds} s of a ${budget} s budget`)
        report.check(
          res.code === 3 && s?.status === 'completed' && s?.resumed === false,
          `a ${seconds} s outage (budget ${budget} s): the run completes through retries`,
          ended(res),
        )
        report.check(
          s?.scanned === before.size,
          'short outage: the run counted every item once',
          `scanned ${s?.scanned} of ${before.size}`,
        )
        report.verdict('after the short outage', await verifyBackfill(b.db, COL, before, ctx.vocab))
      } finally {
        await b.close()
      }

      // C: an outage that outlasts the budget: the run gives up with exit 1 and its checkpoint
      // (status failed, or "running" when the ledger itself could not be reached), and a
      // re-run once the network is back resumes it and completes.
      const c = await Target.create(ctx, 'network-c')
      try {
        await c.seedGenerated(ctx.items, ctx.seed + 2)
        const before = await snapshotOriginals(c.db, COL)
        const {child, done} = c.start(
          'backfill',
          ['--config', c.config('outage', {outageAfterSeconds: budget}), ...runFlags(ctx)],
          {host: via},
        )
        const at = await c.waitForCheckpoint(child, Math.round((0.2 + ctx.random() * 0.4) * before.size))
        report.check(at !== undefined, 'the long outage hit the running backfill')
        ctx.log(`outage from ${at?.counters.scanned} items until the run gives up (budget ${budget} s)`)
        proxy.startDrop()
        const cut = Date.now()
        const limit = budget + GIVE_UP_SLACK_SECONDS
        const gaveUp = await Promise.race([done, sleep(limit * 1000).then(() => null)])
        const seconds = Math.round((Date.now() - cut) / 1000)
        report.check(
          gaveUp !== null,
          `the run gives up within ${limit} s of an outage that does not end (budget ${budget} s)`,
          `still running after ${seconds} s`,
        )
        const res = gaveUp ?? (await sigkill(child, done))
        proxy.restore()
        report.figure(
          'longOutage',
          gaveUp
            ? `run gave up ${seconds} s into it (budget ${budget} s)`
            : `run still retrying after ${seconds} s: killed`,
        )
        const s = parseJson(res.stdout)
        const runId = at?.runId
        const rec = runId ? await c.runRecord(runId) : undefined
        if (gaveUp) {
          report.check(res.code === 1 && s?.status === 'failed', 'long outage: exit 1, stats say failed', ended(res))
          report.check(
            /Firestore unreachable/.test(res.stderr) && /^Resume with: /m.test(res.stderr),
            'long outage: stderr says why and how to resume',
            ended(res),
          )
          report.check(
            rec !== undefined && (rec.status === 'failed' || rec.status === 'running') && rec.cursor !== null,
            'long outage: the run record is failed (or running, its ledger write lost) with a checkpoint',
            `status ${rec?.status}, cursor ${rec?.cursor}`,
          )
          report.figure('longOutageRecord', `${rec?.status}, ${rec?.counters.scanned} items checkpointed`)
        }
        const expectScan = await c.countAfter(rec?.cursor ?? null)
        const again = await c.run('backfill', runFlags(ctx))
        report.check(
          again.code === 3 && again.stats?.resumed === true && again.stats?.runId === runId,
          'long outage: a re-run resumes it and completes',
          ended(again),
        )
        report.check(
          again.stats?.scannedHere === expectScan,
          `long outage: the re-run scanned only the ${expectScan} items after the checkpoint`,
          `scanned ${again.stats?.scannedHere}`,
        )
        report.check(
          again.stats?.scanned === before.size,
          'long outage: the run counted every item once',
          `scanned ${again.stats?.scanned} of ${before.size}`,
        )
        report.verdict('after the long outage', await verifyBackfill(c.db, COL, before, ctx.vocab))
      } finally {
        await c.close()
      }
      report.figure('connections', `${proxy.connections} opened, ${proxy.resets} reset, ${proxy.refused} refused`)
    } finally {
      await proxy.close()
    }
  },
}
