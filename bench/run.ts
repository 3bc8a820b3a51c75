/**
 * `npm run bench [-- --quick] [-- --dataset] [-- --only startup]`: start-up, backfill throughput and
 * memory against baselines, in one run, on emulators this script starts (and stops), one per phase. Prints a markdown
 * table on stdout and writes the figures to bench/results/bench_YYYYMMDD_HHMMSS.json.
 *
 * Benchmarks are not tests: nothing here asserts a timing; targets are reported as met or not.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {Firestore} from 'firebase-admin/firestore'
import {clearEmulator, RunningEmulator, startEmulator} from '../src/dev/emulator'
import {generateItems, SeedItem} from '../src/dev/seed-data'
import {loadVocabulary} from '../src/domain/vocabulary'
import {
  backfillService,
  bareCount,
  ceiling,
  CEILING_WINDOW,
  Engine,
  load,
  loadEngine,
  Measured,
  monitorService,
  naive,
  ServiceRun,
  settle,
} from './baselines'
import {DEFAULT_CATALOGUE, readCatalogue} from './dataset'
import {measureStartup, STARTUP_TARGET, StartupPair, startupTable} from './startup'
import {
  BIN,
  CpuMeter,
  CpuUse,
  describeMachine,
  findEmulatorPid,
  JvmHeap,
  jvmHeap,
  median,
  ProcessRun,
  ROOT,
  runCli,
} from './measure'

const USAGE = `Usage: npm run bench -- [--quick] [--dataset [--dataset-file FILE]] [--items N] [--sizes A,B] [--repeat K] [--seed S] [--out DIR] [--before DIR] [--only startup]
  --only startup  only the start-up ratios (a minute): help, version and monitor against baselines
  --quick         small sizes (comparison 10,000 items; memory and monitor at 2,000 and 20,000)
  --dataset       compare on the real catalogue (${DEFAULT_CATALOGUE}) instead of generated items
  --items N       items for the (a)/(b)/(c) comparison (default 50,000)
  --sizes A,B     sizes for peak RSS and monitor time (default 20,000,200,000)
  --repeat K      runs of (a) and (c) each, interleaved in alternating order; the best counts (default 3)
  --before DIR    also run (c) through the built service layer (dist/) of another checkout (an earlier
                  commit, built, with node_modules, e.g. a symlink to this one's), interleaved, for
                  before/after figures`

interface Options {
  quick: boolean
  dataset: string | null
  items: number
  sizes: [number, number]
  repeat: number
  seed: number
  out: string
  before: string | null
  startupOnly: boolean
}

/** Runs of each side of a start-up pair: short processes vary more than long runs. */
const STARTUP_REPEAT = 15

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
      before: {type: 'string'},
      only: {type: 'string'},
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
  if (values.only !== undefined && values.only !== 'startup')
    throw new Error(`--only takes startup, not ${values.only}\n${USAGE}`)
  const quick = values.quick ?? false
  const sizes = (values.sizes ?? (quick ? '2000,20000' : '20000,200000')).split(',').map((s) => int(s, 0))
  if (sizes.length !== 2) throw new Error(`--sizes takes two sizes\n${USAGE}`)
  return {
    quick,
    dataset: values.dataset || values['dataset-file'] ? (values['dataset-file'] ?? DEFAULT_CATALOGUE) : null,
    items: int(values.items, quick ? 10_000 : 50_000),
    sizes: [sizes[0], sizes[1]],
    repeat: int(values.repeat, 3),
    seed: int(values.seed, 1),
    out: path.resolve(values.out ?? path.join(ROOT, 'bench', 'results')),
    before: values.before ? path.resolve(values.before) : null,
    startupOnly: values.only === 'startup',
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
  cpu: CpuUse
}

/** Monitor runs at one size stop repeating once they have taken this long (the emulator counts in O(n)). */
const MONITOR_BUDGET_SECONDS = 40

