import {Firestore} from 'firebase-admin/firestore'
async function main() {
  process.env.FIRESTORE_EMULATOR_HOST = '127.0.0.1:' + require('fs').readFileSync('/tmp/myemu.port', 'utf8').trim()
  const db = new Firestore({projectId: process.argv[2]})
  for (let i = 0; i < 40; i++) {
    const runs = await db.collection('_backfill_runs').get()
    for (const d of runs.docs) { const r = d.data(); console.log(new Date().toISOString().slice(14, 23), r.status, r.cursor, JSON.stringify(r.counters)) }
    await new Promise((r) => setTimeout(r, 1000))
  }
}
main()
