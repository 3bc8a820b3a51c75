import os from 'node:os'
import {z} from 'zod'
import {estimateRun} from './backfill'
import type {Settings} from '../config'
import {checkCredentials, credentialFor, CredentialsInfoSchema} from '../firestore/credentials'
import {errorMessage, WardrobeError} from '../errors'
import {connect, Connection} from '../firestore/connection'
import {costOf} from '../domain/prices'
import {EstimateSchema} from './reports'
import {withDeadline} from '../firestore/retry'
import {describeTarget, itemsQuery, targetOf} from '../firestore/target'
import {NORMALIZED_FIELDS} from '../domain/vocabulary'

/** Above this, leases and heartbeats judged on this machine's clock would disagree with Firestore's. */
export const MAX_CLOCK_SKEW_MS = 5000
const CHECK_DEADLINE_MS = 20_000
const MIN_NODE_MAJOR = 20

export const CHECKS = [
  'config',
  'credentials',
  'reachable',
  'read',
  'ledger-write',
  'clock',
  'indexes',
  'node',
] as const

export const CheckSchema = z.object({
  check: z.enum(CHECKS),
  /** skipped: not run, because an earlier check failed or it does not apply (the emulator). */
  status: z.enum(['pass', 'warn', 'fail', 'skipped']),
  detail: z.string(),
  fix: z.string().nullable(),
})
export type Check = z.infer<typeof CheckSchema>

export const DoctorReportSchema = z.object({
  kind: z.literal('doctor'),
  checkedAt: z.string(),
  environment: z.string(),
  projectId: z.string().nullable(),
  target: z.string().nullable(),
  ledgerCollection: z.string().nullable(),
  emulator: z.boolean().nullable(),
  credentials: CredentialsInfoSchema.nullable(),
  latencyMs: z.number().nullable(),
  /** This machine's clock minus Firestore's (positive: this machine is ahead). */
  clockSkewMs: z.number().nullable(),
  checks: z.array(CheckSchema),
  /** What a backfill of the target would take and cost if every item needs its write (null when the target was not read). */
  summary: z
    .object({
      items: z.number().int(),
      estimate: EstimateSchema,
      costUsd: z.object({reads: z.number(), writes: z.number(), total: z.number(), pricesTakenOn: z.string()}),
    })
    .nullable(),
  ok: z.boolean(),
})
export type DoctorReport = z.infer<typeof DoctorReportSchema>

/**
 * Preflight of an environment: each check in turn, each a line of the report with its fix; checks
 * that need an earlier one (a connection, a readable target) are skipped when it failed. Reads one
 * item and a count; writes only a probe under the ledger collection, deleted at once.
 */
export async function runDoctor(input: {
  resolve: () => Settings
  environment: string
  nodeVersion?: string
}): Promise<DoctorReport> {
  const checks: Check[] = []
  const add = (check: Check['check'], status: Check['status'], detail: string, fix: string | null = null) =>
    checks.push({check, status, detail, fix})
  const report: DoctorReport = {
    kind: 'doctor',
    checkedAt: new Date().toISOString(),
    environment: input.environment,
    projectId: null,
    target: null,
    ledgerCollection: null,
    emulator: null,
    credentials: null,
    latencyMs: null,
    clockSkewMs: null,
    checks,
    summary: null,
    ok: false,
  }
  const finish = () => {
    for (const check of CHECKS)
      if (check !== 'node' && !checks.some((c) => c.check === check)) add(check, 'skipped', 'needs the checks above')
    nodeCheck(add, input.nodeVersion ?? process.versions.node)
    checks.sort((a, b) => CHECKS.indexOf(a.check) - CHECKS.indexOf(b.check))
    report.ok = checks.every((c) => c.status !== 'fail')
    return report
  }

  let settings: Settings
  try {
    settings = input.resolve()
  } catch (err) {
    add('config', 'fail', errorMessage(err), fixOf(err))
    return finish()
  }
  Object.assign(report, {
    projectId: settings.projectId,
    target: describeTarget(targetOf(settings)),
    ledgerCollection: settings.ledgerCollection,
  })
  add('config', 'pass', settings.configFile ? `${settings.configFile} is valid` : 'no config file: flags and defaults')

  try {
    report.credentials = await checkCredentials(settings)
    const c = report.credentials
    add(
      'credentials',
      'pass',
      c
        ? `${c.type} from ${c.file ?? 'the metadata server'} (${c.source}), identity ${c.identity ?? 'a gcloud user login'}`
        : 'none needed: an emulator',
    )
  } catch (err) {
    add('credentials', 'fail', errorMessage(err), fixOf(err))
    return finish()
  }

  let connection: Connection
  try {
    connection = await connect(settings)
  } catch (err) {
    add('reachable', 'fail', errorMessage(err), fixOf(err))
    return finish()
  }
  report.emulator = connection.emulator
  try {
    await probeChecks(connection, settings, report, add)
  } finally {
    await withDeadline(connection.close(), 5000, 'closing the connection').catch(() => {})
  }
  return finish()
}

