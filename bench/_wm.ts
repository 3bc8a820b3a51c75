import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../src/lib/seed-data'
import {loadVocabulary} from '../src/lib/vocabulary'
async function main() {
  process.env.FIRESTORE_EMULATOR_HOST = '127.0.0.1:' + require('fs').readFileSync('/tmp/myemu.port', 'utf8').trim()
  const which = process.argv[3]
  const base = which === 'old' ? '/tmp/wardrobe-old/src/lib/' : '../src/lib/'
  const {runBackfill} = require(base + 'backfill')
  const {Ledger} = require(base + 'ledger')
  const projectId = process.argv[2]
  const db = new Firestore({projectId})
  await writeItems(db, 'wardrobe_items', generateItems(10000, {seed: 3}))
  const t0 = Date.now()
  let live = 0
  const orig = Ledger.prototype.checkpoint
  Ledger.prototype.checkpoint = function (runId: string, patch: any) {
    console.log(`${((Date.now() - t0) / 1000).toFixed(1)}s checkpoint scanned ${patch.counters.scanned} live ${live}`)
    return orig.call(this, runId, patch)
  }
  const stats = await runBackfill({db, emulator: true, onProgress: (p: any) => (live = p.counters.scanned), settings: {environment: 'development', projectId, collection: 'wardrobe_items', ledgerCollection: '_backfill_runs', staleAfterMs: 60000}}, {vocabulary: loadVocabulary(), batchSize: 400, dryRun: false, force: false, fromStart: false, maxRate: 400})
  console.log(stats.status, stats.scanned, ((Date.now() - t0) / 1000).toFixed(1))
  process.exit(0)
}
main()
