/**
 * `npm run bench [-- --quick] [-- --dataset]`: backfill throughput and memory against
 * baselines, in one run on one emulator this script starts (and stops). Prints a markdown
 * table on stdout and writes the figures to bench/results/bench_YYYYMMDD_HHMMSS.json.
 *
 * Benchmarks are not tests: nothing here asserts a timing; targets are reported as met or not.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {Firestore} from 'firebase-admin/firestore'
import {clearEmulator, RunningEmulator, startEmulator} from '../src/lib/emulator'
import {generateItems, SeedItem} from '../src/lib/seed-data'
import {loadVocabulary} from '../src/lib/vocabulary'
import {backfillService, ceiling, load, Measured, monitorService, naive, ServiceRun} from './baselines'
import {DEFAULT_CATALOGUE, readCatalogue} from './dataset'
import {BIN, describeMachine, median, ProcessRun, ROOT, runCli} from './measure'

const USAGE = `Usage: npm run bench -- [--quick] [--dataset [--dataset-file FILE]] [--items N] [--sizes A,B] [--repeat K] [--seed S] [--out DIR]
  --quick         small sizes (comparison 10,000 items; memory and monitor at 2,000 and 20,000)
  --dataset       compare on the real catalogue (${DEFAULT_CATALOGUE}) instead of generated items
  --items N       items for the (a)/(b)/(c) comparison (default 50,000)
  --sizes A,B     sizes for peak RSS and monitor time (default 20,000,200,000)
  --repeat K      runs of (a) and (c) each, interleaved; the best counts (default 2)`

interface Options {
  quick: boolean
  dataset: string | null
  items: number
  sizes: [number, number]
  repeat: number
  seed: number
  out: string
}

function options(): Options {
  const {values} = parseArgs({
    options: {
      quick: {type: 'boolean', default: false},
      dataset: {type: 'boolean', default: false},
      'dataset-file': {type: 'string'},
      items: {type: 'string'},
      sizes: {type: 'string'},
      repeat: {type: 'string'},
      seed: {type: 'string'},
      out: {type: 'string'},
      help: {type: 'boolean', default: false},
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const int = (v: string | undefined, d: number) => {
    if (v === undefined) return d
    const n = Number(v.replace(/_/g, ''))
    if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive integer: ${v}\n${USAGE}`)
    return n
  }
  const quick = values.quick ?? false
  const sizes = (values.sizes ?? (quick ? '2000,20000' : '20000,200000')).split(',').map((s) => int(s, 0))
  if (sizes.length !== 2) throw new Error(`--sizes takes two sizes\n${USAGE}`)
  return {
    quick,
    dataset: values.dataset || values['dataset-file'] ? (values['dataset-file'] ?? DEFAULT_CATALOGUE) : null,
    items: int(values.items, quick ? 10_000 : 50_000),
    sizes: [sizes[0], sizes[1]],
    repeat: int(values.repeat, 2),
    seed: int(values.seed, 1),
    out: path.resolve(values.out ?? path.join(ROOT, 'bench', 'results')),
  }
}

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const fixed = (n: number, d = 2) => n.toFixed(d)
const mib = (kib: number | null) => (kib === null ? null : Math.round((kib / 1024) * 10) / 10)

interface CliBackfill {
  items: number
  seconds: number
  /** Items per second of the whole process (start-up included). */
  rate: number
  /** The rate the run reports (from its start to its end, start-up excluded). */
  reportedRate: number
  peakRssMiB: number | null
  exitCode: number | null
}

