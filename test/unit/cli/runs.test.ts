/**
 * The pure part of `wardrobe runs`: which processes count as live, the acknowledgement of
 * the last change at fixed instants (Firestore's time is a parameter), the texts of a
 * change, and `--max-rate N|off`. No emulator, no clock.
 */
import {ControlSchema} from '../../../src/engine/control'
import {MemberRecordSchema, RunRecordSchema} from '../../../src/engine/ledger'
import {controlView, parseMaxRate, RunChangeReport} from '../../../src/services/runs'
import {controlLines, renderChange} from '../../../src/cli/runs-text'

const T0 = Date.parse('2026-12-01T10:00:00Z')
const STALE = 60_000

const owner = (pid: number) => ({user: 'ops', host: `worker-${pid}`, pid, processId: `p${pid}`, pidSpace: 'elsewhere'})
const member = (pid: number, over: Record<string, unknown> = {}) =>
  MemberRecordSchema.parse({
    owner: owner(pid),
    workers: 1,
    heartbeatAt: new Date(T0 + 9_000),
    staleAfterMs: STALE,
    seenSeq: 0,
    state: 'writing',
    limit: 100,
    reason: 'limit 100/s (cap)',
    rate: 98,
    ...over,
  })

/** A running run paused at T0 + 10 s (change #1). */
function pausedRun(status: 'running' | 'interrupted' = 'running') {
  const control = ControlSchema.parse({
    state: 'paused',
    maxRate: 200,
    seq: 1,
    windows: [{start: '22:00', end: '06:00'}],
    timezone: 'Europe/Paris',
    changes: [
      {seq: 0, action: 'start', by: 'ops@laptop', at: new Date(T0), maxRate: 200},
      {seq: 1, action: 'pause', by: 'ops@laptop', at: new Date(T0 + 10_000), reason: 'INC-1'},
    ],
  })
  return RunRecordSchema.parse({
    runId: 'backfill-x',
    kind: 'backfill',
    environment: 'production',
    projectId: 'p',
    collection: 'c',
    version: '1.0',
    resumeKey: 'k',
    owner: owner(1),
    status,
    counters: {},
    cursor: null,
    startedAt: new Date(T0),
    heartbeatAt: new Date(T0),
    control,
  })
}