type Add = (check: Check['check'], status: Check['status'], detail: string, fix?: string | null) => void

async function probeChecks(connection: Connection, settings: Settings, report: DoctorReport, add: Add): Promise<void> {
  const {db, emulator} = connection
  const where = `project ${settings.projectId}${emulator ? ` on the emulator at ${settings.emulatorHost}` : ''}`
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<{value: T; ms: number}> => {
    const start = performance.now()
    const value = await withDeadline(fn(), CHECK_DEADLINE_MS, what)
    return {value, ms: Math.round(performance.now() - start)}
  }

  // Reachable: one lookup to open the channel, a second for the round trip alone.
  const ping = () => db.collection(settings.ledgerCollection).doc('_doctor').get()
  try {
    await timed('reaching Firestore', ping)
    report.latencyMs = (await timed('reaching Firestore', ping)).ms
    add('reachable', 'pass', `${where}, round trip ${report.latencyMs} ms`)
  } catch (err) {
    add(
      'reachable',
      'fail',
      `${where}: ${errorMessage(err)}`,
      emulator
        ? 'check --emulator-host (or environments.<env>.emulatorHost)'
        : 'check the project id, the network, and that the identity above has a Firestore role (roles/datastore.user) in it',
    )
    return
  }

  const items = itemsQuery(db, targetOf(settings))
  let total: number
  try {
    const [{value: one}, {value: count}] = await Promise.all([
      timed('reading one item', () => items.limit(1).get()),
      timed('counting the items', () => items.count().get()),
    ])
    total = count.data().count
    add(
      'read',
      'pass',
      `${report.target}: ${total} items; read ${one.size} document${one.size === 1 ? '' : 's'} and a count()`,
    )
    const estimate = estimateRun({scanned: total, writes: total, total}, emulator, settings.maxRate)
    const cost = costOf(estimate, settings.prices)
    report.summary = {
      items: total,
      estimate,
      costUsd: {reads: cost.reads, writes: cost.writes, total: cost.total, pricesTakenOn: settings.prices.takenOn},
    }
  } catch (err) {
    add(
      'read',
      'fail',
      `${report.target}: ${errorMessage(err)}`,
      'grant the identity above read access to the collection (roles/datastore.user), or check --collection',
    )
  }

  // A probe under the ledger collection, in a subcollection no ledger query lists; its server
  // timestamp against this machine's clock gives the skew.
  const probe = db
    .collection(settings.ledgerCollection)
    .doc('_doctor')
    .collection('probes')
    .doc(`${os.hostname()}-${process.pid}-${Date.now()}`)
  try {
    const {FieldValue} = await import('firebase-admin/firestore')
    const before = Date.now()
    await timed('writing the ledger probe', () => probe.create({at: FieldValue.serverTimestamp(), host: os.hostname()}))
    const after = Date.now()
    const written = await timed('reading the ledger probe', () => probe.get())
    await timed('deleting the ledger probe', () => probe.delete())
    add('ledger-write', 'pass', `created and deleted ${probe.path}`)
    const server = written.value.get('at')?.toMillis?.() as number | undefined
    if (server === undefined) add('clock', 'fail', 'the probe came back without its server timestamp')
    else {
      const skew = Math.round((before + after) / 2 - server)
      report.clockSkewMs = skew
      const text = `this machine is ${Math.abs(skew) < 1000 ? `within 1 s of` : `${(Math.abs(skew) / 1000).toFixed(1)} s ${skew > 0 ? 'ahead of' : 'behind'}`} Firestore (±${Math.ceil((after - before) / 2)} ms)`
      if (Math.abs(skew) > MAX_CLOCK_SKEW_MS)
        add(
          'clock',
          'warn',
          text,
          "sync the clock (NTP): leases are judged on Firestore's clock, but log times and ETAs use this one",
        )
      else add('clock', 'pass', text)
    }
  } catch (err) {
    add(
      'ledger-write',
      'fail',
      `${probe.path}: ${errorMessage(err)}`,
      `grant the identity above write access to ${settings.ledgerCollection} (roles/datastore.user), or pass a --ledger-collection it may write`,
    )
  }

  if (emulator) add('indexes', 'skipped', 'not checked on the emulator (it has no index settings)')
  else await indexCheck(settings, add)
}

