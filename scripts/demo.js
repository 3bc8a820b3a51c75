#!/usr/bin/env node
// `npm run demo`: the whole job on a local emulator, end to end, with the real CLI.
// Uses FIRESTORE_EMULATOR_HOST (or 127.0.0.1:8080) when an emulator answers there, else starts one.
const {spawnSync} = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const {clearEmulator, startEmulator} = require('../dist/dev/emulator')
const {isEmulatorReachable} = require('../dist/firestore/emulator-probe')

const ROOT = path.resolve(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const PROJECT = 'demo-wardrobe-demo'
const OUT = path.join(ROOT, '.demo')
const COUNT = Number(process.env.DEMO_ITEMS || 3000)

function step(title, args, okCodes = [0]) {
  process.stderr.write(`\n=== ${title}\n$ wardrobe ${args.join(' ')}\n`)
  const res = spawnSync(process.execPath, [BIN, ...args], {stdio: 'inherit', cwd: ROOT})
  if (!okCodes.includes(res.status)) {
    process.stderr.write(`demo: "${title}" exited ${res.status}\n`)
    throw new Error(title)
  }
  return res.status
}

async function main() {
  let emulator
  let host = process.env.FIRESTORE_EMULATOR_HOST || '127.0.0.1:8080'
  if (!(await isEmulatorReachable(host))) {
    process.stderr.write('Starting a Firestore emulator...\n')
    emulator = await startEmulator()
    host = emulator.host
  }
  process.stderr.write(
    `Firestore emulator at ${host}, project ${PROJECT}, output in ${path.relative(process.cwd(), OUT) || '.'}\n`,
  )
  fs.mkdirSync(OUT, {recursive: true})
  await clearEmulator(host, PROJECT)
  const common = ['--environment', 'development', '--emulator-host', host, '--project', PROJECT, '--output-dir', OUT]
  try {
    step(`Seed ${COUNT} messy items (2% malformed)`, ['seed', '--count', String(COUNT), ...common])
    // 3 = finished, but some items are malformed: they are reported and left untouched.
    step('Dry run: what would change', ['backfill', '--dry-run', ...common], [0, 3])
    step('Backfill', ['backfill', ...common], [0, 3])
    step('Re-run: idempotent, updates nothing', ['backfill', ...common], [0, 3])
    for (const [title, args, codes] of extraSteps(common)) step(title, args, codes)
    process.stderr.write(`\nDemo done. Files: ${fs.readdirSync(OUT).join(', ')}\n`)
  } finally {
    await emulator?.stop()
  }
}

/** Steps for commands that exist in this build (monitor and validate). */
function extraSteps(common) {
  const has = (name) => fs.existsSync(path.join(ROOT, 'dist', 'commands', `${name}.js`))
  const steps = []
  if (has('monitor')) steps.push(['Monitor: progress and health', ['monitor', ...common], [0]])
  if (has('validate'))
    steps.push(['Validate a random sample of 200', ['validate', '--sample-size', '200', ...common], [0]])
  steps.push(['Rollback dry run: what an undo would do', ['rollback', '--dry-run', ...common], [0]])
  return steps
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err.message}\n`)
  process.exit(1)
})
