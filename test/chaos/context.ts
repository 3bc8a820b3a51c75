import {ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {FieldPath, Firestore} from 'firebase-admin/firestore'
import {DEFAULT_COLLECTION, DEFAULT_LEDGER} from '../../src/config'
import {LOCK_COLLECTION} from '../../src/domain/ledger-layout'
import {clearEmulator} from '../../src/dev/emulator'
import {parseRun, PartitionRecordSchema, RunRecord, sumProgress} from '../../src/engine/ledger'
import {generateItems, mulberry32, SeedItem, writeItems} from '../../src/dev/seed-data'
import {DEFAULT_TAXONOMY_FILE, Vocabulary} from '../../src/domain/vocabulary'
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
    this.check(
      v.lost === 0,
      `${label}: nothing lost (originals, documents, writes, error reports)`,
      `lost = ${v.lost} ${JSON.stringify(v.problems)}${examples}`,
    )
    this.check(
      v.stale === 0,
      `${label}: no normalized value stale or on a malformed item`,
      `stale = ${v.stale} ${JSON.stringify(v.problems)}${examples}`,
    )
    this.check(
      v.other === 0,
      `${label}: error reports exactly the malformed items, with the normalizer's reasons`,
      `${v.other} ${JSON.stringify(v.problems)}${examples}`,
    )
    if (!figures) return
    // Several verdicts in one scenario add up.
    for (const [k, n] of [
      ['items', v.items],
      ['normalized', v.normalized],
      ['errorItems', v.errorItems],
      ['appLast', v.appLast],
      ['lost', v.lost],
      ['stale', v.stale],
    ] as const) {
      if (k === 'appLast' && n === 0) continue
      this.add(k, n)
    }
  }

  /** Adds to a numeric figure (parts of a scenario add up). */
  add(name: string, n: number): void {
    this.figure(name, (typeof this.figures[name] === 'number' ? (this.figures[name] as number) : 0) + n)
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
/** How a child is started: through a proxy (`host`), or as another machine (`env`, see otherMachine). */
export interface StartOptions {
  host?: string
  env?: NodeJS.ProcessEnv
}

const PRELOAD = path.join(ROOT, 'test', 'support', 'preload.js')

/**
 * A CLI child that looks like another machine: its clock `skewMs` off (negative: behind) and,
 * with `host`, another host name and boot (its pid then says nothing about liveness here).
 * Test-side only, by a `--require` preload: the product has no clock switch.
 */
export function otherMachine(skewMs: number, host?: string): NodeJS.ProcessEnv {
  return {
    NODE_OPTIONS: `--require ${PRELOAD}`,
    WARDROBE_TEST_CLOCK_SKEW_MS: String(skewMs),
    ...(host ? {WARDROBE_TEST_HOST: host} : {}),
  }
}

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
    return [
      '--environment',
      'development',
      '--project',
      this.projectId,
      '--emulator-host',
      host,
      '--collection',
      COL,
      '--output-dir',
      this.out,
      '--json',
    ]
  }

  async seed(items: Iterable<SeedItem>): Promise<number> {
    const n = await writeItems(this.db, COL, items)
    this.ctx.log(`seeded ${n} items`)
    return n
  }

  async seedGenerated(count: number, seed: number, malformedRate = 0.02): Promise<number> {
    return this.seed(generateItems(count, {seed, malformedRate}))
  }

  /** A config file in this target's output directory, for settings that have no flag (staleAfterSeconds, outageAfterSeconds). */
  config(name: string, settings: Record<string, unknown>): string {
    const file = path.join(this.out, `${name}.config.json`)
    fs.writeFileSync(file, JSON.stringify(settings))
    return file
  }

  /** Starts `wardrobe <command> <common flags> <extra>` as a child process. */
  start(
    command: 'backfill' | 'rollback',
    extra: string[] = [],
    opts: StartOptions = {},
  ): {child: ChildProcess; done: Promise<CliResult>; args: string[]} {
    const args = [command, ...this.args(opts.host), ...extra]
    this.cliRuns++
    const {child, done: finished} = startCli(this.ctx.bin, args, this.out, opts.env)
    this.adopt(child)
    const n = this.cliRuns
    const machine = opts.env?.WARDROBE_TEST_CLOCK_SKEW_MS
      ? ` [clock ${Number(opts.env.WARDROBE_TEST_CLOCK_SKEW_MS) / 1000}s${opts.env.WARDROBE_TEST_HOST ? `, host ${opts.env.WARDROBE_TEST_HOST}` : ''}]`
      : ''
    this.ctx.log(`cli #${n} (pid ${child.pid})${machine}: ${command} ${extra.join(' ')}`)
    const done = finished.then((res) => {
      const stats = parseJson(res.stdout)
      // A refusal's --json output is an error, not stats.
      this.ctx.log(
        `cli #${n} ended: exit ${res.code ?? res.signal}${typeof stats?.status === 'string' ? `, ${stats.status}, scanned ${stats.scannedHere} here, updated ${stats.updated}, failed ${stats.failed}, conflicts ${stats.conflicts}, ${stats.rate}/s` : ''}`,
      )
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

  async run(
    command: 'backfill' | 'rollback',
    extra: string[] = [],
    opts: StartOptions = {},
  ): Promise<CliResult & {stats: any}> {
    const res = await this.start(command, extra, opts).done
    return {...res, stats: parseJson(res.stdout)}
  }

  async runRecord(runId: string): Promise<RunRecord | undefined> {
    const snap = await this.db.collection(DEFAULT_LEDGER).doc(runId).get()
    return snap.exists ? parseRun(snap.data()) : undefined
  }

  /** The run holding the collection's lock, if any. */
  async activeRun(): Promise<RunRecord | undefined> {
    const lock = await this.db.collection(LOCK_COLLECTION).doc(COL).get()
    return lock.exists ? this.runRecord(lock.get('runId') as string) : undefined
  }

  /**
   * Waits until the running run has checkpointed at least `scanned` items (or `child` exits):
   * a one-worker run of `child`, or a sharded run (its partitions' sum, whichever process).
   * Returns the run as checkpointed, or undefined when the child ended first.
   */
  async waitForCheckpoint(
    child: ChildProcess,
    scanned: number,
    kind: 'backfill' | 'rollback' = 'backfill',
  ): Promise<RunRecord | undefined> {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) return undefined
      const run = await this.activeRun().catch(() => undefined)
      if (run && run.kind === kind && run.status === 'running') {
        if (
          run.partitions > 0
            ? (await this.shardedScanned(run.runId).catch(() => 0)) >= scanned
            : run.owner.pid === child.pid && run.cursor !== null && run.counters.scanned >= scanned
        )
          return run
      }
      await sleep(40)
    }
  }

  /** Items a sharded run's partitions have checkpointed. */
  async shardedScanned(runId: string): Promise<number> {
    const parts = await this.db.collection(DEFAULT_LEDGER).doc(runId).collection('partitions').get()
    return sumProgress(parts.docs.map((d) => PartitionRecordSchema.parse(d.data()))).counters.scanned
  }

  /** Whether the collection's lock document exists (a finished run releases it). */
  async locked(): Promise<boolean> {
    return (await this.db.collection(LOCK_COLLECTION).doc(COL).get()).exists
  }

  /** How many items have an id after `cursor` (what a resume from it must scan). */
  async countAfter(cursor: string | null): Promise<number> {
    const q =
      cursor === null ? this.db.collection(COL) : this.db.collection(COL).where(FieldPath.documentId(), '>', cursor)
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
  for (const entry of ['bin', 'dist', 'taxonomy', 'package.json'])
    fs.cpSync(path.join(root, entry), path.join(dir, entry), {recursive: true})
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return {bin: path.join(dir, 'bin', 'run.js'), remove: () => fs.rmSync(dir, {recursive: true, force: true})}
}

/** Runs the CLI as a child process, as an operator's shell or runbook does (no TTY, no emulator env var). */
export function startCli(
  bin: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30 * 60_000,
): {child: ChildProcess; done: Promise<CliResult>} {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd,
    env: {...process.env, NO_COLOR: '1', FIRESTORE_EMULATOR_HOST: '', ...env},
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
export async function killThenResume(
  t: Target,
  report: Report,
  command: 'backfill' | 'rollback',
  flags: string[],
  total: number,
): Promise<(CliResult & {stats: any}) | undefined> {
  const {random} = t.ctx
  let runId: string | undefined
  let cursor: string | null = null
  let killed = 0
  for (const [i, point] of [0.15, 0.35, 0.55].map((p) => p + random() * 0.1).entries()) {
    const {child, done} = t.start(command, flags)
    const at = await t.waitForCheckpoint(child, Math.round(point * total), command)
    if (!at)
      return void report.check(
        false,
        `${command} run ${i + 1} still running at ${Math.round(point * 100)}%`,
        ended(await done),
      )
    runId ??= at.runId
    if (i > 0)
      report.check(
        at.runId === runId && at.resumes === i,
        `restart ${i} resumed the same ${command} run`,
        `run ${at.runId} (first ${runId}), resumes ${at.resumes}`,
      )
    await sleep(i === 0 ? 0 : between(random, 0, 1500))
    if ((await sigkill(child, done)).signal === 'SIGKILL') killed++
    const rec = await t.runRecord(runId)
    cursor = rec?.cursor ?? null
    report.check(
      rec?.status === 'running' && cursor !== null,
      `kill -9 ${i + 1} at ~${Math.round(point * 100)}% leaves the run "running" with a checkpoint`,
      `status ${rec?.status}, cursor ${cursor}`,
    )
  }
  report.figure('faults', `${killed} × kill -9`)
  const expectScan = await t.countAfter(cursor)
  const final = await t.run(command, flags)
  const s = final.stats
  report.check(
    s?.resumed === true && s?.runId === runId,
    `the last ${command} resumed the killed run`,
    `resumed ${s?.resumed}, run ${s?.runId} vs ${runId}`,
  )
  report.check(
    s?.scannedHere === expectScan,
    `it scanned only the ${expectScan} items after the checkpoint, not all ${total}`,
    `scanned ${s?.scannedHere}`,
  )
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

/** The refusal of a run because another holds the collection: exit 2 and a message naming the holder's run. */
export function refusedFor(res: CliResult, runId: string): boolean {
  const message = String(parseJson(res.stdout)?.error?.message ?? res.stderr)
  return res.code === 2 && message.includes('already holds') && message.includes(runId)
}

/**
 * Starts `command` again and again (a second apart) while it is refused with exit 2, until
 * one holds the collection's lock (or ends otherwise) or `deadlineMs` passes: what an
 * operator does to take over a holder that is gone. `heldAfterMs`: from the call until the
 * lock was seen held by the winner (within a poll, about 40 ms).
 */
export async function takeOver(
  t: Target,
  command: 'backfill' | 'rollback',
  extra: string[],
  opts: StartOptions,
  deadlineMs: number,
): Promise<{refused: CliResult[]; winner?: {child: ChildProcess; done: Promise<CliResult>}; heldAfterMs: number}> {
  const from = Date.now()
  const refused: CliResult[] = []
  for (;;) {
    const attempt = t.start(command, extra, opts)
    const holds = async (): Promise<boolean> => {
      for (;;) {
        if (attempt.child.exitCode !== null || attempt.child.signalCode !== null) return false
        if ((await t.activeRun().catch(() => undefined))?.owner.pid === attempt.child.pid) return true
        await sleep(40)
      }
    }
    const held = await Promise.race([holds(), attempt.done.then(() => false)])
    const res = held ? undefined : await attempt.done
    if (held || res!.code !== 2) return {refused, winner: attempt, heldAfterMs: Date.now() - from}
    refused.push(res!)
    if (Date.now() - from > deadlineMs) return {refused, heldAfterMs: Date.now() - from}
    await sleep(1000)
  }
}