async function main(): Promise<void> {
  const opts = options()
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands', 'backfill.js')))
    throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)')
  if (
    opts.before &&
    !['index.js', 'lib/backfill.js'].some((f) => fs.existsSync(path.join(opts.before as string, 'dist', f)))
  )
    throw new Error(`${opts.before}/dist is missing: build that checkout first`)
  const startedAt = new Date()
  const machine = describeMachine()
  log(
    `${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.emulator}, load average ${machine.loadAverage.join(' ')}`,
  )
  const catalogue = opts.dataset ? readCatalogue(opts.dataset) : null
  const compareItems = (): Iterable<SeedItem> =>
    catalogue ?? generateItems(opts.items, {seed: opts.seed, malformedRate: 0})
  const compareCount = catalogue?.length ?? opts.items
  const vocabulary = loadVocabulary()
  const engine = loadEngine()
  const beforeEngine: Engine | null = opts.before ? loadEngine(opts.before) : null
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wardrobe-bench-'))

  let emulator: RunningEmulator | null = null
  const stopEmulator = async () => {
    await emulator?.stop()
    emulator = null
  }
  const stop = async () => {
    await stopEmulator()
    fs.rmSync(tmp, {recursive: true, force: true})
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: stopping the emulator`)
      void stop().finally(() => process.exit(130))
    })

  /** One measuring phase's emulator: its host, its JVM (for CPU and heap), and loaded projects on it. */
  interface Phase {
    host: string
    pid: number | null
    meter: CpuMeter
    withFresh: <T>(
      label: string,
      items: Iterable<SeedItem>,
      fn: (db: Firestore, projectId: string, loaded: number) => Promise<T>,
    ) => Promise<T>
  }
  const heaps: {phase: string; heap: JvmHeap | null}[] = []
  let projects = 0
  /**
   * Runs `fn` on an emulator of its own, warmed up first. The emulator keeps what deleted projects
   * held: one emulator for the whole benchmark ran out of heap (back-to-back full collections)
   * before the 200,000-item phase, so each phase starts a fresh one.
   */
  const phase = async <T>(
    name: string,
    warmUp: {ceiling?: boolean; engines: Engine[]},
    fn: (p: Phase) => Promise<T>,
  ): Promise<T> => {
    emulator = await startEmulator()
    const host = emulator.host
    process.env.FIRESTORE_EMULATOR_HOST = host
    process.env.METADATA_SERVER_DETECTION = 'none'
    const pid = findEmulatorPid(host)
    log(`${name}: emulator at ${host}${pid ? ` (pid ${pid})` : ' (its CPU time is not measured: JVM not found)'}`)
    /**
     * A new project on the emulator, loaded with `items`, then a pause until the emulator is idle:
     * each measurement gets a fresh, identical data set and starts on a quiet emulator.
     */
    const withFresh = async <R>(
      label: string,
      items: Iterable<SeedItem>,
      f: (db: Firestore, projectId: string, loaded: number) => Promise<R>,
    ): Promise<R> => {
      const projectId = `demo-bench-${process.pid}-${++projects}`
      const db = new Firestore({projectId})
      try {
        const t = Date.now()
        const loaded = await load(db, items)
        const waited = await settle(pid)
        log(
          `${label}: loaded ${fmt(loaded)} items in ${fixed((Date.now() - t) / 1000 - waited, 1)} s (then ${fixed(waited, 1)} s for the emulator to go idle)`,
        )
        return await f(db, projectId, loaded)
      } finally {
        await db.terminate().catch(() => {})
        await clearEmulator(host, projectId).catch(() => {})
      }
    }
    try {
      // Warm-up: the emulator's JVM compiles its hot paths on the first tens of thousands of writes
      // and queries (and this process's V8 the client's).
      const warm = opts.quick ? 5000 : 20_000
      const warmItems = () => generateItems(warm, {seed: 999, malformedRate: 0})
      if (warmUp.ceiling) await withFresh('warm-up (a)', warmItems(), (db) => ceiling(db, warmItems(), vocabulary))
      for (const e of warmUp.engines)
        await withFresh('warm-up (c)', warmItems(), (db, projectId) => backfillService(db, projectId, vocabulary, e))
      const result = await fn({host, pid, meter: new CpuMeter(pid), withFresh})
      const heap = jvmHeap(pid)
      heaps.push({phase: name, heap})
      if (heap)
        log(
          `${name}: emulator heap at the end: old generation ${heap.oldPercent}% full, ${heap.fullCollections} full collections (${fixed(heap.fullCollectionSeconds, 1)} s)`,
        )
      return result
    } finally {
      await stopEmulator()
    }
  }
  const cliTarget = (host: string, projectId: string) => [
    '--environment',
    'development',
    '--emulator-host',
    host,
    '--project',
    projectId,
    '--output-dir',
    tmp,
  ]
  const cliBackfill = async (p: Phase, projectId: string, items: number): Promise<CliBackfill> => {
    p.meter.begin()
    const run: ProcessRun = await runCli(['backfill', ...cliTarget(p.host, projectId), '--json'], {cwd: tmp})
    const cpu = p.meter.end(run.cpuSeconds)
    if (run.code !== 0) throw new Error(`wardrobe backfill exited ${run.code}:\n${run.stderr.slice(-2000)}`)
    const stats = JSON.parse(run.stdout) as {scanned: number; rate: number; status: string}
    if (stats.scanned !== items) throw new Error(`wardrobe backfill scanned ${stats.scanned} of ${items}`)
    return {
      items,
      seconds: run.seconds,
      rate: items / run.seconds,
      reportedRate: stats.rate,
      peakRssMiB: mib(run.peakRssKiB),
      exitCode: run.code,
      cpu,
    }
  }

  // An empty project on an emulator of its own: what monitor costs beyond start-up is then one snapshot of counts.
  const startupPhase = () =>
    phase('start-up', {engines: []}, (p) =>
      measureStartup({
        dir: tmp,
        host: p.host,
        projectId: `demo-bench-startup-${process.pid}`,
        repeat: STARTUP_REPEAT,
        log,
      }),
    )

  try {
    const startup = await startupPhase()
    if (opts.startupOnly) {
      const finishedAt = new Date()
      const result = {
        kind: 'wardrobe-bench',
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        mode: 'startup',
        machine: {...machine, loadAverageEnd: describeMachine().loadAverage},
        startup,
        targets: startupTargets(startup),
      }
      const file = writeResult(opts.out, startedAt, result)
      process.stdout.write(
        [
          `Machine: ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}; load average ${machine.loadAverage[0]} at start (shared machine); medians of ${STARTUP_REPEAT} runs each, alternating.`,
          '',
          ...startupTable(startup),
        ].join('\n') + '\n',
      )
      log(`results: ${path.relative(process.cwd(), file)}`)
      return
    }
    // (a) and (c), `repeat` times each, in alternating order (a drifting machine favours neither),
    // each round on its own emulator.
    const ceilingRuns: Measured[] = []
    const serviceRuns: ServiceRun[] = []
    const beforeRuns: ServiceRun[] = []
    // The cost of live control: the same run with its control read never made (its process heartbeat stays).
    const uncontrolledRuns: ServiceRun[] = []
    const engines = beforeEngine ? [engine, beforeEngine] : [engine]
    for (let r = 1; r <= opts.repeat; r++) {
      await phase(`round ${r}`, {ceiling: true, engines}, async (p) => {
        const steps = {
          a: async () => {
            const a = await p.withFresh(`(a) ceiling #${r}`, compareItems(), (db) =>
              ceiling(db, compareItems(), vocabulary, p.meter),
            )
            log(`(a) write ceiling #${r}: ${fmt(a.rate)} items/s (${fixed(a.seconds)} s)`)
            ceilingRuns.push(a)
          },
          c: async () => {
            const c = await p.withFresh(`(c) service #${r}`, compareItems(), (db, projectId) =>
              backfillService(db, projectId, vocabulary, engine, {meter: p.meter}),
            )
            log(
              `(c) backfill service #${r}: ${fmt(c.rate)} items/s (${fixed(c.seconds)} s; started ${c.phases.started?.toFixed(2)} s, first item ${c.phases.firstSettled?.toFixed(2)} s)`,
            )
            serviceRuns.push(c)
          },
          uncontrolled: async () => {
            const u = await p.withFresh(`(c) without control read #${r}`, compareItems(), (db, projectId) =>
              backfillService(db, projectId, vocabulary, engine, {meter: p.meter, controlPollMs: 0}),
            )
            log(`(c) backfill service without the control read #${r}: ${fmt(u.rate)} items/s (${fixed(u.seconds)} s)`)
            uncontrolledRuns.push(u)
          },
          before: async () => {
            if (!beforeEngine) return
            const b = await p.withFresh(`(c) before #${r}`, compareItems(), (db, projectId) =>
              backfillService(db, projectId, vocabulary, beforeEngine, {meter: p.meter}),
            )
            log(
              `(c) backfill service of ${opts.before} #${r}: ${fmt(b.rate)} items/s (${fixed(b.seconds)} s; first item ${b.phases.firstSettled?.toFixed(2)} s)`,
            )
            beforeRuns.push(b)
          },
        }
        const order: (keyof typeof steps)[] =
          r % 2 === 1 ? ['a', 'c', 'uncontrolled', 'before'] : ['before', 'uncontrolled', 'c', 'a']
        for (const step of order) await steps[step]()
      })
    }
    const {dry, naiveRun, cliRun} = await phase('dry run, naive, CLI', {engines: [engine]}, async (p) => {
      // (d) the service layer's dry run: the same count, scan and plans, no write. What reading costs.
      const dry = await p.withFresh('(d) dry run', compareItems(), (db, projectId) =>
        backfillService(db, projectId, vocabulary, engine, {meter: p.meter, dryRun: true}),
      )
      log(`(d) backfill service, dry run: ${fmt(dry.rate)} items/s (${fixed(dry.seconds)} s)`)
      const naiveRun = await p.withFresh('(b) naive', compareItems(), (db) => naive(db, vocabulary, p.meter))
      log(`(b) naive: ${fmt(naiveRun.rate)} items/s (${fixed(naiveRun.seconds)} s)`)
      const cliRun = await p.withFresh('(c) CLI', compareItems(), (_db, projectId) =>
        cliBackfill(p, projectId, compareCount),
      )
      log(
        `(c) backfill CLI: ${fmt(cliRun.rate)} items/s wall (${fixed(cliRun.seconds)} s), reported ${fmt(cliRun.reportedRate)}/s, peak RSS ${cliRun.peakRssMiB} MiB`,
      )
      return {dry, naiveRun, cliRun}
    })

    // A sharded run in one process with 1, 2 and 4 workers, 4 partitions per worker (1 worker too:
    // with one partition it would be the one-worker run of (c)).
    const workerRuns = await phase('sharded runs', {engines: [engine]}, async (p) => {
      const runs: (ServiceRun & {workers: number; partitions: number})[] = []
      for (const workers of [1, 2, 4]) {
        const partitions = 4 * workers
        const sharding = {workers, partitions, shardIndex: 0, shardCount: 1}
        const run = await p.withFresh(`sharded, ${workers} worker(s)`, compareItems(), (db, projectId) =>
          backfillService(db, projectId, vocabulary, engine, {meter: p.meter, sharding}),
        )
        log(
          `sharded backfill, ${workers} worker(s), ${partitions} partitions: ${fmt(run.rate)} items/s (${fixed(run.seconds)} s)`,
        )
        runs.push({workers, partitions, ...run})
      }
      return runs
    })

    // CLI start-up alone, to read the process figures.
    const startups: number[] = []
    for (let i = 0; i < 3; i++) startups.push((await runCli(['--version'], {cwd: tmp})).seconds)
    const cliStartup = median(startups)

    // Memory and monitor at two sizes, each on its own emulator; a bare count() at each size is
    // the emulator's own cost of one aggregation.
    const scale = []
    for (const size of opts.sizes) {
      scale.push(
        await phase(`${fmt(size)} items`, {engines: [engine]}, (p) =>
          p.withFresh(
            `${fmt(size)} items`,
            generateItems(size, {seed: opts.seed, malformedRate: 0}),
            async (db, projectId) => {
              const backfill = await cliBackfill(p, projectId, size)
              log(
                `backfill CLI at ${fmt(size)}: ${fmt(backfill.rate)} items/s wall, peak RSS ${backfill.peakRssMiB} MiB`,
              )
              await settle(p.pid)
              const counts: number[] = []
              for (let i = 0; i < 3; i++) counts.push(await bareCount(db))
              const cli: number[] = []
              const service: number[] = []
              let aggregations = 0
              let spent = 0
              while (cli.length < 3 && spent < MONITOR_BUDGET_SECONDS) {
                const run = await runCli(['monitor', ...cliTarget(p.host, projectId), '--json'], {cwd: tmp})
                if (run.code !== 0) throw new Error(`wardrobe monitor exited ${run.code}:\n${run.stderr.slice(-2000)}`)
                cli.push(run.seconds)
                const s = await monitorService(db, projectId, vocabulary, engine)
                service.push(s.seconds)
                aggregations = s.aggregations
                spent += run.seconds + s.seconds
              }
              const count = median(counts)
              log(
                `at ${fmt(size)}: bare count() ${fixed(count)} s; monitor CLI ${fixed(median(cli))} s, service ${fixed(median(service))} s (${aggregations} aggregations; medians of ${cli.length})`,
              )
              return {
                items: size,
                backfill,
                bareCount: {seconds: counts, median: count},
                monitor: {
                  aggregations,
                  cliSeconds: cli,
                  serviceSeconds: service,
                  cliMedian: median(cli),
                  serviceMedian: median(service),
                  serviceOverCount: median(service) / count,
                },
              }
            },
          ),
        ),
      )
    }

    const best = <T extends Measured>(runs: T[]) => runs.reduce((x, y) => (y.rate > x.rate ? y : x))
    const a = best(ceilingRuns)
    const c = best(serviceRuns)
    const before = beforeRuns.length > 0 ? best(beforeRuns) : null
    const uncontrolled = best(uncontrolledRuns)
    // After the first item settled: without the start (lock, first query; the emulator's query walks the whole collection first).
    const steady = (r: ServiceRun) =>
      r.phases.firstSettled === null ? null : r.items / (r.seconds - r.phases.firstSettled)
    const steadyRate = steady(c)
    const [small, large] = scale
    const ratio = (x: number | null, y: number | null) => (x === null || y === null || y === 0 ? null : x / y)
    const countGrowth = large.bareCount.median / small.bareCount.median
    const monitorGrowth = large.monitor.serviceMedian / small.monitor.serviceMedian
    // One Node thread does all of the client's work. When (a) keeps it busy, (c) cannot beat (a) by
    // more than their client CPU per item allows, whatever the emulator does.
    const clientCpu = (m: Measured) => m.cpu?.clientSeconds ?? null
    const ceilingBusy = ratio(clientCpu(a), a.seconds)
    const clientBound = ratio(clientCpu(a), clientCpu(c))
    const targets = [
      {
        name: '(c)/(a): service vs write ceiling',
        value: c.rate / a.rate,
        target: '>= 0.8',
        met: c.rate / a.rate >= 0.8,
      },
      {
        name: '(c)/(c without the control read): cost of live control',
        value: c.rate / uncontrolled.rate,
        target: '>= 0.97',
        met: c.rate / uncontrolled.rate >= 0.97,
      },
      {
        name: '(c)/(b): service vs naive',
        value: c.rate / naiveRun.rate,
        target: '>= 4',
        met: c.rate / naiveRun.rate >= 4,
      },
      {
        name: '(c) CLI/(a): CLI process vs write ceiling',
        value: cliRun.rate / a.rate,
        target: '>= 0.8',
        met: cliRun.rate / a.rate >= 0.8,
      },
      {
        name: '(c) CLI/(b): CLI process vs naive',
        value: cliRun.rate / naiveRun.rate,
        target: '>= 4',
        met: cliRun.rate / naiveRun.rate >= 4,
      },
      {
        name: `peak RSS ${fmt(large.items)} / ${fmt(small.items)}`,
        value: ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB),
        target: '<= 1.25',
        met: (ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB) ?? Infinity) <= 1.25,
      },
      {
        name: `monitor CLI ${fmt(large.items)} / ${fmt(small.items)}`,
        value: large.monitor.cliMedian / small.monitor.cliMedian,
        target: '<= 2',
        met: large.monitor.cliMedian / small.monitor.cliMedian <= 2,
      },
      {
        name: `monitor service ${fmt(large.items)} / ${fmt(small.items)}`,
        value: monitorGrowth,
        target: '<= 2',
        met: monitorGrowth <= 2,
      },
      ...startupTargets(startup),
    ]
    const monitorVerdict =
      countGrowth > 2
        ? `Not reachable on the emulator: one bare count() of the collection alone grows ${fixed(countGrowth, 1)}× from ${fmt(small.items)} to ${fmt(large.items)} items (the emulator walks every document), and monitor needs at least one count of the whole collection; monitor takes ${fixed(small.monitor.serviceOverCount, 1)}× and ${fixed(large.monitor.serviceOverCount, 1)}× a bare count at the two sizes. On Firestore count() reads one index entry per 1,000 documents.`
        : `Reachable here: a bare count() grows ${fixed(countGrowth, 1)}× from ${fmt(small.items)} to ${fmt(large.items)} items.`
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
        ceilingWindow: CEILING_WINDOW,
        engine: 'dist/ (built service layer)',
        ceiling: {best: a, runs: ceilingRuns},
        naive: naiveRun,
        service: {best: c, runs: serviceRuns},
        withoutControlRead: {best: uncontrolled, runs: uncontrolledRuns, serviceOverIt: c.rate / uncontrolled.rate},
        dryRun: dry,
        before: before
          ? {
              checkout: opts.before,
              best: before,
              runs: beforeRuns,
              overCeiling: before.rate / a.rate,
              overNaive: before.rate / naiveRun.rate,
            }
          : null,
        cli: cliRun,
        cliStartupSeconds: cliStartup,
        serviceSteadyRate: steadyRate,
        ratios: {
          serviceOverCeiling: c.rate / a.rate,
          serviceOverNaive: c.rate / naiveRun.rate,
          cliOverCeiling: cliRun.rate / a.rate,
          cliOverNaive: cliRun.rate / naiveRun.rate,
        },
        clientThread: {ceilingBusy, clientCpuCeilingOverService: clientBound},
      },
      workers: workerRuns,
      startup,
      scale,
      emulatorHeaps: heaps,
      monitorVerdict,
      targets,
      bin: path.relative(ROOT, BIN),
    }
    const file = writeResult(opts.out, startedAt, result)

    const cpu1k = (m: {cpu: CpuUse | null; items: number}) =>
      m.cpu && m.cpu.clientSeconds !== null && m.cpu.emulatorSeconds !== null
        ? `${fixed((m.cpu.clientSeconds / m.items) * 1000)} + ${fixed((m.cpu.emulatorSeconds / m.items) * 1000)}`
        : '?'
    const lines = [
      `Machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB RAM, Node ${machine.node}, ${machine.emulator}; load average ${machine.loadAverage[0]} at start, ${machineEnd.loadAverage[0]} at end (shared machine). ${result.comparison.dataset}; best of ${opts.repeat} for (a) and (c), in alternating order.`,
      '',
      `| ${fmt(compareCount)} items, each on a freshly loaded identical collection | items/s | vs (a) | vs (b) | CPU s per 1,000 items: client + emulator |`,
      '|---|---:|---:|---:|---:|',
      `| (a) write ceiling: BulkWriter updates of \`normalized\`, no reads, unthrottled | ${fmt(a.rate)} | 1.00 | ${fixed(a.rate / naiveRun.rate, 1)} | ${cpu1k(a)} |`,
      `| (b) naive: cursor pages of 500, one WriteBatch per page, in sequence | ${fmt(naiveRun.rate)} | ${fixed(naiveRun.rate / a.rate)} | 1.0 | ${cpu1k(naiveRun)} |`,
      `| (c) wardrobe backfill, service layer (\`runBackfill\`, built) | ${fmt(c.rate)} | **${fixed(c.rate / a.rate)}** | **${fixed(c.rate / naiveRun.rate, 1)}** | ${cpu1k(c)} |`,
      ...(steadyRate === null
        ? []
        : [
            `| (c) the same run after its first item settled (lock and the first query's start excluded; approximate) | ${fmt(steadyRate)} | ${fixed(steadyRate / a.rate)} | ${fixed(steadyRate / naiveRun.rate, 1)} | |`,
          ]),
      `| (c) the same without its control read (pause, stop, throttle never seen; the cost of live control) | ${fmt(uncontrolled.rate)} | ${fixed(uncontrolled.rate / a.rate)} | ${fixed(uncontrolled.rate / naiveRun.rate, 1)} | ${cpu1k(uncontrolled)} |`,
      ...(before
        ? [
            `| (c) before: service layer of ${opts.before} | ${fmt(before.rate)} | ${fixed(before.rate / a.rate)} | ${fixed(before.rate / naiveRun.rate, 1)} | ${cpu1k(before)} |`,
          ]
        : []),
      `| (c) wardrobe backfill, CLI process (wall time, ${fixed(cliStartup, 1)} s start-up included) | ${fmt(cliRun.rate)} | ${fixed(cliRun.rate / a.rate)} | ${fixed(cliRun.rate / naiveRun.rate, 1)} | ${cpu1k(cliRun)} |`,
      `| (d) the service layer's dry run: count, scan and plans, no write | ${fmt(dry.rate)} | ${fixed(dry.rate / a.rate)} | ${fixed(dry.rate / naiveRun.rate, 1)} | ${cpu1k(dry)} |`,
      '',
      `| sharded run, ${fmt(compareCount)} items, one process | items/s | vs 1 worker | vs (c) | vs (a) | CPU s per 1,000 items: client + emulator |`,
      '|---|---:|---:|---:|---:|---:|',
      ...workerRuns.map(
        (w) =>
          `| ${w.workers} worker${w.workers === 1 ? '' : 's'}, ${w.partitions} partitions | ${fmt(w.rate)} | ${fixed(w.rate / workerRuns[0].rate)} | ${fixed(w.rate / c.rate)} | ${fixed(w.rate / a.rate)} | ${cpu1k(w)} |`,
      ),
      '',
      ...(ceilingBusy !== null && clientBound !== null
        ? [
            `Client thread: (a) keeps this process's CPU ${fixed(100 * ceilingBusy, 0)}% busy; (c) spends ${fixed(1 / clientBound)}× (a)'s client CPU per item (reads and plans on top of the same writes), so with one Node thread (c)/(a) stays below about ${fixed(clientBound)} here${ceilingBusy < 0.85 ? ' (approximate: (a) leaves the thread idle part of the time)' : ''}.`,
            '',
          ]
        : []),
      ...startupTable(startup),
      '',
      `| items | backfill CLI items/s | backfill CLI peak RSS | bare count() (median) | monitor CLI (median) | monitor service call (median) | monitor / bare count |`,
      '|---:|---:|---:|---:|---:|---:|---:|',
      ...scale.map(
        (s) =>
          `| ${fmt(s.items)} | ${fmt(s.backfill.rate)} | ${s.backfill.peakRssMiB ?? '?'} MiB | ${fixed(s.bareCount.median)} s | ${fixed(s.monitor.cliMedian)} s (${s.monitor.cliSeconds.length} runs) | ${fixed(s.monitor.serviceMedian)} s (${s.monitor.aggregations} aggregations) | ${fixed(s.monitor.serviceOverCount, 1)} |`,
      ),
      `| ratio | | **${fixed(ratio(large.backfill.peakRssMiB, small.backfill.peakRssMiB) ?? NaN)}** | **${fixed(countGrowth)}** | **${fixed(large.monitor.cliMedian / small.monitor.cliMedian)}** | **${fixed(monitorGrowth)}** | |`,
      '',
      `Monitor ≤ 2× target: ${monitorVerdict}`,
      '',
      '| target | value | met |',
      '|---|---:|:---:|',
      ...targets.map(
        (t) => `| ${t.name} ${t.target} | ${t.value === null ? '?' : fixed(t.value)} | ${t.met ? 'yes' : 'no'} |`,
      ),
    ]
    process.stdout.write(lines.join('\n') + '\n')
    log(`results: ${path.relative(process.cwd(), file)} (${fixed(result.durationSeconds, 0)} s in all)`)
  } finally {
    await stop()
  }
}

function startupTargets(pairs: StartupPair[]) {
  return pairs.map((p) => ({
    name: `start-up: ${p.name} / ${p.baseline}`,
    value: p.ratio,
    target: `<= ${STARTUP_TARGET}`,
    met: p.met,
  }))
}

/** bench/results/bench_YYYYMMDD_HHMMSS.json */
function writeResult(dir: string, startedAt: Date, result: object): string {
  fs.mkdirSync(dir, {recursive: true})
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15)
  const file = path.join(dir, `bench_${stamp}.json`)
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  return file
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(1)
  },
)
