import fs from 'node:fs'
import path from 'node:path'
import {status} from '@grpc/grpc-js'
import {DEFAULT_LEDGER} from '../../src/config'
import {LOG_FILE} from '../../src/cli/logger'
import {PartitionRecordSchema} from '../../src/engine/ledger'
import {ALL_METHODS, GrpcFaultProxy, Method} from '../support/grpc-proxy'
import {Snapshot, snapshotOriginals, verifyBackfill} from './checker'
import {ChaosContext, COL, ended, parseJson, prng, refusedFor, Report, Scenario, Target} from './context'

/**
 * Scenarios 11–18: the real service's answers, rehearsed through a gRPC proxy between the
 * CLI and the emulator (test/support/grpc-proxy.ts): RESOURCE_EXHAUSTED, ABORTED contention,
 * IAM revoked, credentials expired, cut and wrong RunQuery streams, random deadlines and
 * internal errors, and PartitionQuery answered as the service answers it.
 */

interface Rehearsal {
  t: Target
  proxy: GrpcFaultProxy
  /** The proxy's address: the CLI's --emulator-host. */
  via: string
  before: Snapshot
}

/** A seeded target and a proxy in front of the emulator for one scenario; both closed after. */
async function rehearse(ctx: ChaosContext, name: string, body: (r: Rehearsal) => Promise<void>): Promise<void> {
  const proxy = new GrpcFaultProxy(ctx.host, prng(ctx.seed))
  const via = await proxy.listen()
  const t = await Target.create(ctx, name)
  try {
    await t.seedGenerated(ctx.items, ctx.seed)
    await body({t, proxy, via, before: await snapshotOriginals(t.db, COL)})
  } finally {
    await t.close()
    await proxy.close()
  }
}

/** A rate cap that stretches a run over about `seconds` whatever the size (faults then land mid-run). */
const paced = (ctx: ChaosContext, seconds: number) => [
  '--max-rate',
  String(Math.max(100, Math.round(ctx.items / seconds))),
]

/** The CLI's log lines (JSON) in the target's output directory. */
function logLines(t: Target): Record<string, unknown>[] {
  const file = path.join(t.out, LOG_FILE)
  if (!fs.existsSync(file)) return []
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => parseJson(l))
    .filter((l): l is Record<string, unknown> => l !== undefined)
}

/** A completed backfill of every item (exit 3: the generated malformed items), then the whole-collection check. */
async function completed(
  report: Report,
  t: Target,
  before: Snapshot,
  res: Awaited<ReturnType<Target['run']>>,
  label: string,
): Promise<void> {
  const s = res.stats
  report.check(
    res.code === 3 && s?.status === 'completed',
    `${label}: the run completes (exit 3: the generated malformed items)`,
    ended(res),
  )
  report.check(
    s?.scanned === before.size && s.updated + s.skipped + s.failed === before.size,
    `${label}: the counters are exact (every item counted once)`,
    `scanned ${s?.scanned}, updated ${s?.updated} + skipped ${s?.skipped} + failed ${s?.failed}, of ${before.size}`,
  )
  report.check(!(await t.locked()), `${label}: the lock is released`)
  report.verdict(label, await verifyBackfill(t.db, COL, before, t.ctx.vocab))
}

export const exhausted: Scenario = {
  name: 'exhausted',
  title: 'RESOURCE_EXHAUSTED on 30% of the writes of each BatchWrite for 20 s',
  async run(ctx, report) {
    await rehearse(ctx, 'exhausted', async ({t, proxy, via, before}) => {
      proxy.set('BatchWrite', {failWrites: {code: status.RESOURCE_EXHAUSTED, share: 0.3}}, 20_000)
      const res = await t.run('backfill', paced(ctx, 25), {host: via})
      const refused = proxy.stats.BatchWrite.writesFailed
      const retries = logLines(t).filter(
        (l) => l.message === 'write retry' && l.code === status.RESOURCE_EXHAUSTED,
      ).length
      report.figure('faults', `${refused} writes answered RESOURCE_EXHAUSTED in 20 s`)
      report.figure('retries', retries)
      report.check(
        refused > 0 && retries === refused,
        'every refused write is retried, each retry logged with its code',
        `${retries} retries logged for ${refused} refused writes`,
      )
      report.check(
        res.stats?.writeRetries === refused,
        'the stats count the retries',
        `writeRetries ${res.stats?.writeRetries} for ${refused} refused writes`,
      )
      // The closed loop: the adaptive throttle holds the rate under the storm, and lets go after it.
      const limits = logLines(t).filter((l) => l.message === 'rate limit')
      const cut = limits.findIndex((l) => l.reason === 'errors')
      const lifted = cut >= 0 ? limits.slice(cut + 1).find((l) => l.reason !== 'errors') : undefined
      report.figure('rate limits', limits.map((l) => l.text).join(' → '))
      report.check(
        cut >= 0 && lifted !== undefined,
        "the run's rate limit drops with reason errors in the storm and recovers after it",
        limits.map((l) => l.text).join(' → ') || 'no rate limit logged',
      )
      await completed(report, t, before, res, 'after the storm')
    })
  },
}

