import {ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {FieldPath, Firestore} from 'firebase-admin/firestore'
import {DEFAULT_COLLECTION, DEFAULT_LEDGER} from '../../src/lib/config'
import {clearEmulator} from '../../src/lib/emulator'
import {parseRun, RunRecord} from '../../src/lib/ledger'
import {generateItems, mulberry32, SeedItem, writeItems} from '../../src/lib/seed-data'
import {DEFAULT_TAXONOMY_FILE, Vocabulary} from '../../src/lib/vocabulary'
import {CliResult, ROOT, tmpDir} from '../support/harness'
import type {Verdict} from './checker'
import {sleep} from './proxy'

export const COL = DEFAULT_COLLECTION

export interface ChaosContext {
  /** The suite's own emulator. */
  host: string
  /** bin/run.js of the CLI under test (a private copy of the build, see copyCli). */
  bin: string
  items: number
  vocab: Vocabulary
  /** Seeded: a failing run can be repeated with the same --seed. */
  random: () => number
  seed: number
  /** A timestamped progress line on stderr. */
  log: (message: string) => void
}

export interface Scenario {
  name: string
  title: string
  run(ctx: ChaosContext, report: Report): Promise<void>
}

/** What a scenario checked, and its figures. A failed check is a violation. */
export class Report {
  readonly checks: {ok: boolean; text: string}[] = []
  readonly figures: Record<string, string | number> = {}

  check(ok: boolean, text: string, detail?: string): boolean {
    this.checks.push({ok, text: ok || !detail ? text : `${text}: ${detail}`})
    return ok
  }

  figure(name: string, value: string | number): void {
    this.figures[name] = value
  }

  /** The whole-collection verdict as checks (lost = 0, stale = 0, nothing else broken) and figures. */
  verdict(label: string, v: Verdict, figures = true): void {
    const examples = v.examples.length ? ` e.g. ${v.examples.slice(0, 4).join('; ')}` : ''
    this.check(v.lost === 0, `${label}: nothing lost (originals, documents, writes, error reports)`, `lost = ${v.lost} ${JSON.stringify(v.problems)}${examples}`)
    this.check(v.stale === 0, `${label}: no normalized value stale or on a malformed item`, `stale = ${v.stale} ${JSON.stringify(v.problems)}${examples}`)
    this.check(v.other === 0, `${label}: error reports exactly the malformed items, with the normalizer's reasons`, `${v.other} ${JSON.stringify(v.problems)}${examples}`)
    if (!figures) return
    // Several verdicts in one scenario add up.
    for (const [k, n] of [['items', v.items], ['normalized', v.normalized], ['errorItems', v.errorItems], ['appLast', v.appLast], ['lost', v.lost], ['stale', v.stale]] as const) {
      if (k === 'appLast' && n === 0) continue
      this.figure(k, (typeof this.figures[k] === 'number' ? (this.figures[k] as number) : 0) + n)
    }
  }

  get ok(): boolean {
    return this.checks.every((c) => c.ok)
  }
}

/** A random integer in [min, max]. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1))
}

/** The seeded PRNG the generator uses (mulberry32): a scenario replays exactly from its seed. */
export const prng = mulberry32

/** The shipped taxonomy under another version (a second backfill then replaces every value). */
export function taxonomyWithVersion(dir: string, version: string): string {
  const file = path.join(dir, `taxonomy-${version}.json`)
  fs.writeFileSync(file, JSON.stringify({...JSON.parse(fs.readFileSync(DEFAULT_TAXONOMY_FILE, 'utf8')), version}))
  return file
}

/** One scenario's own emulator project, output directory and CLI invocations. */
export class Target {
  readonly db: Firestore
  readonly out: string
  private cliRuns = 0
  /** Every process this target started, killed at close() if still running (a scenario cut short). */
  private readonly children = new Set<ChildProcess>()

  constructor(
    readonly ctx: ChaosContext,
    readonly projectId: string,
  ) {
    this.db = new Firestore({projectId})
    this.out = tmpDir(`wardrobe-chaos-${projectId}-`)
  }

  static async create(ctx: ChaosContext, name: string): Promise<Target> {
    const t = new Target(ctx, `demo-chaos-${name}-${process.pid}`)
    await clearEmulator(ctx.host, t.projectId)
    return t
  }

  /** The common flags, pointed at the emulator (or at a proxy in front of it). */
  args(host = this.ctx.host): string[] {
    return ['--environment', 'development', '--project', this.projectId, '--emulator-host', host, '--collection', COL, '--output-dir', this.out, '--json']
  }

  async seed(items: Iterable<SeedItem>): Promise<number> {
    const n = await writeItems(this.db, COL, items)
    this.ctx.log(`seeded ${n} items`)
    return n
  }

  async seedGenerated(count: number, seed: number, malformedRate = 0.02): Promise<number> {
    return this.seed(generateItems(count, {seed, malformedRate}))
  }

  /** Starts `wardrobe <command> <common flags> <extra>` as a child process. */
  start(command: 'backfill' | 'rollback', extra: string[] = [], host?: string): {child: ChildProcess; done: Promise<CliResult>; args: string[]} {
    const args = [command, ...this.args(host), ...extra]
    this.cliRuns++
    const {child, done: finished} = startCli(this.ctx.bin, args, this.out)
    this.adopt(child)
    const n = this.cliRuns
    this.ctx.log(`cli #${n} (pid ${child.pid}): ${command} ${extra.join(' ')}`)
    const done = finished.then((res) => {
      const stats = parseJson(res.stdout)
      this.ctx.log(`cli #${n} ended: exit ${res.code ?? res.signal}${stats?.status ? `, ${stats.status}, scanned ${stats.scannedHere} here, updated ${stats.updated}, failed ${stats.failed}, conflicts ${stats.conflicts}, ${stats.rate}/s` : ''}`)
      return res
    })
    return {child, done, args}
  }

  adopt(child: ChildProcess): void {
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
  }

  get runsStarted(): number {
    return this.cliRuns
  }

  async run(command: 'backfill' | 'rollback', extra: string[] = [], host?: string): Promise<CliResult & {stats: any}> {
    const res = await this.start(command, extra, host).done
    return {...res, stats: parseJson(res.stdout)}
  }

  async runRecord(runId: string): Promise<RunRecord | undefined> {
    const snap = await this.db.collection(DEFAULT_LEDGER).doc(runId).get()
    return snap.exists ? parseRun(snap.data()) : undefined
  }

  /** The run holding the collection's lock, if any. */
  async activeRun(): Promise<RunRecord | undefined> {
    const lock = await this.db.collection(`_backfill_locks`).doc(COL).get()
    return lock.exists ? this.runRecord(lock.get('runId') as string) : undefined
  }

  /**
   * Waits until the running run has checkpointed at least `scanned` items (or `child` exits).
   * Returns the run as checkpointed, or undefined when the child ended first.
   */
  async waitForCheckpoint(child: ChildProcess, scanned: number, kind: 'backfill' | 'rollback' = 'backfill'): Promise<RunRecord | undefined> {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) return undefined
      const run = await this.activeRun().catch(() => undefined)
      if (run && run.kind === kind && run.status === 'running' && run.owner.pid === child.pid && run.cursor !== null && run.counters.scanned >= scanned) return run
      await sleep(40)
    }
  }

  /** How many items have an id after `cursor` (what a resume from it must scan). */
  async countAfter(cursor: string | null): Promise<number> {
    const q = cursor === null ? this.db.collection(COL) : this.db.collection(COL).where(FieldPath.documentId(), '>', cursor)
    return (await q.count().get()).data().count
  }

  async close(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL')
    await this.db.terminate()
    await clearEmulator(this.ctx.host, this.projectId).catch(() => {})
    fs.rmSync(this.out, {recursive: true, force: true})
  }
}

