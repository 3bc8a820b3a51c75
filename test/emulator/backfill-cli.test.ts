/**
 * `wardrobe backfill` as a process: interruption and resume, kill -9, the collection lock,
 * production safety, a missing emulator, and what goes to stdout, stderr and files.
 */
import fs from 'node:fs'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {DocumentSnapshot, Firestore} from 'firebase-admin/firestore'
import {confirmTarget} from '../../src/cli/confirmation'
import {UsageError} from '../../src/errors'
import {normalizeItem} from '../../src/domain/normalization'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {Ledger} from '../../src/engine/ledger'
import {GrpcFaultProxy} from '../support/grpc-proxy'
import {
  CliResult,
  devArgs,
  emulatorHost,
  latestFile,
  ledgerRuns,
  readJson,
  reportFiles,
  runCli,
  snapshotCollection,
  startCli,
  testDb,
  tmpDir,
  uniqueProject,
  waitFor,
} from '../support/harness'

const COL = 'wardrobe_items'
const vocab = loadVocabulary()
// jest's NODE_ENV=test makes oclif print a ts-source warning on stderr; a user's shell has no such variable.
const ENV = {NODE_ENV: undefined}

async function docsOf(db: Firestore): Promise<DocumentSnapshot[]> {
  return (await db.collection(COL).get()).docs
}

const wellFormed = (doc: DocumentSnapshot) => {
  const data = {...doc.data()}
  delete data.normalized
  return normalizeItem(data, vocab).ok
}

/** Waits until the collection's run is checkpointed past the start (a non-null cursor). */
async function waitForCursor(db: Firestore, done: () => boolean): Promise<void> {
  await waitFor(
    async () => done() || (await ledgerRuns(db)).some((r) => r.status === 'running' && typeof r.cursor === 'string'),
    90_000,
    100,
  )
}

/** After a run that ended: every well-formed item normalized by runId, error items untouched. */
function expectAllDone(docs: DocumentSnapshot[], runId?: string): void {
  const missing = docs
    .filter(
      (d) => wellFormed(d) && (d.get('normalized') === undefined || (runId && d.get('normalized.run_id') !== runId)),
    )
    .map((d) => d.id)
  const wrongly = docs.filter((d) => !wellFormed(d) && d.get('normalized') !== undefined).map((d) => d.id)
  expect({missing, wrongly}).toEqual({missing: [], wrongly: []})
}

