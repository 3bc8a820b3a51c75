import {diffFull, fullSnapshot, readCollection, writtenByTool} from './checker'
import {COL, ChaosContext, ended, parseJson, refusedFor, Report, Scenario, takeOver, Target} from './context'
import {sleep} from './proxy'
import {legacyItems, runFlags} from './seeds'

/** The smallest stale limit the config takes: the frozen holder's lease runs out in seconds. */
const STALE_AFTER_SECONDS = 5

/**
 * One case: a backfill SIGSTOPped at ~30% (a closed laptop lid, a long GC or network stall),
 * a rollback that takes the collection over once the holder is stale, then SIGCONT. The
 * woken holder must send no item write at all, writes it had queued included.
 */
async function freezeCase(ctx: ChaosContext, report: Report, label: string, extra: string[]): Promise<void> {
  const t = await Target.create(ctx, `freeze-${label}`)
  try {
    await t.seedGenerated(ctx.items, ctx.seed)
    await t.seed(legacyItems(ctx.items))
    const pristine = fullSnapshot(await readCollection(t.db, COL))
    const total = pristine.size
    const config = t.config('freeze', {staleAfterSeconds: STALE_AFTER_SECONDS})

    const holder = t.start('backfill', ['--config', config, ...runFlags(ctx), ...extra])
    const run = await t.waitForCheckpoint(holder.child, Math.round(total * 0.3))
    if (!run) return void report.check(false, `${label}: the backfill is running at 30%`, ended(await holder.done))
    holder.child.kill('SIGSTOP')
    const frozenAt = Date.now()
    ctx.log(
      `${label}: SIGSTOP after ${run.partitions > 0 ? await t.shardedScanned(run.runId) : run.counters.scanned} items checkpointed`,
    )

    const {refused, winner} = await takeOver(t, 'rollback', ['--config', config], {}, 60_000)
    report.check(
      refused.every((r) => refusedFor(r, run.runId)),
      `${label}: a rollback is refused naming the run while its lease may be live`,
      refused.map(ended).join('; '),
    )
    if (!winner)
      return void report.check(
        false,
        `${label}: a rollback takes over the frozen backfill`,
        `still refused after ${refused.length} attempts`,
      )
    const rb = await winner.done
    report.check(
      rb.code === 0 && parseJson(rb.stdout)?.status === 'completed',
      `${label}: the rollback takes over and completes with exit 0`,
      ended(rb),
    )
    report.check(
      rb.stderr.includes(`took over run ${run.runId}`),
      `${label}: it says it took over the frozen run`,
      rb.stderr.slice(0, 300),
    )
    const rolledBack = await readCollection(t.db, COL)
    const notRestored = diffFull(pristine, fullSnapshot(rolledBack))
    report.check(
      notRestored.length === 0,
      `${label}: the rollback leaves every document exactly as before the backfill`,
      `${notRestored.length} differ, e.g. ${notRestored.slice(0, 3).join(', ')}`,
    )

    // Past the stale limit and the rollback: the woken process's fence has long run out.
    holder.child.kill('SIGCONT')
    report.figure(`${label}FrozenSeconds`, Number(((Date.now() - frozenAt) / 1000).toFixed(1)))
    const woke = await holder.done
    report.check(
      woke.code === 1 && /lease lost/.test(woke.stderr),
      `${label}: once woken it exits 1 with "lease lost" on stderr`,
      ended(woke),
    )
    // Any item write would change an update time (the rollback left no item as the backfill would
    // write it). A request sent just before the exit may still reach the emulator: give it a moment.
    await sleep(500)
    const after = await readCollection(t.db, COL)
    const writtenAfterWake = [...new Set([...rolledBack.keys(), ...after.keys()])].filter((id) => {
      const [was, now] = [rolledBack.get(id), after.get(id)]
      return !was || !now || !now.updateTime.isEqual(was.updateTime)
    })
    report.figure(`${label}WrittenAfterWake`, writtenAfterWake.length)
    report.check(
      writtenAfterWake.length === 0,
      `${label}: no item is written after it wakes (update times unchanged)`,
      `${writtenAfterWake.length} written, e.g. ${writtenAfterWake.slice(0, 3).join(', ')}`,
    )

    const rec = await t.runRecord(run.runId)
    report.check(
      rec?.status === 'interrupted' && /taken over by rollback/.test(rec.error ?? ''),
      `${label}: the frozen run is marked interrupted, taken over by the rollback`,
      `status ${rec?.status}, error ${rec?.error}`,
    )
    report.check(!(await t.locked()), `${label}: the lock is released`)

    const changed = diffFull(pristine, fullSnapshot(after))
    const residue = [...after.values()].filter((d) => writtenByTool(d.data.normalized)).length
    report.check(
      changed.length === 0,
      `${label}: the collection ends exactly as the rollback left it: as before the backfill, no normalized of the tool`,
      `${changed.length} differ (${residue} hold a backfill's normalized)`,
    )
    report.add('items', after.size)
    report.add('lost', changed.length - residue)
    report.add('stale', residue)
  } finally {
    await t.close()
  }
}

/** Scenario 9: a holder frozen past its lease and taken over writes nothing once it wakes. */
export const freeze: Scenario = {
  name: 'freeze',
  title: 'a one-worker and a sharded backfill SIGSTOPped past the stale limit, taken over by a rollback, then SIGCONT',
  async run(ctx, report) {
    await freezeCase(ctx, report, 'one-worker', [])
    await freezeCase(ctx, report, 'sharded', ['--workers', '2', '--partitions', '4'])
  },
}