/**
 * Copies the built CLI (bin, dist, package.json, taxonomy; node_modules linked) so that a
 * rebuild of dist during a long suite run cannot change, or remove, the code under test.
 */
export function copyCli(root = ROOT): {bin: string; remove(): void} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wardrobe-chaos-cli-'))
  for (const entry of ['bin', 'dist', 'taxonomy', 'package.json']) fs.cpSync(path.join(root, entry), path.join(dir, entry), {recursive: true})
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return {bin: path.join(dir, 'bin', 'run.js'), remove: () => fs.rmSync(dir, {recursive: true, force: true})}
}

/** Runs the CLI as a child process, as an operator's shell or runbook does (no TTY, no emulator env var). */
export function startCli(bin: string, args: string[], cwd: string, timeoutMs = 30 * 60_000): {child: ChildProcess; done: Promise<CliResult>} {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd,
    env: {...process.env, NO_COLOR: '1', FIRESTORE_EMULATOR_HOST: ''},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    }),
  )
  return {child, done}
}

export function parseJson(text: string): any {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** SIGKILL and wait for the exit. */
export async function sigkill(child: ChildProcess, done: Promise<CliResult>): Promise<CliResult> {
  child.kill('SIGKILL')
  return done
}

/**
 * Runs `command` and kills it with -9 at three random progress points (each restart must
 * resume the same run), then runs it once more to the end. Each kill lands at a random
 * moment of a checkpoint interval; the first right after a checkpoint, when the most
 * writes are unacknowledged. Checks that the last run resumed from the last checkpoint.
 */
export async function killThenResume(t: Target, report: Report, command: 'backfill' | 'rollback', flags: string[], total: number): Promise<(CliResult & {stats: any}) | undefined> {
  const {random} = t.ctx
  let runId: string | undefined
  let cursor: string | null = null
  let killed = 0
  for (const [i, point] of [0.15, 0.35, 0.55].map((p) => p + random() * 0.1).entries()) {
    const {child, done} = t.start(command, flags)
    const at = await t.waitForCheckpoint(child, Math.round(point * total), command)
    if (!at) return void report.check(false, `${command} run ${i + 1} still running at ${Math.round(point * 100)}%`, ended(await done))
    runId ??= at.runId
    if (i > 0) report.check(at.runId === runId && at.resumes === i, `restart ${i} resumed the same ${command} run`, `run ${at.runId} (first ${runId}), resumes ${at.resumes}`)
    await sleep(i === 0 ? 0 : between(random, 0, 1500))
    if ((await sigkill(child, done)).signal === 'SIGKILL') killed++
    const rec = await t.runRecord(runId)
    cursor = rec?.cursor ?? null
    report.check(rec?.status === 'running' && cursor !== null, `kill -9 ${i + 1} at ~${Math.round(point * 100)}% leaves the run "running" with a checkpoint`, `status ${rec?.status}, cursor ${cursor}`)
  }
  report.figure('faults', `${killed} × kill -9`)
  const expectScan = await t.countAfter(cursor)
  const final = await t.run(command, flags)
  const s = final.stats
  report.check(s?.resumed === true && s?.runId === runId, `the last ${command} resumed the killed run`, `resumed ${s?.resumed}, run ${s?.runId} vs ${runId}`)
  report.check(s?.scannedHere === expectScan, `it scanned only the ${expectScan} items after the checkpoint, not all ${total}`, `scanned ${s?.scannedHere}`)
  report.check(s?.scanned === total, 'the run counted every item once', `scanned ${s?.scanned} of ${total}`)
  report.figure('reScanned', `${s?.scannedHere}/${total}`)
  return final
}

/** A short description of how a CLI run ended, for check details. */
export function ended(res: CliResult): string {
  const tail = (res.stderr.trim().split('\n').pop() ?? '').slice(0, 300)
  const err = parseJson(res.stdout)?.error
  return `exit ${res.code ?? res.signal}${err ? `, error: ${typeof err === 'string' ? err : err.message}` : ''}${tail ? `, stderr: ${tail}` : ''}`
}