async function main(): Promise<void> {
  const opts = options()
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands', 'backfill.js'))) throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)')
  const startedAt = new Date()
  const machine = describeMachine()
  log(`${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.emulator}, load average ${machine.loadAverage.join(' ')}`)
  const catalogue = opts.dataset ? readCatalogue(opts.dataset) : null
  const compareItems = (): Iterable<SeedItem> => catalogue ?? generateItems(opts.items, {seed: opts.seed, malformedRate: 0})
  const compareCount = catalogue?.length ?? opts.items
  const vocabulary = loadVocabulary()
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wardrobe-bench-'))

  let emulator: RunningEmulator | null = null
  const stop = async () => {
    await emulator?.stop()
    emulator = null
    fs.rmSync(tmp, {recursive: true, force: true})
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: stopping the emulator`)
      void stop().finally(() => process.exit(130))
    })

  try {
    emulator = await startEmulator()
    const host = emulator.host
    process.env.FIRESTORE_EMULATOR_HOST = host
    process.env.METADATA_SERVER_DETECTION = 'none'
    log(`emulator at ${host}`)

    let projects = 0
    /** A new project on the emulator, loaded with `items`: each measurement gets a fresh, identical data set. */
    const withFresh = async <T>(label: string, items: Iterable<SeedItem>, fn: (db: Firestore, projectId: string, loaded: number) => Promise<T>): Promise<T> => {
      const projectId = `demo-bench-${process.pid}-${++projects}`
      const db = new Firestore({projectId})
      try {
        const t = Date.now()
        const loaded = await load(db, items)
        log(`${label}: loaded ${fmt(loaded)} items in ${fixed((Date.now() - t) / 1000, 1)} s`)
        return await fn(db, projectId, loaded)
      } finally {
        await db.terminate().catch(() => {})
        await clearEmulator(host, projectId).catch(() => {})
      }
    }
    const cliTarget = (projectId: string) => ['--environment', 'development', '--emulator-host', host, '--project', projectId, '--output-dir', tmp]
    const cliBackfill = async (projectId: string, items: number): Promise<CliBackfill> => {
      const run: ProcessRun = await runCli(['backfill', ...cliTarget(projectId), '--json'], {cwd: tmp})
      if (run.code !== 0) throw new Error(`wardrobe backfill exited ${run.code}:\n${run.stderr.slice(-2000)}`)
      const stats = JSON.parse(run.stdout) as {scanned: number; rate: number; status: string}
      if (stats.scanned !== items) throw new Error(`wardrobe backfill scanned ${stats.scanned} of ${items}`)
      return {items, seconds: run.seconds, rate: items / run.seconds, reportedRate: stats.rate, peakRssMiB: mib(run.peakRssKiB), exitCode: run.code}
    }

    // Warm-up: the emulator's JVM compiles its hot paths on the first few thousand writes and queries.
    const warm = opts.quick ? 2000 : 5000
    await withFresh('warm-up', generateItems(warm, {seed: 999, malformedRate: 0}), async (db) => ceiling(db, generateItems(warm, {seed: 999, malformedRate: 0}), vocabulary))
    await withFresh('warm-up', generateItems(warm, {seed: 999, malformedRate: 0}), async (db, projectId) => backfillService(db, projectId, vocabulary))

    // (a) and (c), interleaved, `repeat` times each; then (b) and the CLI once.
    const ceilingRuns: Measured[] = []
    const serviceRuns: ServiceRun[] = []
    for (let r = 1; r <= opts.repeat; r++) {
      const a = await withFresh(`(a) ceiling #${r}`, compareItems(), (db) => ceiling(db, compareItems(), vocabulary))
      log(`(a) write ceiling #${r}: ${fmt(a.rate)} items/s (${fixed(a.seconds)} s)`)
      ceilingRuns.push(a)
      const c = await withFresh(`(c) service #${r}`, compareItems(), (db, projectId) => backfillService(db, projectId, vocabulary))
      log(`(c) backfill service #${r}: ${fmt(c.rate)} items/s (${fixed(c.seconds)} s; started ${c.phases.started?.toFixed(2)} s, first item ${c.phases.firstSettled?.toFixed(2)} s)`)
      serviceRuns.push(c)
    }
    const naiveRun = await withFresh('(b) naive', compareItems(), (db) => naive(db, vocabulary))
    log(`(b) naive: ${fmt(naiveRun.rate)} items/s (${fixed(naiveRun.seconds)} s)`)
    const cliRun = await withFresh('(c) CLI', compareItems(), (_db, projectId) => cliBackfill(projectId, compareCount))
    log(`(c) backfill CLI: ${fmt(cliRun.rate)} items/s wall (${fixed(cliRun.seconds)} s), reported ${fmt(cliRun.reportedRate)}/s, peak RSS ${cliRun.peakRssMiB} MiB`)

    // A sharded run with 1, 2 and 4 workers in one process (4 partitions per worker).
    const workerRuns: (ServiceRun & {workers: number; partitions: number})[] = []
    for (const workers of [1, 2, 4]) {
      const run = await withFresh(`${workers} worker(s)`, compareItems(), (db, projectId) => backfillService(db, projectId, vocabulary, 500, {workers, shardIndex: 0, shardCount: 1}))
      log(`sharded backfill, ${workers} worker(s), ${4 * workers} partitions: ${fmt(run.rate)} items/s (${fixed(run.seconds)} s)`)
      workerRuns.push({workers, partitions: 4 * workers, ...run})
    }

    // CLI start-up alone, to read the process figures.
    const startups: number[] = []
    for (let i = 0; i < 3; i++) startups.push((await runCli(['--version'], {cwd: tmp})).seconds)
    const startup = median(startups)

    // Memory and monitor at two sizes.
    const scale = []
    for (const size of opts.sizes) {
      scale.push(
        await withFresh(`${fmt(size)} items`, generateItems(size, {seed: opts.seed, malformedRate: 0}), async (db, projectId) => {
          const backfill = await cliBackfill(projectId, size)
          log(`backfill CLI at ${fmt(size)}: ${fmt(backfill.rate)} items/s wall, peak RSS ${backfill.peakRssMiB} MiB`)
          const cli: number[] = []
          const service: number[] = []
          for (let i = 0; i < 3; i++) {
            const run = await runCli(['monitor', ...cliTarget(projectId), '--json'], {cwd: tmp})
            if (run.code !== 0) throw new Error(`wardrobe monitor exited ${run.code}:\n${run.stderr.slice(-2000)}`)
            cli.push(run.seconds)
            service.push(await monitorService(db, projectId, vocabulary))
          }
          log(`monitor at ${fmt(size)}: CLI ${fixed(median(cli))} s, service ${fixed(median(service))} s (medians of 3)`)
          return {items: size, backfill, monitor: {cliSeconds: cli, serviceSeconds: service, cliMedian: median(cli), serviceMedian: median(service)}}
        }),
      )
    }

    const best = <T extends Measured>(runs: T[]) => runs.reduce((x, y) => (y.rate > x.rate ? y : x))
    const a = best(ceilingRuns)
    const c = best(serviceRuns)
    const [small, large] = scale
    const ratio = (x: number | null, y: number | null) => (x === null || y === null || y === 0 ? null : x / y)
    const targets = [
      {name: '(c)/(a): service vs write ceiling', value: c.rate / a.rate, target: '>= 0.8', met: c.rate / a.rate >= 0.8},
      {name: '(c)/(b): service vs naive', value: c.rate / naiveRun.rate, target: '>= 4', met: c.rate / naiveRun.rate >= 4},
      {name: `peak RSS ${fmt(large.items)} / ${fmt(small.items)}`, value: ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB), target: '<= 1.25', met: (ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB) ?? Infinity) <= 1.25},
      {name: `monitor CLI ${fmt(large.items)} / ${fmt(small.items)}`, value: large.monitor.cliMedian / small.monitor.cliMedian, target: '<= 2', met: large.monitor.cliMedian / small.monitor.cliMedian <= 2},
      {name: `monitor service ${fmt(large.items)} / ${fmt(small.items)}`, value: large.monitor.serviceMedian / small.monitor.serviceMedian, target: '<= 2', met: large.monitor.serviceMedian / small.monitor.serviceMedian <= 2},
    ]
    const finishedAt = new Date()
    const machineEnd = describeMachine()
    const result = {
      kind: 'wardrobe-bench',
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      mode: opts.quick ? 'quick' : 'full',
      machine: {...machine, loadAverageEnd: machineEnd.loadAverage},
      comparison: {
        dataset: catalogue ? `catalogue ${opts.dataset}` : `generated (seed ${opts.seed}, malformedRate 0)`,
        items: compareCount,
        batchSize: 500,
        ceiling: {best: a, runs: ceilingRuns},
        naive: naiveRun,
        service: {best: c, runs: serviceRuns},
        cli: cliRun,
        cliStartupSeconds: startup,
        ratios: {serviceOverCeiling: c.rate / a.rate, serviceOverNaive: c.rate / naiveRun.rate, cliOverCeiling: cliRun.rate / a.rate, cliOverNaive: cliRun.rate / naiveRun.rate},
      },
      workers: workerRuns,
      scale,
      targets,
      bin: path.relative(ROOT, BIN),
    }
    fs.mkdirSync(opts.out, {recursive: true})
    const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15)
    const file = path.join(opts.out, `bench_${stamp}.json`)
    fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n')

    const lines = [
      `Machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB RAM, Node ${machine.node}, ${machine.emulator}; load average ${machine.loadAverage[0]} at start, ${machineEnd.loadAverage[0]} at end (shared machine). ${result.comparison.dataset}; best of ${opts.repeat} for (a) and (c).`,
      '',
      `| ${fmt(compareCount)} items, each on a freshly loaded identical collection | items/s | vs (a) | vs (b) |`,
      '|---|---:|---:|---:|',
      `| (a) write ceiling: BulkWriter updates of \`normalized\`, no reads, unthrottled | ${fmt(a.rate)} | 1.00 | ${fixed(a.rate / naiveRun.rate, 1)} |`,
      `| (b) naive: cursor pages of 500, one WriteBatch per page, in sequence | ${fmt(naiveRun.rate)} | ${fixed(naiveRun.rate / a.rate)} | 1.0 |`,
      `| (c) wardrobe backfill, service layer (\`runBackfill\`) | ${fmt(c.rate)} | **${fixed(c.rate / a.rate)}** | **${fixed(c.rate / naiveRun.rate, 1)}** |`,
      `| (c) wardrobe backfill, CLI process (wall time, ${fixed(startup, 1)} s start-up included) | ${fmt(cliRun.rate)} | ${fixed(cliRun.rate / a.rate)} | ${fixed(cliRun.rate / naiveRun.rate, 1)} |`,
      '',
      `| sharded run, ${fmt(compareCount)} items, one process | items/s | vs 1 worker | vs (a) |`,
      '|---|---:|---:|---:|',
      ...workerRuns.map((w) => `| ${w.workers} worker${w.workers === 1 ? '' : 's'}, ${w.partitions} partitions | ${fmt(w.rate)} | ${fixed(w.rate / workerRuns[0].rate)} | ${fixed(w.rate / a.rate)} |`),
      '',
      `| items | backfill CLI items/s | backfill CLI peak RSS | monitor CLI (median of 3) | monitor service call (median of 3) |`,
      '|---:|---:|---:|---:|---:|',
      ...scale.map((s) => `| ${fmt(s.items)} | ${fmt(s.backfill.rate)} | ${s.backfill.peakRssMiB ?? '?'} MiB | ${fixed(s.monitor.cliMedian)} s | ${fixed(s.monitor.serviceMedian)} s |`),
      `| ratio | | **${fixed(ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB) ?? NaN)}** | **${fixed(large.monitor.cliMedian / small.monitor.cliMedian)}** | **${fixed(large.monitor.serviceMedian / small.monitor.serviceMedian)}** |`,
      '',
      '| target | value | met |',
      '|---|---:|:---:|',
      ...targets.map((t) => `| ${t.name} ${t.target} | ${t.value === null ? '?' : fixed(t.value)} | ${t.met ? 'yes' : 'no'} |`),
    ]
    process.stdout.write(lines.join('\n') + '\n')
    log(`results: ${path.relative(process.cwd(), file)} (${fixed(result.durationSeconds, 0)} s in all)`)
  } finally {
    await stop()
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(1)
  },
)
