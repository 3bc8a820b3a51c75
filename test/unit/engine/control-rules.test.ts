/**
 * The rules of live control, with fixed timestamps and no server: windows, the closed
 * loop's limits, the choice and naming of a process's limit, its share of the run-wide cap,
 * and whether a change is acknowledged.
 */
import {
  ackStatus,
  AdaptiveThrottle,
  chooseLimit,
  ControlSchema,
  describeLimit,
  LatencyLimit,
  rampAt,
  shareOf,
} from '../../../src/engine/control'
import {parseWindow, resolveTimezone, windowState} from '../../../src/domain/windows'
import {UsageError} from '../../../src/errors'

const at = (iso: string) => Date.parse(iso)

describe('maintenance windows', () => {
  test('HH:MM-HH:MM (and HH:MM:SS) parse; anything else is a usage error naming the form', () => {
    expect(parseWindow('22:00-06:00')).toEqual({start: '22:00', end: '06:00'})
    expect(parseWindow('09:15:30-09:16')).toEqual({start: '09:15:30', end: '09:16'})
    for (const bad of ['22-06', '24:00-01:00', '10:00', '10:00-10:00', '10:00-11:00-12:00'])
      expect(() => parseWindow(bad)).toThrow(
        expect.objectContaining({constructor: UsageError, message: expect.stringContaining(bad)}),
      )
    expect(() => resolveTimezone('Mars/Olympus')).toThrow(UsageError)
    expect(resolveTimezone('Europe/Paris')).toBe('Europe/Paris')
  })

  test('open inside a window, closed outside, with the instant it changes; a window may span midnight', () => {
    const night = [parseWindow('22:00-06:00')]
    expect(windowState(night, 'UTC', at('2026-12-01T23:30:00Z'))).toEqual({
      open: true,
      changesAt: at('2026-12-02T06:00:00Z'),
    })
    expect(windowState(night, 'UTC', at('2026-12-01T05:59:59Z'))).toEqual({
      open: true,
      changesAt: at('2026-12-01T06:00:00Z'),
    })
    expect(windowState(night, 'UTC', at('2026-12-01T06:00:00Z'))).toEqual({
      open: false,
      changesAt: at('2026-12-01T22:00:00Z'),
    })
    expect(windowState(night, 'UTC', at('2026-12-01T12:00:00.250Z'))).toEqual({
      open: false,
      changesAt: at('2026-12-01T22:00:00Z'),
    })
    expect(windowState([], 'UTC', at('2026-12-01T12:00:00Z'))).toEqual({open: true, changesAt: null})
  })

  test('the time zone decides: 22:00-06:00 in Paris is 21:00-05:00 UTC in winter', () => {
    const night = [parseWindow('22:00-06:00')]
    expect(windowState(night, 'Europe/Paris', at('2026-12-01T21:30:00Z')).open).toBe(true)
    expect(windowState(night, 'UTC', at('2026-12-01T21:30:00Z')).open).toBe(false)
    expect(windowState(night, 'Europe/Paris', at('2026-12-01T05:30:00Z')).open).toBe(false)
  })

  test('the nearest of several windows opens next', () => {
    const two = [parseWindow('01:00-02:00'), parseWindow('13:00-14:00')]
    expect(windowState(two, 'UTC', at('2026-12-01T03:00:00Z'))).toEqual({
      open: false,
      changesAt: at('2026-12-01T13:00:00Z'),
    })
    expect(windowState(two, 'UTC', at('2026-12-01T15:00:00Z'))).toEqual({
      open: false,
      changesAt: at('2026-12-02T01:00:00Z'),
    })
  })
})

describe('client-side adaptive throttling (SRE book, K = 1.25, two-minute window)', () => {
  test('no rejection, no limit; a storm caps the rate near K × what is accepted; it lifts as the window refills with accepts', () => {
    const t = new AdaptiveThrottle()
    const t0 = at('2026-12-01T10:00:00Z')
    for (let s = 0; s < 20; s++) for (let i = 0; i < 100; i++) t.record(true, t0 + s * 1000)
    expect(t.limit(t0 + 20_000)).toEqual({rejectProbability: 0, limit: Infinity})
    // 20 s of a storm: 70% of 100 writes/s refused.
    for (let s = 20; s < 40; s++) for (let i = 0; i < 100; i++) t.record(i < 30, t0 + s * 1000)
    const storm = t.limit(t0 + 40_000)
    const requests = 4000
    const accepts = 2600
    expect(storm.rejectProbability).toBeCloseTo((requests - 1.25 * accepts) / (requests + 1), 5)
    expect(storm.limit).toBeCloseTo((1.25 * accepts) / 40, 0)
    // Accepted again at the lower rate: the limit lifts once accepts outweigh the storm.
    let s = 40
    while (t.limit(t0 + s * 1000).limit !== Infinity && s < 400) {
      for (let i = 0; i < 60; i++) t.record(true, t0 + s * 1000)
      s++
    }
    expect(s).toBeLessThan(160)
  })
})

