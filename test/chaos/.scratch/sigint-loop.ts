import fs from 'node:fs'
import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../../src/lib/seed-data'
import {sleep} from '../proxy'
import {copyCli, startCli} from '../context'
;(async () => {
  const host = fs.readFileSync('/tmp/chaos-exp/host', 'utf8')
  process.env.FIRESTORE_EMULATOR_HOST = host
  const cli = process.env.DBG_BIN ? {bin: process.env.DBG_BIN, remove() {}} : copyCli()
  for (let i = 0; i < 8; i++) {
    const project = 'demo-sigint-' + Date.now()
    const db = new Firestore({projectId: project})
    await writeItems(db, 'wardrobe_items', generateItems(5000, {seed: 3}))
    const out = fs.mkdtempSync('/tmp/chaos-exp/out-')
    const {child, done} = startCli(cli.bin, ['backfill', '--environment', 'development', '--project', project, '--emulator-host', host, '--output-dir', out, '--json', '--max-rate', '200'], out)
    const delay = 4000 + Math.random() * 8000
    await sleep(delay)
    child.kill('SIGINT')
    const res = await done
    let ok = false
    try { ok = JSON.parse(res.stdout).status === 'interrupted' } catch {}
    console.log(i, Math.round(delay), res.code, ok, res.stderr.split('\n').filter(l => l.includes('DBG')).join(' / '))
    await db.terminate()
  }
  cli.remove()
  process.exit(0)
})()
