import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {Timestamp} from 'firebase-admin/firestore'
import {normalizeItem} from '../../src/domain/normalization'
import {generateItem} from '../../src/dev/seed-data'
import {ROOT} from '../support/harness'
import type {AppWrite} from './app-writer'
import {Doc, snapshotOriginals, stableJson, verifyBackfill} from './checker'
import {COL, ended, Scenario, Target} from './context'

/** Firestore hands Dates back as Timestamps: the model must hold what is stored. */
function stored(value: unknown): unknown {
  if (value instanceof Date) return Timestamp.fromDate(value)
  if (Array.isArray(value)) return value.map(stored)
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stored(v)]))
  }
  return value
}

const later = (a: [number, number], b: Timestamp) => b.seconds > a[0] || (b.seconds === a[0] && b.nanoseconds > a[1])

/**
 * Scenario 3: a second process keeps updating original fields of random items, adding and
 * deleting items, during the whole run. Every app write survives; every item whose last
 * write was the backfill's holds `normalized` computed from its current originals.
 */
export const concurrentApp: Scenario = {
  name: 'concurrent-app',
  title: 'a concurrent app updates, adds and deletes items during the whole run',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'concurrent')
    try {
      await t.seedGenerated(ctx.items, ctx.seed)
      const before = await snapshotOriginals(t.db, COL)
      const logFile = path.join(t.out, 'app-writes.ndjson')
      const rate = Math.max(100, Math.min(400, Math.round(ctx.items / 100)))
      const app = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(__dirname, 'app-writer.ts'),
          ctx.host,
          t.projectId,
          COL,
          logFile,
          String(ctx.seed),
          String(rate),
        ],
        {
          cwd: ROOT,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        },
      )
      t.adopt(app)
      const appExit = new Promise<number | null>((r) => app.on('exit', (code) => r(code)))
      await new Promise<void>((resolve, reject) => {
        app.once('message', () => resolve())
        app.once('exit', (code) => reject(new Error(`the app writer exited with ${code} before it started`)))
      })
      ctx.log(`app writer running (pid ${app.pid}, ~${rate} writes/s)`)
      await new Promise((r) => setTimeout(r, 1000))

      const res = await t.run('backfill', [])
      app.kill('SIGTERM')
      const appCode = await appExit
      report.check(appCode === 0, 'the app writer ran through the whole run and stopped cleanly', `exit ${appCode}`)
      const s = res.stats
      report.check(
        (res.code === 3 || res.code === 0) && s?.status === 'completed',
        'the backfill completes beside the app',
        ended(res),
      )

      // The app's model of the collection: the snapshot with every acknowledged app write applied in order.
      const writes = fs
        .readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AppWrite)
      const expected = new Map<string, string | undefined>([...before].map(([id, b]) => [id, b.originals]))
      const lastApp = new Map<string, [number, number]>()
      const counts = {update: 0, create: 0, delete: 0, failed: 0}
      for (const w of writes) {
        counts[w.op]++
        if (w.op === 'failed') continue
        lastApp.set(w.id, w.t)
        if (w.op === 'delete') expected.set(w.id, undefined)
        else if (w.op === 'create')
          expected.set(w.id, stableJson(stored(generateItem(w.index, {seed: ctx.seed, malformedRate: 0}).item.data)))
        else
          expected.set(
            w.id,
            stableJson({...JSON.parse(expected.get(w.id)!), ...(JSON.parse(stableJson(w.fields)) as object)}),
          )
      }
      report.check(counts.failed === 0, 'every app write was acknowledged', `${counts.failed} failed`)
      report.figure(
        'faults',
        `${writes.length} app writes (${counts.update} updates, ${counts.create} adds, ${counts.delete} deletes)`,
      )
      report.figure('conflicts', s?.conflicts ?? '?')
      report.check(
        s?.conflicts > 0,
        'the backfill met the app: some guarded writes conflicted and were recomputed',
        `conflicts ${s?.conflicts}`,
      )

      // Who wrote last: a document newer than the app's last write was last written by the backfill.
      const appLast = (id: string, doc: Doc) => {
        const last = lastApp.get(id)
        return last !== undefined && !later(last, doc.updateTime)
      }
      const verdict = await verifyBackfill(t.db, COL, before, ctx.vocab, {
        expected,
        appLast,
        appTouched: (id) => lastApp.has(id),
      })
      report.verdict('with the app', verdict)
      report.figure('backfillLast', verdict.normalized)

      // Once the app stops, a new run brings every item current.
      const again = await t.run('backfill', [])
      report.check(again.code === 3 || again.code === 0, 'a backfill after the app stopped completes', ended(again))
      // Malformed by the app's last write: never written, so whatever `normalized` it had stays.
      const malformedByApp = (id: string, doc: Doc) => appLast(id, doc) && !normalizeItem(doc.data, ctx.vocab).ok
      const settled = await verifyBackfill(t.db, COL, before, ctx.vocab, {
        expected,
        appLast: malformedByApp,
        appTouched: (id) => lastApp.has(id),
      })
      report.check(
        settled.lost === 0 && settled.stale === 0 && settled.other === 0,
        'after a re-run every well-formed item is current and every app write is still there',
        `lost ${settled.lost}, stale ${settled.stale}: ${settled.examples.slice(0, 3).join('; ')}`,
      )
      report.figure('updatedByReRun', again.stats?.updated ?? '?')
    } finally {
      await t.close()
    }
  },
}