export const contention: Scenario = {
  name: 'contention',
  title: 'ABORTED on 50% of Commit and BeginTransaction for 15 s, two backfills started at once',
  async run(ctx, report) {
    await rehearse(ctx, 'contention', async ({t, proxy, via, before}) => {
      proxy.set(['Commit', 'BeginTransaction'], {fail: {code: status.ABORTED, share: 0.5}}, 15_000)
      const flags = paced(ctx, 20)
      const a = t.start('backfill', flags, {host: via})
      const b = t.start('backfill', flags, {host: via})
      const [ra, rb] = await Promise.all([a.done, b.done])
      const [won, lost] = ra.code === 2 ? [rb, ra] : [ra, rb]
      const runId = parseJson(won.stdout)?.runId as string | undefined
      const {Commit: c, BeginTransaction: b2} = proxy.stats
      report.figure('faults', `ABORTED: Commit ${c.failed}/${c.calls}, BeginTransaction ${b2.failed}/${b2.calls} calls`)
      report.check(proxy.stats.Commit.failed > 0, 'transactions were aborted')
      report.check(
        runId !== undefined && refusedFor(lost, runId),
        "of the two, exactly one is refused (exit 2) naming the other's run",
        `${ended(lost)}; the other: ${ended(won)}`,
      )
      await completed(report, t, before, {...won, stats: parseJson(won.stdout)}, 'after the contention')
      const runs = (await t.db.collection(DEFAULT_LEDGER).where('collection', '==', COL).get()).docs.map((d) =>
        d.get('status'),
      )
      report.check(
        runs.length === 1 && runs[0] === 'completed',
        'the ledger holds one run, completed',
        JSON.stringify(runs),
      )
    })
  },
}

/** Scenarios 3 and 4: a fault that refuses the caller mid-run, then lifted and the same command run again. */
function refusedMidRun(
  name: string,
  title: string,
  fault: {methods: typeof ALL_METHODS; code: status},
  says: RegExp,
  saysNot: RegExp | null,
): Scenario {
  return {
    name,
    title,
    async run(ctx, report) {
      await rehearse(ctx, name, async ({t, proxy, via, before}) => {
        const flags = paced(ctx, 15)
        const {child, done} = t.start('backfill', flags, {host: via})
        const at = await t.waitForCheckpoint(child, Math.round(before.size * 0.3))
        if (!at) return void report.check(false, 'the backfill is running at 30%', ended(await done))
        proxy.set(fault.methods, {fail: {code: fault.code}})
        const res = await done
        const stopped = (Date.now() - (proxy.firstFault?.at ?? Date.now())) / 1000
        proxy.clear()
        const error = res.stderr.split('\n').find((l) => l.startsWith('Error: ')) ?? ''
        report.figure('stoppedAfter', `${stopped.toFixed(1)} s`)
        report.check(
          res.code === 1 && parseJson(res.stdout)?.status === 'failed',
          'the run ends failed with exit 1',
          ended(res),
        )
        report.check(stopped <= 10, 'it stops within 10 s of the first refusal', `${stopped.toFixed(1)} s`)
        report.check(
          says.test(error) && (saysNot === null || !saysNot.test(error)),
          `one line says what was refused, where, and the fix (${says})`,
          error || res.stderr.slice(0, 300),
        )
        const rec = await t.runRecord(at.runId)
        report.check(
          rec !== undefined && rec.cursor !== null && (rec.status === 'failed' || rec.status === 'running'),
          'the run keeps its checkpoint',
          `status ${rec?.status}, cursor ${rec?.cursor}`,
        )
        report.figure('checkpointed', rec?.counters.scanned ?? 0)
        const expectScan = await t.countAfter(rec?.cursor ?? null)
        const again = await t.run('backfill', flags, {host: via})
        report.check(
          again.stats?.resumed === true && again.stats?.runId === at.runId,
          'once lifted, the same command resumes the run',
          ended(again),
        )
        report.check(
          again.stats?.scannedHere === expectScan,
          `it scans only the ${expectScan} items after the checkpoint`,
          `scanned ${again.stats?.scannedHere}`,
        )
        await completed(report, t, before, again, 'after the re-run')
      })
    },
  }
}