/**
 * The app filters with array-contains on normalized.<field>: a single-field index exemption on
 * one of them (or on `normalized`, which its subfields inherit) without an array-contains index
 * makes those queries fail. Read from the Firestore Admin API's field overrides.
 */
async function indexCheck(settings: Settings, add: Add): Promise<void> {
  const group = settings.collection
  const url = `https://firestore.googleapis.com/v1/projects/${settings.projectId}/databases/(default)/collectionGroups/${encodeURIComponent(group)}/fields?filter=indexConfig.usesAncestorConfig:false`
  try {
    const {access_token: token} = await (await credentialFor(settings)).getAccessToken()
    const res = await withDeadline(
      fetch(url, {headers: {authorization: `Bearer ${token}`}}),
      CHECK_DEADLINE_MS,
      'listing index exemptions',
    )
    if (!res.ok) throw new Error(`Firestore Admin API answered HTTP ${res.status}`)
    const body = (await res.json()) as {fields?: {name: string; indexConfig?: {indexes?: {arrayConfig?: string}[]}}[]}
    const watched = new Set(['normalized', ...NORMALIZED_FIELDS.map((f) => `normalized.${f}`)])
    const broken = (body.fields ?? [])
      .map((f) => ({path: f.name.split('/fields/').pop() ?? '', indexes: f.indexConfig?.indexes ?? []}))
      .filter((f) => watched.has(f.path) && !f.indexes.some((i) => i.arrayConfig === 'CONTAINS'))
      .map((f) => f.path)
    if (broken.length === 0) add('indexes', 'pass', `no exemption on normalized.* in collection group ${group}`)
    else
      add(
        'indexes',
        'fail',
        `exemption without array-contains on ${broken.join(', ')} in collection group ${group}: the app's array-contains filters would fail`,
        `gcloud firestore indexes fields update ${broken[0]} --collection-group=${group} --index=array-config=contains (or remove the exemption in the console)`,
      )
  } catch (err) {
    add(
      'indexes',
      'warn',
      `could not list the index exemptions: ${errorMessage(err)}`,
      'grant the identity above roles/datastore.indexAdmin or viewer, or check them in the console (Firestore > Indexes > Single field)',
    )
  }
}

function nodeCheck(add: Add, version: string): void {
  const major = Number(version.split('.')[0])
  if (major >= MIN_NODE_MAJOR) add('node', 'pass', `Node ${version}`)
  else add('node', 'fail', `Node ${version} is older than ${MIN_NODE_MAJOR}`, `install Node ${MIN_NODE_MAJOR} or later`)
}

const fixOf = (err: unknown): string | null => (err instanceof WardrobeError ? (err.suggestion ?? null) : null)
