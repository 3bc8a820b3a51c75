/**
 * Start-up cost as ratios: wardrobe's help and version against a minimal oclif CLI with one
 * command, built here, and `wardrobe monitor` on an empty collection against a bare script that
 * only initializes firebase-admin and runs one count(). The two sides of each pair run
 * alternately (a drifting machine favours neither); medians count.
 */
import fs from 'node:fs'
import path from 'node:path'
import {median, ROOT, runCli} from './measure'

/** Each pair's target: wardrobe within this factor of its baseline. */
export const STARTUP_TARGET = 1.3

export interface StartupPair {
  name: string
  baseline: string
  wardrobeSeconds: number[]
  baselineSeconds: number[]
  ratio: number
  met: boolean
}

const MINIMAL_COMMAND = `const {Command, Flags} = require('@oclif/core')
class Hello extends Command {
  static summary = 'Say hello.'
  static flags = {name: Flags.string({summary: 'Who to greet.'})}
  async run() {
    const {flags} = await this.parse(Hello)
    this.log('hello ' + (flags.name ?? 'world'))
  }
}
module.exports = Hello
`

const BARE_COUNT = `const {initializeApp} = require('firebase-admin/app')
const {getFirestore} = require('firebase-admin/firestore')
const [projectId, collection] = process.argv.slice(2)
getFirestore(initializeApp({projectId})).collection(collection).count().get().then((s) => {
  console.log(s.data().count)
  process.exit(0)
})
`

/** Writes the two baselines into dir (node_modules linked to this checkout's); returns their scripts. */
export function buildBaselines(dir: string): {minimalCli: string; bareCount: string} {
  fs.mkdirSync(path.join(dir, 'bin'), {recursive: true})
  fs.mkdirSync(path.join(dir, 'commands'), {recursive: true})
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'minimal-cli',
      version: '1.0.0',
      oclif: {bin: 'minimal', commands: './commands', topicSeparator: ' '},
    }),
  )
  fs.writeFileSync(path.join(dir, 'commands', 'hello.js'), MINIMAL_COMMAND)
  // The same entry as wardrobe's bin/run.js, so that only what lies behind it differs.
  fs.copyFileSync(path.join(ROOT, 'bin', 'run.js'), path.join(dir, 'bin', 'run.js'))
  fs.writeFileSync(path.join(dir, 'bare-count.js'), BARE_COUNT)
  return {minimalCli: path.join(dir, 'bin', 'run.js'), bareCount: path.join(dir, 'bare-count.js')}
}

/** `host`: an emulator; `projectId`: a project on it with nothing in the collection monitor reads. */
export async function measureStartup(o: {
  dir: string
  host: string
  projectId: string
  repeat: number
  log: (m: string) => void
}): Promise<StartupPair[]> {
  const {minimalCli, bareCount} = buildBaselines(path.join(o.dir, 'baselines'))
  const cwd = o.dir
  const env = {FIRESTORE_EMULATOR_HOST: o.host, METADATA_SERVER_DETECTION: 'none'}
  const collection = 'wardrobe_items'
  const monitorArgs = [
    'monitor',
    '--environment',
    'development',
    '--emulator-host',
    o.host,
    '--project',
    o.projectId,
    '--collection',
    collection,
    '--output-dir',
    o.dir,
  ]
  const pairs: {name: string; baseline: string; wardrobe: string[]; other: {script: string; args: string[]}}[] = [
    {
      name: 'wardrobe --help',
      baseline: 'minimal --help',
      wardrobe: ['--help'],
      other: {script: minimalCli, args: ['--help']},
    },
    {
      name: 'wardrobe --version',
      baseline: 'minimal --version',
      wardrobe: ['--version'],
      other: {script: minimalCli, args: ['--version']},
    },
    {
      name: 'wardrobe backfill --help',
      baseline: 'minimal hello --help',
      wardrobe: ['backfill', '--help'],
      other: {script: minimalCli, args: ['hello', '--help']},
    },
    {
      name: 'wardrobe monitor, empty collection',
      baseline: 'firebase-admin init + one count()',
      wardrobe: monitorArgs,
      other: {script: bareCount, args: [o.projectId, collection]},
    },
  ]
  const results: StartupPair[] = []
  for (const pair of pairs) {
    const ours: number[] = []
    const theirs: number[] = []
    const once = async (which: 'ours' | 'theirs') => {
      const run =
        which === 'ours'
          ? await runCli(pair.wardrobe, {cwd, env})
          : await runCli(pair.other.args, {cwd, env, script: pair.other.script})
      if (run.code !== 0)
        throw new Error(
          `${which === 'ours' ? pair.name : pair.baseline} exited ${run.code}:\n${run.stderr.slice(-2000)}`,
        )
      ;(which === 'ours' ? ours : theirs).push(run.seconds)
    }
    // One unmeasured run each first: the file system cache, not start-up, would differ otherwise.
    await once('ours')
    await once('theirs')
    ours.length = 0
    theirs.length = 0
    for (let i = 0; i < o.repeat; i++)
      for (const which of i % 2 === 0 ? (['ours', 'theirs'] as const) : (['theirs', 'ours'] as const)) await once(which)
    const ratio = median(ours) / median(theirs)
    o.log(
      `start-up: ${pair.name} ${median(ours).toFixed(3)} s, ${pair.baseline} ${median(theirs).toFixed(3)} s: ${ratio.toFixed(2)}×`,
    )
    results.push({
      name: pair.name,
      baseline: pair.baseline,
      wardrobeSeconds: ours,
      baselineSeconds: theirs,
      ratio,
      met: ratio <= STARTUP_TARGET,
    })
  }
  return results
}

export function startupTable(pairs: StartupPair[]): string[] {
  return [
    `| start-up (median wall time of the process) | wardrobe | baseline | ratio (target <= ${STARTUP_TARGET}) |`,
    '|---|---:|---:|---:|',
    ...pairs.map(
      (p) =>
        `| ${p.name} vs ${p.baseline} | ${median(p.wardrobeSeconds).toFixed(3)} s | ${median(p.baselineSeconds).toFixed(3)} s | **${p.ratio.toFixed(2)}**${p.met ? '' : ' (not met)'} |`,
    ),
  ]
}
