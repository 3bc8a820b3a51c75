import {ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {DocumentReference, Firestore, GeoPoint, Timestamp} from 'firebase-admin/firestore'
import {clearEmulator} from '../../src/dev/emulator'

export const ROOT = path.resolve(__dirname, '..', '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')

export function emulatorHost(): string {
  const host = process.env.FIRESTORE_EMULATOR_HOST
  if (!host)
    throw new Error(
      'FIRESTORE_EMULATOR_HOST is not set: the jest globalSetup starts the emulator; run tests through `npm test`',
    )
  return host
}

let counter = 0
/** A fresh emulator project per test: tests never see each other's data. */
export function uniqueProject(name: string): string {
  return `demo-${name}-${process.pid}-${++counter}`.toLowerCase()
}

export function testDb(projectId: string): Firestore {
  emulatorHost()
  // As the CLI does for an emulator: no probe of the GCE metadata server (a 403 warning each time).
  process.env.METADATA_SERVER_DETECTION ??= 'none'
  return new Firestore({projectId})
}

export async function resetProject(projectId: string): Promise<void> {
  await clearEmulator(emulatorHost(), projectId)
}

export function tmpDir(prefix = 'wardrobe-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  input?: string
  timeoutMs?: number
  /** A command the CLI runs under, e.g. `unshare --pid --fork` for a container-like pid namespace. */
  wrapper?: string[]
}

/** Runs the real CLI (built dist) as a child process, the way an operator or a runbook does. */
export function startCli(args: string[], options: CliOptions = {}): {child: ChildProcess; done: Promise<CliResult>} {
  const [command, ...prefix] = [...(options.wrapper ?? []), process.execPath]
  const child = spawn(command, [...prefix, BIN, ...args], {
    cwd: options.cwd ?? tmpDir(),
    // jest sets NODE_ENV=test, which makes oclif look for TypeScript sources; an operator's shell has no such variable.
    env: {
      ...process.env,
      NODE_ENV: undefined,
      NO_COLOR: '1',
      WARDROBE_PROGRESS_INTERVAL_MS: '200',
      // The commands' code cache of test runs stays out of the user's ~/.cache.
      NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'wardrobe-test-compile-cache'),
      ...options.env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  if (options.input !== undefined) child.stdin!.end(options.input)
  else child.stdin!.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    }),
  )
  return {child, done}
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done
}

/** Common flags pointing the CLI at a test project on the test emulator. */
export function devArgs(projectId: string, outputDir: string, collection = 'wardrobe_items'): string[] {
  return [
    '--environment',
    'development',
    '--project',
    projectId,
    '--emulator-host',
    emulatorHost(),
    '--collection',
    collection,
    '--output-dir',
    outputDir,
  ]
}

/** A type-exact rendering of a Firestore value, so comparisons catch any change of type or content. */
export function canonical(value: unknown): unknown {
  if (value instanceof Timestamp) return {$ts: [value.seconds, value.nanoseconds]}
  if (value instanceof GeoPoint) return {$geo: [value.latitude, value.longitude]}
  if (value instanceof DocumentReference) return {$ref: value.path}
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return {$bytes: Buffer.from(value).toString('base64')}
  if (Array.isArray(value)) return value.map(canonical)
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    )
  }
  if (typeof value === 'number' && Number.isNaN(value)) return {$nan: true}
  return value
}

/** id → canonical JSON of every field except those named in `omit`. */
export async function snapshotCollection(
  db: Firestore,
  collection: string,
  omit: string[] = [],
): Promise<Map<string, string>> {
  const snap = await db.collection(collection).get()
  const out = new Map<string, string>()
  for (const doc of snap.docs) {
    const data = {...doc.data()}
    for (const k of omit) delete data[k]
    out.set(doc.id, JSON.stringify(canonical(data)))
  }
  return out
}

export function latestFile(dir: string, prefix: string): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .sort()
  if (files.length === 0) throw new Error(`no ${prefix}* file in ${dir}`)
  return path.join(dir, files[files.length - 1])
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}

export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  stepMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, stepMs))
  }
}

// ---- backfill suite helpers (appended) ----

/** Data of every run record in the ledger collection (default `_backfill_runs`). */
export async function ledgerRuns(db: Firestore, ledger = '_backfill_runs'): Promise<Record<string, any>[]> {
  const snap = await db.collection(ledger).get()
  return snap.docs.map((d) => d.data())
}

/** Number of documents in a collection (count aggregation). */
export async function countDocs(db: Firestore, collection: string): Promise<number> {
  return (await db.collection(collection).count().get()).data().count
}

/** Every `<prefix>*.json` file in dir, parsed, oldest first by name. */
export function reportFiles<T = any>(dir: string, prefix: string): T[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.json'))
    .sort()
    .map((f) => readJson<T>(path.join(dir, f)))
}
