import {snapshotOriginals, verifyBackfill} from './checker'
import {between, ChaosContext, COL, ended, parseJson, Report, Scenario, Target} from './context'
import {FaultProxy, sleep} from './proxy'
import {runFlags} from './seeds'

/**
 * After a faulty run: it completed through retries (exit 3, the generated malformed items),
 * or it failed with exit 1 leaving a checkpoint, from which a re-run without faults
 * completes. Either way nothing is lost.
 */
async function settle(ctx: ChaosContext, report: Report, t: Target, label: string, res: Awaited<ReturnType<Target['run']>>, runId: string | undefined, total: number): Promise<void> {
  let s = res.stats
  const completed = res.code === 3 && s?.status === 'completed'
  const failed = res.code === 1
  report.check(completed || failed, `${label}: the run completes through retries or fails with exit 1`, ended(res))
  report.figure(`${label}Outcome`, completed ? 'completed through retries' : `exit ${res.code ?? res.signal}`)
  if (!completed) {
    const rec = runId ? await t.runRecord(runId) : undefined
    report.check(rec !== undefined && rec.status !== 'completed' && rec.cursor !== null, `${label}: the failed run left a checkpoint`, `status ${rec?.status}, cursor ${rec?.cursor}`)
    // Stats when the ledger could still be reached at the end; otherwise the error (the run stays "running" for a takeover).
    const said = s?.status === 'failed' ? `stats: failed, ${s.error}` : s?.error?.message ? `error: ${s.error.message}` : undefined
    report.check(said !== undefined, `${label}: the failed run says why on stdout`, JSON.stringify(res.stdout.slice(0, 300)))
    report.figure(`${label}Failure`, (said ?? '?').slice(0, 160))
    const expectScan = await t.countAfter(rec?.cursor ?? null)
    const again = await t.run('backfill', runFlags(ctx))
    report.check(again.code === 3 && again.stats?.resumed === true && again.stats?.runId === runId, `${label}: a re-run resumes it and completes`, ended(again))
    report.check(again.stats?.scannedHere === expectScan, `${label}: the re-run scanned only the ${expectScan} items after the checkpoint`, `scanned ${again.stats?.scannedHere}`)
    s = again.stats
  }
  report.check(s?.scanned === total, `${label}: the run counted every item once`, `scanned ${s?.scanned} of ${total}`)
  ctx.log(`${label}: verifying`)
}

/** Two minutes (30 s for small CI runs); CHAOS_OUTAGE_SECONDS overrides. */
function outageSeconds(ctx: ChaosContext): number {
  return Number(process.env.CHAOS_OUTAGE_SECONDS ?? Math.round(Math.min(120, Math.max(30, ctx.items / 400))))
}

/** Scenario 4: a TCP proxy between the CLI and the emulator drops every connection for seconds, or adds latency. */
export const network: Scenario = {
  name: 'network',
  title: 'network faults through a TCP proxy: dropped connections, latency, an outage',
  async run(ctx, report) {
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
        const {child, done} = a.start('backfill', runFlags(ctx), via)
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
        runId ??= parseJson(res.stdout)?.runId
        proxy.setLatency(0)
        report.figure('faults', `${latency} ms latency each way, drops of ${drops.map((d) => `${(d / 1000).toFixed(1)} s`).join(', ')}`)
        report.check(drops.length >= 2, 'at least two drops hit the running backfill', `${drops.length}`)
        await settle(ctx, report, a, 'drops', {...res, stats: parseJson(res.stdout)}, runId, before.size)
        const v = await verifyBackfill(a.db, COL, before, ctx.vocab)
        report.verdict('after drops and latency', v)
      } finally {
        await a.close()
      }

      // B: an outage of minutes: the run rides it out through retries or gives up with exit 1.
      const b = await Target.create(ctx, 'network-b')
      try {
        await b.seedGenerated(ctx.items, ctx.seed + 1)
        const before = await snapshotOriginals(b.db, COL)
        const {child, done} = b.start('backfill', runFlags(ctx), via)
        const at = await b.waitForCheckpoint(child, Math.round((0.2 + ctx.random() * 0.4) * before.size))
        const seconds = outageSeconds(ctx)
        ctx.log(`outage of ${seconds} s from ${at?.counters.scanned} items`)
        proxy.startDrop()
        const gaveUp = await Promise.race([done, sleep(seconds * 1000).then(() => null)])
        proxy.restore()
        const res = gaveUp ?? (await done)
        report.figure('outage', `${seconds} s, ${gaveUp ? 'the run ended during it' : 'the run was still retrying when it ended'}`)
        await settle(ctx, report, b, 'outage', {...res, stats: parseJson(res.stdout)}, at?.runId, before.size)
        report.verdict('after the outage', await verifyBackfill(b.db, COL, before, ctx.vocab))
      } finally {
        await b.close()
      }
      report.figure('connections', `${proxy.connections} opened, ${proxy.resets} reset, ${proxy.refused} refused`)
    } finally {
      await proxy.close()
    }
  },
}