export const denied = refusedMidRun(
  'denied',
  'PERMISSION_DENIED on every write mid-run (IAM revoked), then lifted',
  {methods: ['BatchWrite', 'Commit'], code: status.PERMISSION_DENIED},
  new RegExp(
    `^Error: Firestore denied updating ${COL}: the account lacks datastore\\.entities\\.update .*grant it.*run the same command again`,
  ),
  null,
)

export const unauthenticated = refusedMidRun(
  'unauthenticated',
  'UNAUTHENTICATED on every call mid-run (credentials expired), then lifted',
  {methods: ALL_METHODS, code: status.UNAUTHENTICATED},
  new RegExp(`^Error: Firestore rejected the credentials \\w+ ${COL}: .*renew them`),
  /unreachable|unavailable|network/i,
)

export const streamCut: Scenario = {
  name: 'stream-cut',
  title: "the items' RunQuery stream cut every fifth of the collection, with UNAVAILABLE and with UNKNOWN",
  async run(ctx, report) {
    await rehearse(ctx, 'stream-cut', async ({t, proxy, via, before}) => {
      const every = Math.round(before.size / 5)
      // The client restarts a query cut with UNAVAILABLE itself, after the last document it
      // handed over; one cut with UNKNOWN ("Stream removed", a reset connection) it passes on,
      // and the scan restarts it after the last document it received.
      const codes = [status.UNAVAILABLE, status.UNKNOWN, status.UNAVAILABLE, status.UNKNOWN]
      proxy.set('RunQuery', {cutAfter: codes.map(() => every), cutCode: codes, collection: COL})
      const res = await t.run('backfill', ['--log-level', 'debug'], {host: via})
      const resumes = logLines(t).filter((l) => l.message === 'read-retry').length
      report.figure(
        'faults',
        `${proxy.stats.RunQuery.cuts} cuts, one every ${every} documents (2 UNAVAILABLE, 2 UNKNOWN)`,
      )
      report.figure('scanResumes', resumes)
      report.check(
        proxy.stats.RunQuery.cuts === 4,
        "the scan's stream was cut four times",
        `${proxy.stats.RunQuery.cuts}`,
      )
      report.check(
        resumes === 2,
        'the scan restarted the two cuts the client passed on (debug log "read-retry")',
        `${resumes}`,
      )
      await completed(report, t, before, res, 'after the cuts')
    })
  },
}

export const flaky: Scenario = {
  name: 'flaky',
  title: 'DEADLINE_EXCEEDED (writes applied all the same) and INTERNAL on 5% of the calls of every method',
  async run(ctx, report) {
    await rehearse(ctx, 'flaky', async ({t, proxy, via, before}) => {
      const writes = ['BatchWrite', 'Commit']
      const codeOf = new Map(
        ALL_METHODS.map((m, i) => [m, writes.includes(m) || i % 2 === 0 ? status.DEADLINE_EXCEEDED : status.INTERNAL]),
      )
      // A write past its deadline may have been applied all the same: only the answer is lost.
      for (const [m, code] of codeOf) proxy.set(m, {fail: {code, share: 0.05, applied: writes.includes(m)}})
      const res = await t.run('backfill', [], {host: via})
      const failed = Object.entries(proxy.stats).filter(([, s]) => s.failed > 0)
      report.figure(
        'faults',
        failed.map(([m, s]) => `${m} ${s.failed}/${s.calls} ${status[codeOf.get(m as Method)!]}`).join(', '),
      )
      report.check(proxy.totals.failed > 0, 'calls failed', `${proxy.totals.failed} of ${proxy.totals.calls}`)
      await completed(report, t, before, res, 'after the flaky calls')
    })
  },
}

