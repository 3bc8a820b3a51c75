import {Watermark} from '../../../src/engine/checkpoint'

/** A watermark whose commits are recorded, to check their order. */
function tracked(start: string | null = null) {
  const committed: string[] = []
  const wm = new Watermark<string>(start, (o) => committed.push(o))
  return {wm, committed}
}

/** Deterministic shuffle (mulberry32), so a failure is reproducible. */
function shuffled<T>(items: T[], seed: number): T[] {
  let a = seed >>> 0
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

const id = (i: number) => `id${String(i).padStart(6, '0')}`

describe('Watermark', () => {
  it('starts at the resumed cursor (or null) with nothing pending', () => {
    expect(tracked().wm.cursor).toBeNull()
    const {wm} = tracked('abc')
    expect(wm.cursor).toBe('abc')
    expect(wm.pending).toBe(0)
  })

  it('does not advance past an unfinished item when later items finish first', () => {
    const {wm, committed} = tracked('start')
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => wm.add(x))
    expect(wm.pending).toBe(4)

    wm.complete(c, 'C')
    wm.complete(d, 'D')
    expect(wm.cursor).toBe('start') // a and b are still in flight
    expect(committed).toEqual([])

    wm.complete(b, 'B')
    expect(wm.cursor).toBe('start')
    expect(committed).toEqual([])

    wm.complete(a, 'A')
    expect(wm.cursor).toBe('d') // the whole prefix is now acknowledged
    expect(committed).toEqual(['A', 'B', 'C', 'D']) // in id order, not completion order
    expect(wm.pending).toBe(0)
  })

  it('advances over exactly the finished prefix, step by step', () => {
    const {wm, committed} = tracked()
    const t = ['a', 'b', 'c', 'd', 'e'].map((x) => wm.add(x))
    wm.complete(t[0], 'a')
    expect(wm.cursor).toBe('a')
    wm.complete(t[2], 'c')
    expect(wm.cursor).toBe('a')
    wm.complete(t[1], 'b')
    expect(wm.cursor).toBe('c')
    wm.complete(t[4], 'e')
    expect(wm.cursor).toBe('c')
    expect(committed).toEqual(['a', 'b', 'c'])
    expect(wm.pending).toBe(2)
    wm.complete(t[3], 'd')
    expect(wm.cursor).toBe('e')
    expect(committed).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('keeps items added after completions in order (interleaved add/complete)', () => {
    const {wm, committed} = tracked()
    const t1 = wm.add('a')
    const t2 = wm.add('b')
    wm.complete(t2, 'b')
    const t3 = wm.add('c')
    wm.complete(t1, 'a')
    expect(wm.cursor).toBe('b')
    const t4 = wm.add('d')
    wm.complete(t4, 'd')
    expect(wm.cursor).toBe('b')
    wm.complete(t3, 'c')
    expect(wm.cursor).toBe('d')
    expect(committed).toEqual(['a', 'b', 'c', 'd'])
  })

  it('random completion order over many items (across its internal compaction): the cursor is always the end of the finished prefix', () => {
    const {wm, committed} = tracked()
    const n = 12_000
    const done = new Array<boolean>(n).fill(false)
    let prefix = -1 // last index of the finished prefix
    // Add in windows and finish each window out of order, like writes in flight.
    const window = 700
    for (let start = 0; start < n; start += window) {
      const tickets: [number, number][] = []
      for (let i = start; i < Math.min(n, start + window); i++) tickets.push([i, wm.add(id(i))])
      for (const [i, ticket] of shuffled(tickets, start + 1)) {
        wm.complete(ticket, id(i))
        done[i] = true
        while (prefix + 1 < n && done[prefix + 1]) prefix++
        expect(wm.cursor).toBe(prefix < 0 ? null : id(prefix))
      }
    }
    expect(committed).toEqual(Array.from({length: n}, (_, i) => id(i)))
    expect(wm.cursor).toBe(id(n - 1))
    expect(wm.pending).toBe(0)
  })

  it('stays correct when one slow item holds back thousands of finished ones', () => {
    const {wm, committed} = tracked()
    const slow = wm.add(id(0))
    const rest = Array.from({length: 9000}, (_, i) => wm.add(id(i + 1)))
    rest.forEach((ticket, i) => wm.complete(ticket, id(i + 1)))
    expect(wm.cursor).toBeNull()
    expect(committed).toEqual([])
    expect(wm.pending).toBe(9001)
    wm.complete(slow, id(0))
    expect(wm.cursor).toBe(id(9000))
    expect(committed.length).toBe(9001)
    expect(committed.slice(0, 3)).toEqual([id(0), id(1), id(2)])
    // More items after the big commit (the committed prefix was compacted away).
    const a = wm.add(id(9001))
    const b = wm.add(id(9002))
    wm.complete(b, id(9002))
    expect(wm.cursor).toBe(id(9000))
    wm.complete(a, id(9001))
    expect(wm.cursor).toBe(id(9002))
    expect(committed.slice(-2)).toEqual([id(9001), id(9002)])
  })

  it('commits counters in id order, so checkpointed counters match the cursor', () => {
    // The engine's use: counters are bumped in onCommit; at any cursor, counters cover exactly the prefix.
    const counters = {updated: 0, failed: 0}
    const outcomes: Record<string, 'updated' | 'failed'> = {a: 'updated', b: 'failed', c: 'updated', d: 'updated'}
    const wm = new Watermark<'updated' | 'failed'>(null, (o) => counters[o]++)
    const t = Object.keys(outcomes).map((k) => wm.add(k))
    wm.complete(t[3], outcomes.d)
    wm.complete(t[1], outcomes.b)
    expect([wm.cursor, counters]).toEqual([null, {updated: 0, failed: 0}])
    wm.complete(t[0], outcomes.a)
    expect([wm.cursor, counters]).toEqual(['b', {updated: 1, failed: 1}])
    wm.complete(t[2], outcomes.c)
    expect([wm.cursor, counters]).toEqual(['d', {updated: 3, failed: 1}])
  })
})
