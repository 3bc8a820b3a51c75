import {snapshotOriginals, verifyBackfill} from './checker'
import {COL, ended, killThenResume, Scenario, Target} from './context'
import {legacyItems, runFlags} from './seeds'

/** Scenario 1: kill -9 at several random points of a backfill, then re-run. */
export const kill9: Scenario = {
  name: 'kill9',
  title: 'kill -9 at random points of a backfill, then re-run',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'kill9')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      await t.seed(legacyItems(ctx.items))
      const before = await snapshotOriginals(t.db, COL)
      const final = await killThenResume(t, report, 'backfill', runFlags(ctx), before.size)
      if (!final) return
      report.check(
        final.code === 3 && final.stats?.status === 'completed',
        'the re-run completes (exit 3: the generated malformed items)',
        ended(final),
      )
      report.verdict('after the re-run', await verifyBackfill(t.db, COL, before, ctx.vocab))
    } finally {
      await t.close()
    }
  },
}