export const partitionQuery: Scenario = {
  name: 'partition-query',
  title: "a sharded run planned from PartitionQuery's split points, answered as the service answers",
  async run(ctx, report) {
    await rehearse(ctx, 'partition-query', async ({t, proxy, via, before}) => {
      proxy.answerPartitionQuery = true
      const res = await t.run('backfill', ['--workers', '2', '--partitions', '6'], {host: via})
      const planned = logLines(t).find((l) => l.message === 'partitions planned')
      report.check(
        planned?.method === 'partition-query',
        'the log says the split points came from PartitionQuery',
        JSON.stringify(planned),
      )
      const runId = res.stats?.runId as string | undefined
      const parts = runId
        ? (await t.db.collection(DEFAULT_LEDGER).doc(runId).collection('partitions').get()).docs
            .map((d) => PartitionRecordSchema.parse(d.data()))
            .sort((x, y) => x.index - y.index)
        : []
      const answered = (proxy.partitionAnswers[0] ?? []).map((n) => n.split('/').pop())
      const bounds = parts.slice(0, -1).map((p) => p.endAt)
      report.figure('splitPoints', answered.length)
      report.check(
        answered.length > 0 && JSON.stringify(bounds) === JSON.stringify(answered),
        "the partitions end at the service's split points",
        `partitions end at ${JSON.stringify(bounds)}, answered ${JSON.stringify(answered)}`,
      )
      const scanned = parts.map((p) => p.counters.scanned)
      report.figure('perPartition', scanned.join('/'))
      report.check(
        scanned.reduce((a, b) => a + b, 0) === before.size && parts.every((p) => p.status === 'done'),
        'every partition is done and together they covered each item once',
        `${scanned.join('+')} of ${before.size}`,
      )
      await completed(report, t, before, res, 'after the sharded run')
    })
  },
}

export const badAnswers: Scenario = {
  name: 'bad-answers',
  title: "the items' RunQuery answers a duplicate, or a document past the requested range",
  async run(ctx, report) {
    for (const kind of ['duplicate', 'out-of-range'] as const) {
      await rehearse(ctx, `bad-${kind}`, async ({t, proxy, via, before}) => {
        const after = Math.round(before.size * 0.4)
        proxy.set('RunQuery', {bad: {kind, after}, times: 1, collection: COL})
        const res = await t.run('backfill', [], {host: via})
        const error = res.stderr.split('\n').find((l) => l.startsWith('Error: ')) ?? ''
        report.check(res.code === 1 && res.stats?.status === 'failed', `${kind}: the run fails (exit 1)`, ended(res))
        report.check(
          /Firestore answered .* after .*stopped without checkpointing past/.test(error),
          `${kind}: with an error naming the document and where it stopped`,
          error || res.stderr.slice(0, 300),
        )
        const rec = res.stats?.runId ? await t.runRecord(res.stats.runId) : undefined
        const sorted = [...before.keys()].sort()
        // The document the proxy answered the bad one after, in Firestore's order (ASCII ids).
        const lastGood = sorted[after - 1]
        report.check(
          rec !== undefined && rec.cursor !== null && rec.cursor <= lastGood && rec.counters.scanned <= after,
          `${kind}: its checkpoint is not past the last good document`,
          `cursor ${rec?.cursor}, ${rec?.counters.scanned} scanned; last good ${lastGood} (${after})`,
        )
        report.figure(`${kind}Checkpoint`, rec?.counters.scanned ?? 0)
        const again = await t.run('backfill', [], {host: via})
        report.check(again.stats?.resumed === true, `${kind}: the same command resumes the run`, ended(again))
        await completed(report, t, before, again, `after the ${kind}`)
      })
    }
  },
}

export const SERVICE_SCENARIOS = [
  exhausted,
  contention,
  denied,
  unauthenticated,
  streamCut,
  flaky,
  partitionQuery,
  badAnswers,
]