describe('latency AIMD', () => {
  test('above the target it cuts to 70% of the rate achieved, each second; below it rises by a fixed step and lifts', () => {
    const l = new LatencyLimit(100)
    let t = at('2026-12-01T10:00:00Z')
    /** One second of `perSecond` acknowledged writes at `latency`, then the limit. */
    const second = (latency: number, perSecond: number) => {
      for (let i = 0; i < perSecond; i++) l.record(latency, t + (i * 1000) / perSecond)
      t += 1000
      return l.limit(t)
    }
    for (let i = 0; i < 5; i++) expect(second(20, 400)).toBe(Infinity)
    expect(second(300, 400)).toBeCloseTo(280)
    expect(second(300, 280)).toBeCloseTo(196)
    // Latency gone (past the 5 s sample window): +20/s each second, a twentieth of the 400/s before the first cut.
    t += 5000
    expect(second(20, 190)).toBeCloseTo(216)
    expect(second(20, 210)).toBeCloseTo(236)
    let limit = 236
    for (let i = 0; i < 60 && limit !== Infinity; i++) limit = second(20, 400)
    expect(limit).toBe(Infinity)
  })

  test('too few writes to judge: the limit probes upwards instead of staying cut', () => {
    const l = new LatencyLimit(100)
    let t = at('2026-12-01T10:00:00Z')
    for (let i = 0; i < 100; i++) l.record(500, t + i * 10)
    t += 1000
    const cut = l.limit(t)
    expect(cut).toBeCloseTo(70)
    t += 10_000
    expect(l.limit(t)).toBeGreaterThan(cut)
  })
})

describe('the limit a process writes under', () => {
  const open = {open: true, changesAt: null}
  test('the tightest limit wins and names itself; pause and closed windows stop writing', () => {
    const base = {
      state: 'running' as const,
      window: open,
      share: 0.5,
      cap: 200,
      ramp: 500,
      errors: Infinity,
      latency: Infinity,
    }
    expect(chooseLimit(base)).toEqual({perSecond: 100, reason: 'cap'})
    expect(chooseLimit({...base, cap: null})).toEqual({perSecond: 250, reason: 'ramp'})
    expect(chooseLimit({...base, errors: 40})).toEqual({perSecond: 40, reason: 'errors'})
    expect(chooseLimit({...base, latency: 30, errors: 40})).toEqual({perSecond: 30, reason: 'latency'})
    expect(chooseLimit({...base, cap: null, ramp: null})).toEqual({perSecond: null, reason: 'none'})
    expect(chooseLimit({...base, state: 'paused'})).toEqual({perSecond: 0, reason: 'paused'})
    expect(chooseLimit({...base, window: {open: false, changesAt: 1}})).toEqual({perSecond: 0, reason: 'window'})
    expect(describeLimit({perSecond: 0, reason: 'paused', detail: 'ops@laptop: incident 42'})).toBe(
      'paused by ops@laptop: incident 42',
    )
    expect(describeLimit({perSecond: 100, reason: 'cap'})).toBe('limit 100/s (cap)')
  })

  test('a process takes the share of its workers among every live process’s', () => {
    expect(shareOf(2, [{workers: 2}, {workers: 2}])).toBe(0.5)
    expect(shareOf(1, [{workers: 1}, {workers: 3}])).toBe(0.25)
    expect(shareOf(1, [])).toBe(1)
  })

  test('the ramp is 500/50/5 from the run’s ramp start, up to 10,000', () => {
    expect(rampAt(0)).toBe(500)
    expect(rampAt(5 * 60_000)).toBe(750)
    expect(rampAt(10 * 60_000 - 1)).toBe(750)
    expect(rampAt(1e9)).toBe(10_000)
  })
})

describe('acknowledgement', () => {
  const change = (seq: number, secondsAgo: number, now: number) => ({
    seq,
    action: 'pause' as const,
    by: 'ops@laptop',
    at: new Date(now - secondsAgo * 1000),
    reason: 'x',
  })
  test('applied by every live process, pending within 30 s, not acknowledged after, naming who has not seen it', () => {
    const now = at('2026-12-01T10:00:00Z')
    const control = (secondsAgo: number) =>
      ControlSchema.parse({state: 'paused', seq: 3, changes: [change(3, secondsAgo, now)]})
    const a = {seenSeq: 3, name: 'a'}
    const b = {seenSeq: 2, name: 'b'}
    expect(ackStatus(control(5), [a], now)?.status).toBe('applied')
    expect(ackStatus(control(5), [a, b], now)).toMatchObject({status: 'pending', waitingOn: ['b']})
    expect(ackStatus(control(31), [a, b], now)).toMatchObject({status: 'not acknowledged', waitingOn: ['b']})
    expect(ackStatus(control(31), [], now)?.status).toBe('no live process')
  })
})
