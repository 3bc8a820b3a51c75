/**
 * Fault and load suite: the real CLI as a child process against a real emulator, with
 * kill -9, SIGINT, a concurrent app, network faults, competing runs, bad input, an
 * interrupted rollback, other hosts' clocks minutes off, a holder frozen past its lease,
 * Ctrl-C in one process of a sharded run, and the real service's answers through a gRPC
 * proxy (service.ts); after each, the whole collection is checked.
 *
 *   npm run test:chaos -- [--items N] [--only <scenario>[,<scenario>]] [--seed S]
 *   CHAOS_ITEMS=5000 npm run test:chaos
 *   CHAOS_OUTAGE_BUDGET=30 npm run test:chaos -- --only network   (the CLI's outage budget there, default 20 s)
 */
import {startEmulator} from '../../src/dev/emulator'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {badInput} from './bad-input'
import {concurrentApp} from './concurrent-app'
import {ChaosContext, copyCli, prng, Report, Scenario} from './context'
import {freeze} from './freeze'
import {kill9} from './kill9'
import {lock} from './lock'
import {network} from './network'
import {rollback} from './rollback'
import {SERVICE_SCENARIOS} from './service'
import {shardedInterrupt} from './sharded-interrupt'
import {sigint} from './sigint'
import {skew} from './skew'

const SCENARIOS: Scenario[] = [
  kill9,
  sigint,
  concurrentApp,
  network,
  lock,
  badInput,
  rollback,
  skew,
  freeze,
  shardedInterrupt,
  ...SERVICE_SCENARIOS,
]

function parseArgs(argv: string[]): {items: number; only: string[] | null; seed: number} {
  let items = Number(process.env.CHAOS_ITEMS ?? 50_000)
  let only: string[] | null = null
  let seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1e9))
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = () => inline ?? argv[++i]
    if (flag === '--items') items = Number(value())
    else if (flag === '--only') only = value().split(',')
    else if (flag === '--seed') seed = Number(value())
    else if (flag === '--help' || flag === '-h') {
      console.log(
        `usage: tsx test/chaos/run.ts [--items N (default 50000, or $CHAOS_ITEMS)] [--only ${SCENARIOS.map((s) => s.name).join('|')}[,...]] [--seed S (or $CHAOS_SEED)]; $CHAOS_OUTAGE_BUDGET: the CLI's outage budget in the network scenario (default 20 s)`,
      )
      process.exit(0)
    } else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!Number.isInteger(items) || items < 1000) throw new Error(`--items must be an integer >= 1000, got ${items}`)
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${seed}`)
  const unknown = (only ?? []).filter((n) => !SCENARIOS.some((s) => s.name === n))
  if (unknown.length)
    throw new Error(`unknown scenario ${unknown.join(', ')}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`)
  return {items, only, seed}
}

function print(scenario: Scenario, report: Report, seconds: number): void {
  const out = process.stdout
  out.write(`\n== ${scenario.name}: ${scenario.title} — ${report.ok ? 'PASS' : 'FAIL'} (${seconds.toFixed(1)}s)\n`)
  for (const c of report.checks) out.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.text}\n`)
  out.write(
    `  figures: ${Object.entries(report.figures)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  )
}

async function main(): Promise<number> {
  const {items, only, seed} = parseArgs(process.argv.slice(2))
  const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.name))
  const cli = copyCli()
  const emulator = await startEmulator()
  // The suite's own clients (seeding, checking) talk to it; the CLI is always given --emulator-host.
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host
  process.env.METADATA_SERVER_DETECTION ??= 'none'
  console.log(
    `chaos suite: ${scenarios.length} scenario(s), ${items} items each, seed ${seed}, emulator ${emulator.host}`,
  )
  const failed: string[] = []
  try {
    for (const [i, scenario] of scenarios.entries()) {
      const started = Date.now()
      const log = (m: string) =>
        process.stderr.write(`  [${scenario.name} ${((Date.now() - started) / 1000).toFixed(1)}s] ${m}\n`)
      const ctx: ChaosContext = {
        host: emulator.host,
        bin: cli.bin,
        items,
        vocab: loadVocabulary(),
        random: prng(seed + i * 7919),
        seed: seed + i,
        log,
      }
      const report = new Report()
      try {
        await scenario.run(ctx, report)
      } catch (err) {
        report.check(false, 'scenario ran to its end', (err as Error).stack ?? String(err))
      }
      print(scenario, report, (Date.now() - started) / 1000)
      if (!report.ok) failed.push(scenario.name)
    }
  } finally {
    await emulator.stop()
    cli.remove()
  }
  console.log(
    `\n${failed.length === 0 ? 'all scenarios passed' : `FAILED: ${failed.join(', ')}`} (items ${items}, seed ${seed})`,
  )
  return failed.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(2)
  },
)
