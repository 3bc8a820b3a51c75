import {Firestore} from 'firebase-admin/firestore'
import {runBackfill} from '../src/lib/backfill'
import {clearEmulator, startEmulator} from '../src/lib/emulator'
import {generateItems} from '../src/lib/seed-data'
import {loadVocabulary} from '../src/lib/vocabulary'
import {ceiling, load} from './baselines'
import {findEmulatorPid, processCpuSeconds} from './measure'
const old = require('/tmp/wardrobe-old/src/lib/backfill') as {runBackfill: typeof runBackfill}

async function main() {
  const count = Number(process.argv[2] ?? 50_000)
  const rounds = Number(process.argv[3] ?? 2)
  const variants = (process.argv[4] ?? 'ceiling,new').split(',')
  const batch = Number(process.env.BATCH ?? 500)
  const emu = await startEmulator()
  process.env.FIRESTORE_EMULATOR_HOST = emu.host
  process.env.METADATA_SERVER_DETECTION = 'none'
  const vocabulary = loadVocabulary()
  let n = 0
  const jpid = findEmulatorPid(emu.host)
  const cpu = () => (processCpuSeconds(jpid) ?? 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1e6
  try {
    for (let r = 0; r < rounds; r++)
      for (const v of variants) {
        const projectId = `demo-ph-${++n}`
        const db = new Firestore({projectId})
        await load(db, generateItems(count, {seed: 7, malformedRate: 0}))
        const c0 = cpu()
        const e0 = processCpuSeconds(jpid) ?? 0
        const tail = () => `  cpu/1k items: total ${(((cpu() - c0) / count) * 1000).toFixed(3)}s emulator ${((((processCpuSeconds(jpid) ?? 0) - e0) / count) * 1000).toFixed(3)}s`
        if (v === 'ceiling') {
          const a = await ceiling(db, generateItems(count, {seed: 7, malformedRate: 0}), vocabulary)
          console.log(`ceiling ${a.rate.toFixed(0)}/s ${a.seconds.toFixed(2)}s` + tail())
        } else {
          const t0 = Date.now()
          const marks: Record<string, number> = {}
          const samples: [number, number][] = []
          const logger = {info: (m: string) => (marks[m] ??= Date.now() - t0), warn() {}, debug() {}}
          const ctx = {db, emulator: true, logger: logger as any, settings: {environment: 'development' as const, projectId, collection: 'wardrobe_items', ledgerCollection: '_backfill_runs', staleAfterMs: 60000}, onStart: () => (marks.onStart = Date.now() - t0), onProgress: (p: any) => samples.push([Date.now() - t0, p.counters.updated + p.counters.skipped + p.counters.failed])}
          const bs = Number(v.replace(/^\D+/, '')) || batch
          const stats = await (v.startsWith('old') ? old.runBackfill : runBackfill)(ctx, {vocabulary, batchSize: bs, dryRun: false, force: false, fromStart: false})
          const total = Date.now() - t0
          const at = (f: number) => samples.find(([, d]) => d >= f * count)![0]
          const first = samples.find(([, d]) => d > 0)![0]
          const steady = (0.6 * count) / ((at(0.8) - at(0.2)) / 1000)
          const lastItem = at(1)
          console.log(`${v} ${(count / (total / 1000)).toFixed(0)}/s ${(total / 1000).toFixed(2)}s | counted ${marks['backfill starting']}ms started ${marks.onStart}ms first ${first}ms last item ${lastItem}ms end ${total}ms | steady 20-80% ${steady.toFixed(0)}/s updated ${stats.updated}` + tail())
        }
        await db.terminate()
        await clearEmulator(emu.host, projectId)
      }
  } finally {
    await emu.stop()
  }
}
main().catch((e) => { console.error(e); process.exit(1) })