describe('wardrobe backfill: process behaviour', () => {
  describe('SIGINT, then the same command again', () => {
    const N = 30_000
    let project: string
    let db: Firestore
    let out: string
    let args: string[]
    let first: CliResult
    let pid: number
    let interrupted: Record<string, any>

    beforeAll(async () => {
      project = uniqueProject('resume')
      db = testDb(project)
      out = tmpDir()
      args = ['backfill', ...devArgs(project, out), '--max-rate', '3000']
      await writeItems(db, COL, generateItems(N, {seed: 21, malformedRate: 0.01}))
      const cli = startCli(args, {env: ENV, timeoutMs: 90_000})
      pid = cli.child.pid!
      let ended = false
      cli.done.then(() => (ended = true))
      await waitForCursor(db, () => ended)
      cli.child.kill('SIGINT')
      first = await cli.done
      ;[interrupted] = await ledgerRuns(db)
    }, 240_000)
    afterAll(async () => {
      await db.terminate()
    })

    it('exits 130; the run record is interrupted with a cursor and counters matching it', async () => {
      expect({code: first.code, signal: first.signal, tail: first.stderr}).toEqual({
        code: 130,
        signal: null,
        tail: expect.stringMatching(/Interrupt/),
      })
      expect(interrupted).toMatchObject({status: 'interrupted', owner: expect.objectContaining({pid})})
      expect(typeof interrupted.cursor).toBe('string')
      const c = interrupted.counters
      expect(c.scanned).toBeGreaterThan(0)
      expect(c.scanned).toBeLessThan(N)
      expect(c.updated + c.skipped + c.failed).toBe(c.scanned)
      expect((await db.collection('_backfill_locks').get()).size).toBe(0) // released
      const stats = readJson(latestFile(out, 'backfill_stats_'))
      expect(stats).toMatchObject({status: 'interrupted', runId: interrupted.runId, scanned: c.scanned})
      expect(stats.resumeCommand).toEqual(expect.stringContaining('backfill'))
    })

    it('every item up to the cursor holds normalized (and none past it): the checkpoint follows acknowledged writes', async () => {
      const docs = await docsOf(db)
      const cursor: string = interrupted.cursor
      const upTo = docs.filter((d) => d.id <= cursor)
      expect(upTo).toHaveLength(interrupted.counters.scanned)
      const unwritten = upTo
        .filter((d) => wellFormed(d) && d.get('normalized.run_id') !== interrupted.runId)
        .map((d) => d.id)
      expect(unwritten).toEqual([])
      const beyond = docs.filter((d) => d.id > cursor && d.get('normalized') !== undefined).map((d) => d.id)
      expect(beyond).toEqual([])
      const errors = await db.collection(`_backfill_runs/${interrupted.runId}/errors`).get()
      expect(errors.size).toBe(interrupted.counters.failed)
      expect(errors.docs.every((e) => e.id <= cursor)).toBe(true)
    })

    it('tells on stderr how to resume', () => {
      expect(first.stderr).toMatch(/resume/i)
      expect(first.stderr).toContain('wardrobe backfill')
      expect(first.stderr).toContain('--max-rate 3000')
    })

    it('the same command resumes from the checkpoint (reads only the rest) and completes every item', async () => {
      const second = await runCli(args, {env: ENV})
      expect(second.code).toBe(3) // the generated malformed items
      expect(second.stderr).toContain(`Resuming run ${interrupted.runId}`)
      const all = reportFiles(out, 'backfill_stats_')
      expect(all).toHaveLength(2)
      const stats = all.find((s) => s.status === 'completed')
      expect(stats).toMatchObject({runId: interrupted.runId, resumed: true, status: 'completed', scanned: N})
      // Had the second process re-scanned from the start, `scanned` would exceed the total.
      expect(stats.scannedHere).toBe(N - interrupted.counters.scanned)
      expect(stats.scannedHere).toBeLessThan(N)
      expect(stats.updated + stats.skipped + stats.failed).toBe(N)
      const docs = await docsOf(db)
      expect(stats.failed).toBe(docs.filter((d) => !wellFormed(d)).length)
      expectAllDone(docs, interrupted.runId)
      const [record] = await ledgerRuns(db)
      expect(record).toMatchObject({status: 'completed', resumes: 1, counters: {scanned: N}})
      expect((await db.collection(`_backfill_runs/${interrupted.runId}/errors`).get()).size).toBe(stats.failed)
      expect((await db.collection('_backfill_locks').get()).size).toBe(0)
    })
  })

  it('kill -9: the record stays running; a re-run takes over from the dead pid on this host and completes', async () => {
    const N = 8000
    const project = uniqueProject('kill9')
    const db = testDb(project)
    const out = tmpDir()
    // ~10 s of run: the kill must land while it still runs, a checkpoint (2 s) after its start.
    const args = ['backfill', ...devArgs(project, out), '--max-rate', '800']
    try {
      await writeItems(db, COL, generateItems(N, {seed: 22, malformedRate: 0.01}))
      const cli = startCli(args, {env: ENV})
      const pid = cli.child.pid!
      let ended = false
      cli.done.then(() => (ended = true))
      await waitForCursor(db, () => ended)
      cli.child.kill('SIGKILL')
      const killed = await cli.done
      expect(killed.signal).toBe('SIGKILL')

      const [dead] = await ledgerRuns(db)
      expect(dead).toMatchObject({status: 'running', owner: expect.objectContaining({pid})})
      const lock = await db.doc(`_backfill_locks/${COL}`).get()
      expect(lock.get('runId')).toBe(dead.runId)
      // Checkpointed only after acknowledgement: nothing up to the cursor is missing.
      const docs = await docsOf(db)
      expect(
        docs.filter((d) => d.id <= dead.cursor && wellFormed(d) && d.get('normalized') === undefined).map((d) => d.id),
      ).toEqual([])

      const again = await runCli(args, {env: ENV})
      expect(again.code).toBe(3)
      expect(again.stderr).toMatch(/took over/)
      expect(again.stderr).toContain(`pid ${pid}`)
      const stats = readJson(latestFile(out, 'backfill_stats_'))
      expect(stats).toMatchObject({runId: dead.runId, resumed: true, status: 'completed', scanned: N})
      expect(stats.updated + stats.skipped + stats.failed).toBe(N)
      expectAllDone(await docsOf(db), dead.runId)
      const [record] = await ledgerRuns(db)
      expect(record).toMatchObject({status: 'completed'})
      expect(record.owner.pid).not.toBe(pid)
      expect((await db.collection('_backfill_locks').get()).size).toBe(0)
    } finally {
      await db.terminate()
    }
  })

  it('the lock: a second backfill on the same collection exits 2 naming the holder; after it finishes a new run works', async () => {
    const N = 5000
    const project = uniqueProject('lock')
    const db = testDb(project)
    const out = tmpDir()
    const args = ['backfill', ...devArgs(project, out)]
    try {
      await writeItems(db, COL, generateItems(N, {seed: 23, malformedRate: 0}))
      const holder = startCli([...args, '--max-rate', '300'], {env: ENV})
      let ended = false
      holder.done.then(() => (ended = true))
      await waitFor(async () => ended || (await db.doc(`_backfill_locks/${COL}`).get()).exists, 60_000, 50)
      expect(ended).toBe(false)
      const [held] = await ledgerRuns(db)

      const second = await runCli(args, {env: ENV})
      expect(second.code).toBe(2)
      expect(second.stderr).toContain(held.runId)
      expect(second.stderr).toContain(`pid ${holder.child.pid}`)
      const json = await runCli([...args, '--json'], {env: ENV})
      expect(json.code).toBe(2)
      expect(JSON.parse(json.stdout).error.message).toContain(held.runId)
      expect(await ledgerRuns(db)).toHaveLength(1) // the refused runs recorded nothing

      const first = await holder.done
      expect(first.code).toBe(0)
      const after = await runCli([...args, '--json'], {env: ENV})
      expect(after.code).toBe(0)
      expect(JSON.parse(after.stdout)).toMatchObject({status: 'completed', updated: 0, skipped: N})
    } finally {
      await db.terminate()
    }
  })

  it('the lock when the server closes a transaction under contention: the start is run again, never a raw INVALID_ARGUMENT', async () => {
    // Under contention the emulator can answer a transaction with INVALID_ARGUMENT "Transaction is
    // invalid or closed." (the service: "... has expired or is no longer valid."), which the client
    // does not retry: in the chaos suite, of two backfills started at once one exited 1 with it.
    const project = uniqueProject('closed')
    const db = testDb(project)
    const out = tmpDir()
    const proxy = new GrpcFaultProxy(emulatorHost())
    const via = await proxy.listen()
    const args = ['backfill', ...devArgs(project, out).map((a, i, all) => (all[i - 1] === '--emulator-host' ? via : a))]
    const closeNextCommit = () =>
      proxy.set('Commit', {
        fail: {code: grpc.status.INVALID_ARGUMENT, details: 'Transaction is invalid or closed.'},
        times: 1,
      })
    try {
      await writeItems(db, COL, generateItems(50, {seed: 29, malformedRate: 0}))
      // The start's commit is closed under it: the run starts all the same and completes.
      closeNextCommit()
      const won = await runCli([...args, '--json'], {env: ENV})
      expect(proxy.stats.Commit.failed).toBe(1)
      expect({code: won.code, stdout: won.stdout}).toEqual({code: 0, stdout: expect.not.stringContaining('INVALID')})
      expect(JSON.parse(won.stdout)).toMatchObject({status: 'completed', updated: 50})
      expect(await ledgerRuns(db)).toEqual([expect.objectContaining({status: 'completed'})])

      // Two starts at once: this one's commit is closed under it while the other takes the lock
      // (its reads held up long enough for that); run again, the start sees the holder: refused.
      proxy.set('BatchGetDocuments', {latencyMs: 1500})
      closeNextCommit()
      const second = startCli(args, {env: ENV})
      await waitFor(async () => proxy.stats.Commit.failed === 2, 30_000, 10)
      const {run: held} = (await new Ledger(db, '_backfill_runs').acquire({
        kind: 'rollback',
        environment: 'development',
        projectId: project,
        collection: COL,
        version: null,
        resumeKey: 'holder',
        options: {},
        fromStart: false,
        staleAfterMs: 60_000,
        total: 50,
      }))!
      const refused = await second.done
      expect({code: refused.code, stderr: refused.stderr}).toEqual({
        code: 2,
        stderr: expect.stringContaining(`run ${held.runId}`),
      })
      expect(await ledgerRuns(db)).toHaveLength(2) // the refused run recorded nothing
    } finally {
      await proxy.close()
      await db.terminate()
    }
  })

  describe('production', () => {
    let project: string
    let db: Firestore
    let out: string
    let prod: string[]

    beforeEach(async () => {
      project = uniqueProject('prod')
      db = testDb(project)
      out = tmpDir()
      prod = [
        'backfill',
        '--environment',
        'production',
        '--project',
        project,
        '--emulator-host',
        emulatorHost(),
        '--output-dir',
        out,
      ]
      await writeItems(db, COL, generateItems(20, {seed: 24, malformedRate: 0}))
    })
    afterEach(async () => {
      await db.terminate()
    })

    async function expectNothingWritten(before: Map<string, string>): Promise<void> {
      expect([...(await snapshotCollection(db, COL)).entries()]).toEqual([...before.entries()])
      expect((await db.collection('_backfill_runs').get()).size).toBe(0)
      expect((await db.collection('_backfill_locks').get()).size).toBe(0)
    }

    it('without a TTY and without --yes: exit 2, a message about confirmation, nothing written', async () => {
      const before = await snapshotCollection(db, COL)
      const res = await runCli(prod, {env: ENV})
      expect(res.code).toBe(2)
      expect(res.stderr).toMatch(/confirm/i)
      expect(res.stderr).toMatch(/--yes/)
      await expectNothingWritten(before)
    })

    it('--json without --yes: exit 2 and a JSON error object on stdout, nothing written', async () => {
      const before = await snapshotCollection(db, COL)
      const res = await runCli([...prod, '--json'], {env: ENV})
      expect(res.code).toBe(2)
      const body = JSON.parse(res.stdout)
      expect(body.error).toMatchObject({message: expect.stringMatching(/confirm/i)})
      await expectNothingWritten(before)
    })

    it('without --emulator-host, on a machine without credentials, it stops at the credentials before any prompt', async () => {
      const noCredentials = {
        ...ENV,
        HOME: tmpDir(),
        GOOGLE_APPLICATION_CREDENTIALS: undefined,
        CLOUDSDK_CONFIG: undefined,
        METADATA_SERVER_DETECTION: 'none',
      }
      const res = await runCli(['backfill', '--environment', 'production', '--project', project, '--output-dir', out], {
        env: noCredentials,
      })
      expect(res.code).toBe(2)
      expect(res.stderr).toMatch(/^Error: no usable credentials for production project/)
    })

    it('--yes runs (against the emulator, since --emulator-host is explicit)', async () => {
      const res = await runCli([...prod, '--yes', '--json'], {env: ENV})
      expect(res.code).toBe(0)
      const stats = JSON.parse(res.stdout)
      expect(stats).toMatchObject({environment: 'production', projectId: project, status: 'completed', updated: 20})
      expect((await docsOf(db)).every((d) => d.get('normalized.run_id') === stats.runId)).toBe(true)
      expect(await ledgerRuns(db)).toEqual([expect.objectContaining({environment: 'production', status: 'completed'})])
    })

    it('staging warns on stderr and runs without a prompt', async () => {
      const res = await runCli(
        [
          'backfill',
          '--environment',
          'staging',
          '--project',
          project,
          '--emulator-host',
          emulatorHost(),
          '--output-dir',
          out,
        ],
        {env: ENV},
      )
      expect(res.code).toBe(0)
      expect(res.stderr).toMatch(/staging.*backfill/)
      expect(readJson(latestFile(out, 'backfill_stats_'))).toMatchObject({environment: 'staging', updated: 20})
    })

    it('under --json the staging and production --yes warnings still reach stderr (runbooks log them)', async () => {
      const staging = await runCli(
        [
          'backfill',
          '--environment',
          'staging',
          '--project',
          project,
          '--emulator-host',
          emulatorHost(),
          '--output-dir',
          out,
          '--json',
        ],
        {env: ENV},
      )
      expect(staging.code).toBe(0)
      expect(JSON.parse(staging.stdout)).toMatchObject({environment: 'staging'})
      const production = await runCli([...prod, '--yes', '--force', '--json'], {env: ENV})
      expect(production.code).toBe(0)
      expect({staging: staging.stderr, production: production.stderr}).toEqual({
        staging: expect.stringMatching(/staging/),
        production: expect.stringMatching(/production.*--yes/),
      })
    })

    it('--dry-run needs no confirmation and writes nothing', async () => {
      const before = await snapshotCollection(db, COL)
      const res = await runCli([...prod, '--dry-run', '--json'], {env: ENV})
      expect(res.code).toBe(0)
      expect(JSON.parse(res.stdout)).toMatchObject({dryRun: true, environment: 'production', updated: 20})
      await expectNothingWritten(before)
    })
  })

  describe('confirmTarget (interactive prompt injected)', () => {
    const prod = {environment: 'production' as const, projectId: 'acme-prod'}
    const base = {yes: false, json: false, action: 'backfill wardrobe_items', interactive: true}

    it('the typed project id passes (surrounding spaces ignored)', async () => {
      const asked: string[] = []
      const warn = jest.fn()
      await expect(
        confirmTarget(prod, {...base, warn, ask: async (m) => (asked.push(m), ' acme-prod ')}),
      ).resolves.toBeUndefined()
      expect(asked).toHaveLength(1)
      expect(asked[0]).toContain('acme-prod')
    })

    it('a wrong id throws UsageError (exit 2)', async () => {
      const err = await confirmTarget(prod, {...base, warn: () => {}, ask: async () => 'acme-staging'}).catch((e) => e)
      expect(err).toBeInstanceOf(UsageError)
      expect(err.exitCode).toBe(2)
      expect(err.message).toMatch(/nothing was written/)
    })

    it('an aborted prompt throws UsageError', async () => {
      const err = await confirmTarget(prod, {
        ...base,
        warn: () => {},
        ask: async () => Promise.reject(new Error('ExitPromptError')),
      }).catch((e) => e)
      expect(err).toBeInstanceOf(UsageError)
    })

    it('never asks under --json or without a terminal; --yes skips the question; staging warns; development passes', async () => {
      const ask = jest.fn(async () => 'acme-prod')
      await expect(confirmTarget(prod, {...base, json: true, warn: () => {}, ask})).rejects.toBeInstanceOf(UsageError)
      await expect(confirmTarget(prod, {...base, interactive: false, warn: () => {}, ask})).rejects.toBeInstanceOf(
        UsageError,
      )
      const warn = jest.fn()
      await confirmTarget(prod, {...base, yes: true, warn, ask})
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('acme-prod'))
      const stagingWarn = jest.fn()
      await confirmTarget({environment: 'staging', projectId: 'acme-staging'}, {...base, warn: stagingWarn, ask})
      expect(stagingWarn).toHaveBeenCalledWith(expect.stringContaining('acme-staging'))
      await confirmTarget({environment: 'development', projectId: 'demo-x'}, {...base, warn: () => {}, ask})
      expect(ask).not.toHaveBeenCalled()
    })
  })

  describe('development without an emulator', () => {
    const hint = 'gcloud emulators firestore start'

    it('--emulator-host where nothing listens: exit 2 and how to start one', async () => {
      const out = tmpDir()
      const res = await runCli(
        ['backfill', '--project', uniqueProject('noemu'), '--emulator-host', '127.0.0.1:1', '--output-dir', out],
        {env: ENV},
      )
      expect(res.code).toBe(2)
      expect(res.stderr).toContain('127.0.0.1:1')
      expect(res.stderr.replace(/\s*\n\s*›?\s*/g, ' ')).toContain(hint)
      expect(reportFiles(out, 'backfill_stats_')).toEqual([])
    })

    it('no FIRESTORE_EMULATOR_HOST and no --emulator-host: exit 2 and how to start one', async () => {
      const res = await runCli(['backfill', '--project', uniqueProject('noemu'), '--output-dir', tmpDir()], {
        env: {...ENV, FIRESTORE_EMULATOR_HOST: undefined},
      })
      expect(res.code).toBe(2)
      expect(res.stderr).toMatch(/emulator/)
      expect(res.stderr.replace(/\s*\n\s*›?\s*/g, ' ')).toContain(hint)
    })

    it('the same under --json: a JSON error with the hint, exit 2', async () => {
      const res = await runCli(
        ['backfill', '--project', uniqueProject('noemu'), '--emulator-host', '127.0.0.1:1', '--json'],
        {cwd: tmpDir(), env: ENV},
      )
      expect(res.code).toBe(2)
      const body = JSON.parse(res.stdout)
      expect(`${body.error.message} ${body.error.suggestion}`).toContain(hint)
    })
  })

  describe('output', () => {
    let project: string
    let db: Firestore
    let out: string

    beforeEach(async () => {
      project = uniqueProject('output')
      db = testDb(project)
      out = tmpDir()
      await writeItems(db, COL, generateItems(400, {seed: 25, malformedRate: 0.03}))
    })
    afterEach(async () => {
      await db.terminate()
    })

    it('--json prints exactly the stats object, the same as the stats file; the log is JSON lines', async () => {
      const res = await runCli(['backfill', ...devArgs(project, out), '--json'], {env: ENV})
      expect(res.code).toBe(3)
      const trimmed = res.stdout.trim()
      expect(trimmed.startsWith('{') && trimmed.endsWith('}')).toBe(true)
      const stats = JSON.parse(res.stdout)
      for (const key of [
        'scanned',
        'updated',
        'skipped',
        'failed',
        'conflicts',
        'unmapped',
        'errorSamples',
        'runId',
        'status',
        'dryRun',
        'environment',
        'projectId',
        'collection',
        'version',
        'startedAt',
        'finishedAt',
      ]) {
        expect(stats).toHaveProperty(key)
      }
      expect(stats).toMatchObject({
        status: 'completed',
        dryRun: false,
        environment: 'development',
        projectId: project,
        collection: COL,
        version: '1.0',
        scanned: 400,
      })
      expect(Date.parse(stats.finishedAt)).toBeGreaterThanOrEqual(Date.parse(stats.startedAt))

      const files = fs.readdirSync(out).filter((f) => f.startsWith('backfill_stats_'))
      expect(files).toHaveLength(1)
      expect(files[0]).toMatch(/^backfill_stats_\d{8}_\d{6}(_\d+)?\.json$/)
      expect(readJson(path.join(out, files[0]))).toEqual(stats)

      const log = fs.readFileSync(path.join(out, 'backfill_normalize.log'), 'utf8').trim().split('\n')
      expect(log.length).toBeGreaterThan(1)
      const entries = log.map((l) => JSON.parse(l))
      expect(
        entries.every(
          (e) => typeof e.level === 'string' && typeof e.message === 'string' && typeof e.timestamp === 'string',
        ),
      ).toBe(true)
      expect(entries.some((e) => e.message === 'backfill finished' && e.runId === stats.runId)).toBe(true)
    })

    it('without a TTY: plain progress lines on stderr, only the result on stdout, no colour codes', async () => {
      const res = await runCli(['backfill', ...devArgs(project, out), '--dry-run'], {
        env: {...ENV, WARDROBE_PROGRESS_INTERVAL_MS: '0'},
      })
      expect(res.code).toBe(3)
      expect(res.stderr).toMatch(/^backfill \(dry run\): \d+\/400\b.*$/m)
      expect(res.stderr).toMatch(/^backfill \(dry run\): 400\/400 \(100%\)/m)
      expect(res.stdout).not.toMatch(/\d+\/400 \(\d+%\)/) // no progress on stdout
      expect(res.stdout).toMatch(/^Dry run completed: scanned 400/m)
      expect(res.stdout + res.stderr).not.toMatch(/\u001b\[/)
      const real = await runCli(['backfill', ...devArgs(project, out)], {env: ENV})
      expect(real.code).toBe(3)
      expect(real.stderr).toMatch(/^backfill: \d+\/400/m)
      expect(real.stdout).not.toMatch(/^backfill: /m)
      expect(real.stdout).not.toMatch(/items in scope/) // the run note is for humans: stderr
      expect(real.stdout).toMatch(/^Run backfill-\S+ completed: scanned 400/m)
    })
  })
})
