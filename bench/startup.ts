/**
 * Start-up cost as ratios: wardrobe's help and version against a minimal oclif CLI with one
 * command, built here, and `wardrobe monitor` on an empty collection against a bare script that
 * only initializes firebase-admin and runs one count(). The two sides of each pair run
 * alternately (a drifting machine favours neither); medians count. Monitor's pair also runs a
 * floor in the same rotation: the minimal oclif CLI running that same count() from a command,
 * so the table shows how much of the ratio is oclif's own start-up and how much is wardrobe's;
 * and monitor without its code cache (NODE_DISABLE_COMPILE_CACHE=1), what a first run pays.
 */
import fs from 'node:fs'
import path from 'node:path'
import {median, ROOT, runCli} from './measure'

/** Each pair's target: wardrobe within this factor of its baseline. */
export const STARTUP_TARGET = 1.3

const WARMUP_RUNS = 3

export interface StartupPair {
  name: string
  baseline: string
  wardrobeSeconds: number[]
  baselineSeconds: number[]
  ratio: number
  met: boolean
  /** The floor's runs, its ratio to the baseline, and wardrobe's ratio to it (monitor's pair). */
  floor?: {name: string; seconds: number[]; ratio: number; wardrobeRatio: number}
  /** Wardrobe's runs without its code cache, and their ratio to the baseline (monitor's pair). */
  uncached?: {name: string; seconds: number[]; ratio: number}
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

// The bare count below, run by an oclif command: what any oclif CLI pays before wardrobe adds anything.
const MINIMAL_COUNT_COMMAND = `const {Command, Args} = require('@oclif/core')
class Count extends Command {
  static args = {projectId: Args.string({required: true}), collection: Args.string({required: true})}
  async run() {
    const {args} = await this.parse(Count)
    const {initializeApp} = require('firebase-admin/app')
    const {getFirestore} = require('firebase-admin/firestore')
    const s = await getFirestore(initializeApp({projectId: args.projectId})).collection(args.collection).count().get()
    this.log(String(s.data().count))
  }
}
module.exports = Count
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
  fs.writeFileSync(path.join(dir, 'commands', 'count.js'), MINIMAL_COUNT_COMMAND)
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
  // The commands' code cache starts empty here (the first warm-up run writes it), never the user's.
  const env = {
    FIRESTORE_EMULATOR_HOST: o.host,
    METADATA_SERVER_DETECTION: 'none',
    NODE_COMPILE_CACHE: path.join(o.dir, 'compile-cache'),
  }
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
  type Run = {script?: string; args: string[]; env?: NodeJS.ProcessEnv}
  type Pair = {name: string; baseline: string; wardrobe: string[]; other: Run}
  const pairs: (Pair & {floor?: Run & {name: string}; uncached?: Run & {name: string}})[] = [
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
      floor: {
        name: 'minimal count (oclif + the same count())',
        script: minimalCli,
        args: ['count', o.projectId, collection],
      },
      // What a run pays where the cache cannot be written (or before the first run wrote it).
      uncached: {
        name: 'wardrobe monitor without its code cache',
        args: monitorArgs,
        env: {NODE_DISABLE_COMPILE_CACHE: '1'},
      },
    },
  ]
  const results: StartupPair[] = []
  for (const pair of pairs) {
    const runs: Record<'ours' | 'theirs' | 'floor' | 'uncached', Run | undefined> = {
      ours: {args: pair.wardrobe},
      theirs: pair.other,
      floor: pair.floor,
      uncached: pair.uncached,
    }
    const seconds = {ours: [] as number[], theirs: [] as number[], floor: [] as number[], uncached: [] as number[]}
    const names = {ours: pair.name, theirs: pair.baseline, floor: pair.floor?.name, uncached: pair.uncached?.name}
    const order = (['ours', 'theirs', 'floor', 'uncached'] as const).filter((w) => runs[w] !== undefined)
    const once = async (which: (typeof order)[number]) => {
      const {script, args, env: own} = runs[which]!
      const run = await runCli(args, {cwd, env: {...env, ...own}, script})
      if (run.code !== 0) throw new Error(`${names[which]} exited ${run.code}:\n${run.stderr.slice(-2000)}`)
      seconds[which].push(run.seconds)
    }
    // Unmeasured runs first: the file system cache and the emulator's JIT (a fresh JVM answers the
    // first queries of each shape slowly, and monitor has more shapes than one count()), not
    // start-up, would differ otherwise.
    for (let i = 0; i < WARMUP_RUNS; i++) for (const which of order) await once(which)
    for (const which of order) seconds[which].length = 0
    // Each run goes first as often as the others (rotating), so a drifting machine favours none.
    for (let i = 0; i < o.repeat; i++) for (let j = 0; j < order.length; j++) await once(order[(i + j) % order.length])
    const [ours, theirs] = [seconds.ours, seconds.theirs]
    const ratio = median(ours) / median(theirs)
    const floor = pair.floor && {
      name: pair.floor.name,
      seconds: seconds.floor,
      ratio: median(seconds.floor) / median(theirs),
      wardrobeRatio: median(ours) / median(seconds.floor),
    }
    const uncached = pair.uncached && {
      name: pair.uncached.name,
      seconds: seconds.uncached,
      ratio: median(seconds.uncached) / median(theirs),
    }
    o.log(
      `start-up: ${pair.name} ${median(ours).toFixed(3)} s, ${pair.baseline} ${median(theirs).toFixed(3)} s: ${ratio.toFixed(2)}×` +
        [floor, uncached]
          .map((r) => (r ? `; ${r.name} ${median(r.seconds).toFixed(3)} s: ${r.ratio.toFixed(2)}×` : ''))
          .join(''),
    )
    results.push({
      name: pair.name,
      baseline: pair.baseline,
      wardrobeSeconds: ours,
      baselineSeconds: theirs,
      ratio,
      met: ratio <= STARTUP_TARGET,
      floor,
      uncached,
    })
  }
  return results
}

export function startupTable(pairs: StartupPair[]): string[] {
  return [
    `| start-up (median wall time of the process) | wardrobe | baseline | ratio (target <= ${STARTUP_TARGET}) |`,
    '|---|---:|---:|---:|',
    ...pairs.flatMap((p) => [
      `| ${p.name} vs ${p.baseline} | ${median(p.wardrobeSeconds).toFixed(3)} s | ${median(p.baselineSeconds).toFixed(3)} s | **${p.ratio.toFixed(2)}**${p.met ? '' : ' (not met)'} |`,
      ...(p.floor
        ? [
            `| floor: ${p.floor.name} vs ${p.baseline} | ${median(p.floor.seconds).toFixed(3)} s | ${median(p.baselineSeconds).toFixed(3)} s | ${p.floor.ratio.toFixed(2)} (oclif's share, no target) |`,
            `| ${p.name} vs that floor | ${median(p.wardrobeSeconds).toFixed(3)} s | ${median(p.floor.seconds).toFixed(3)} s | ${p.floor.wardrobeRatio.toFixed(2)} (wardrobe's share) |`,
          ]
        : []),
      ...(p.uncached
        ? [
            `| ${p.uncached.name} vs ${p.baseline} | ${median(p.uncached.seconds).toFixed(3)} s | ${median(p.baselineSeconds).toFixed(3)} s | ${p.uncached.ratio.toFixed(2)} (the first run, or no writable cache) |`,
          ]
        : []),
    ]),
  ]
}
