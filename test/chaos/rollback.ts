import {diffFull, fullSnapshot, originalsSnapshot, readCollection, verifyBackfill, writtenByTool} from './checker'
import {COL, ended, killThenResume, Scenario, Target, taxonomyWithVersion} from './context'
import {legacyItems, runFlags} from './seeds'

/** Scenario 7: rollback under kill -9 and resume: the collection ends exactly as before the backfill. */
export const rollback: Scenario = {
  name: 'rollback',
  title: 'rollback of two backfills under kill -9, then resume',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'rollback')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      await t.seed(legacyItems(ctx.items))
      const seeded = await readCollection(t.db, COL)
      const pristine = fullSnapshot(seeded)
      const before = originalsSnapshot(seeded)
      const total = pristine.size

      // Two backfills (0.9, then 1.0): each item's normalized holds the one it replaced.
      const v09 = await t.run('backfill', ['--taxonomy', taxonomyWithVersion(t.out, '0.9')])
      const v10 = await t.run('backfill', [])
      report.check(
        v09.code === 3 && v10.code === 3 && v10.stats?.updated > 0,
        'two backfills (versions 0.9 then 1.0) complete',
        `${ended(v09)}; ${ended(v10)}`,
      )
      report.verdict('after the backfills', await verifyBackfill(t.db, COL, before, ctx.vocab), false)

      const final = await killThenResume(t, report, 'rollback', runFlags(ctx), total)
      if (!final) return
      report.check(
        final.code === 0 && final.stats?.status === 'completed',
        'the resumed rollback completes with exit 0',
        ended(final),
      )
      report.figure('rolledBack', `${final.stats?.removed} removed, ${final.stats?.restored} restored`)

      const docs = await readCollection(t.db, COL)
      const after = fullSnapshot(docs)
      const changed = diffFull(pristine, after)
      const residue = [...docs.values()].filter((d) => writtenByTool(d.data.normalized)).length
      report.check(
        changed.length === 0,
        'every document is exactly as before the first backfill (all fields, normalized included)',
        `${changed.length} differ (${residue} still hold a backfill's normalized), e.g. ${changed.slice(0, 3).join(', ')}`,
      )
      report.figure('items', after.size)
      report.figure('lost', changed.length - residue)
      report.figure('stale', residue)
    } finally {
      await t.close()
    }
  },
}