describe('controlView', () => {
  const members = [member(1, {seenSeq: 1, state: 'paused', limit: 0, reason: 'paused by ops@laptop: INC-1'}), member(2)]

  it('a change a live process has not applied is pending, then not acknowledged past 30 s, naming that process', () => {
    const run = pausedRun()
    expect(controlView(run, members, STALE, T0 + 20_000).ack).toEqual({
      seq: 1,
      change: 'pause by ops@laptop at 2026-12-01T10:00:10.000Z: INC-1',
      status: 'pending',
      waitingOn: ['ops@worker-2 pid 2'],
    })
    expect(controlView(run, members, STALE, T0 + 40_001).ack).toMatchObject({
      status: 'not acknowledged',
      waitingOn: ['ops@worker-2 pid 2'],
    })
    const applied = controlView(run, [members[0], member(2, {seenSeq: 1})], STALE, T0 + 40_001)
    expect(applied.ack).toMatchObject({status: 'applied', waitingOn: []})
    expect(applied).toMatchObject({state: 'paused', maxRate: 200, windows: '22:00-06:00 Europe/Paris', seq: 1})
  })

  it("only live processes count: one that left, or whose heartbeat is stale by Firestore's time, is not waited on", () => {
    const gone = [
      member(1, {seenSeq: 1}),
      member(2, {leftAt: new Date(T0 + 5_000)}),
      member(3, {heartbeatAt: new Date(T0 - 60_000)}),
    ]
    const view = controlView(pausedRun(), gone, STALE, T0 + 40_001)
    expect(view.processes.map((p) => p.name)).toEqual(['ops@worker-1 pid 1'])
    expect(view.ack).toMatchObject({status: 'applied'})
    expect(
      controlView(pausedRun(), [member(3, {heartbeatAt: new Date(T0 - 60_000)})], STALE, T0 + 40_001).ack,
    ).toMatchObject({status: 'no live process', waitingOn: []})
  })

  it('an ended run applies nothing: no processes, no acknowledgement', () => {
    expect(controlView(pausedRun('interrupted'), members, STALE, T0 + 40_001)).toMatchObject({
      state: 'paused',
      processes: [],
      ack: null,
    })
  })

  it('the lines monitor and `runs` print: settings, the unacknowledged change as an alert, each process with its limit and why', () => {
    const lines = controlLines(controlView(pausedRun(), members, STALE, T0 + 40_001))
    expect(lines).toEqual([
      {
        text: 'control: paused, max rate 200/s run-wide, windows 22:00-06:00 Europe/Paris; last change #1: pause by ops@laptop at 2026-12-01T10:00:10.000Z: INC-1',
        alert: false,
      },
      {text: expect.stringMatching(/^change #1 not acknowledged by ops@worker-2 pid 2 after 30 s/), alert: true},
      {
        text: 'ops@worker-1 pid 1: paused by ops@laptop: INC-1, 98/s, heartbeat 31s ago, change #1 applied',
        alert: false,
      },
      {text: 'ops@worker-2 pid 2: limit 100/s (cap), 98/s, heartbeat 31s ago, change #0 applied', alert: false},
    ])
  })
})

describe('texts of a change', () => {
  const report = (over: Partial<RunChangeReport>): RunChangeReport => ({
    kind: 'run-change',
    runId: 'r1',
    status: 'running',
    action: 'pause',
    changed: true,
    state: 'paused',
    maxRate: null,
    before: {state: 'running', maxRate: null},
    change: 'pause by ops@laptop at …',
    reason: null,
    live: ['a', 'b'],
    command: 'wardrobe backfill --environment production --project p --yes',
    ...over,
  })

  it('says what changed, and that a change changing nothing changed nothing', () => {
    expect(renderChange(report({reason: 'INC-1'}))[0]).toBe(
      'Paused run r1 (2 live processes; each stops writing within 5 s, drains, checkpoints and waits holding its leases): INC-1',
    )
    expect(renderChange(report({changed: false}))).toEqual(['Run r1 is already paused: nothing changed.'])
    expect(
      renderChange(
        report({
          action: 'throttle',
          state: 'running',
          maxRate: 200,
          before: {state: 'running', maxRate: null},
          live: ['a'],
        }),
      )[0],
    ).toBe('Run r1: max rate 200/s run-wide (was off; 1 live process, each takes its share within 5 s)')
    expect(renderChange(report({action: 'stop', state: 'stopping'}))).toEqual([
      'Stopping run r1 (2 live processes; each drains, checkpoints and exits 130 within 5 s; the run ends interrupted)',
      'Re-running its command resumes it: wardrobe backfill --environment production --project p --yes',
    ])
  })

  it('a run no process runs: says so first, with the command that resumes it', () => {
    expect(
      renderChange(report({action: 'resume', status: 'interrupted', changed: false, state: 'running', live: []})),
    ).toEqual([
      'No process of run r1 is running (interrupted); resume it with: wardrobe backfill --environment production --project p --yes',
    ])
    expect(renderChange(report({action: 'stop', state: 'stopping', live: [], command: null}))).toEqual([
      'No process of run r1 is running (running, its processes are gone); resume it by running the command that started it again',
      'Run r1 marked stopping: no process applies it, and a re-run of its command resumes the run',
    ])
    expect(
      renderChange(report({action: 'resume', status: 'running', state: 'running', live: [], command: null}))[0],
    ).toBe(
      'No process of run r1 is running (running, its processes are gone); resume it by running the command that started it again',
    )
  })
})

describe('--max-rate of runs throttle', () => {
  it('takes a positive integer or off; anything else is a usage error with the fix', () => {
    expect(parseMaxRate('200')).toBe(200)
    expect(parseMaxRate('off')).toBeNull()
    expect(parseMaxRate('OFF')).toBeNull()
    for (const bad of ['0', 'fast', '2.5', '-1', '', '1e3']) expect(() => parseMaxRate(bad)).toThrow(/is not a rate/)
  })
})
