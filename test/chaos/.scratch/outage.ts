import fs from 'node:fs'
import {Firestore} from 'firebase-admin/firestore'
import {generateItems, writeItems} from '../../../src/lib/seed-data'
import {FaultProxy, sleep} from '../proxy'
import {copyCli, startCli} from '../context'
;(async () => {
  const host = fs.readFileSync('/tmp/chaos-exp/host', 'utf8')
  process.env.FIRESTORE_EMULATOR_HOST = host
  const project = 'demo-outage-' + Date.now()
  const db = new Firestore({projectId: project})
  await writeItems(db, 'wardrobe_items', generateItems(Number(process.argv[2] ?? 5000), {seed: 3}))
  const proxy = FaultProxy.forHost(host)
  const via = await proxy.listen()
  const out = fs.mkdtempSync('/tmp/chaos-exp/out-')
  const cli = copyCli()
  const t0 = Date.now()
  const {child, done} = startCli(cli.bin, ['backfill', '--environment', 'development', '--project', project, '--emulator-host', via, '--output-dir', out, '--json', '--log-level', 'debug'], out)
  console.log('out', out, 'pid', child.pid)
  await sleep(Number(process.argv[3] ?? 6000))
  console.log('drop at', (Date.now() - t0) / 1000)
  proxy.startDrop()
  const res = await done
  console.log('exit', res.code, res.signal, 'after', (Date.now() - t0) / 1000, res.stdout.slice(0, 2000), res.stderr.slice(-2000))
  proxy.restore()
  await proxy.close()
  cli.remove()
  process.exit(0)
})()
