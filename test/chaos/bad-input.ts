import {DocumentReference, GeoPoint, Timestamp} from 'firebase-admin/firestore'
import {MAX_VALUES_PER_FIELD, MAX_VALUE_LENGTH} from '../../src/domain/normalization'
import {generateItem, MALFORMED_KINDS, SeedItem, WRITABLE_MALFORMED_KINDS} from '../../src/dev/seed-data'
import {ledgerErrors, readCollection, snapshotOriginals, verifyBackfill} from './checker'
import {COL, ended, Scenario, Target} from './context'

const MIB = 1024 * 1024
const pad = (bytes: number) => 'p'.repeat(bytes)

/** Hand-made bad items: id, data, and the reason the run must record. */
function specials(): {item: SeedItem; reason: RegExp}[] {
  const typeError = (field: string, type: string) =>
    new RegExp(`^${field}: expected an array of strings or a string, got ${type}$`)
  const elementError = (field: string, i: number, type: string) =>
    new RegExp(`^${field}\\[${i}\\]: expected a string, got ${type}`)
  const deep: Record<string, unknown> = {leaf: 'Casual'}
  let nested = deep
  for (let i = 0; i < 15; i++) nested = {level: nested}
  const list: [string, Record<string, unknown>, RegExp][] = [
    ['number', {style: 42}, typeError('style', 'number')],
    ['nan', {mood: Number.NaN}, typeError('mood', 'number')],
    ['boolean', {season: true}, typeError('season', 'boolean')],
    ['map', {occasion: {primary: 'Work'}}, typeError('occasion', 'map')],
    ['deep-map', {style: nested}, typeError('style', 'map')],
    ['timestamp', {style: Timestamp.fromMillis(0)}, typeError('style', 'Timestamp')],
    ['geopoint', {season: new GeoPoint(1, 2)}, typeError('season', 'GeoPoint')],
    ['bytes', {mood: Buffer.from('Relaxed')}, typeError('mood', 'Buffer')],
    ['reference', {occasion: null as unknown}, typeError('occasion', 'DocumentReference')], // set below
    ['el-number', {style: ['Casual', 3]}, elementError('style', 1, 'number')],
    ['el-boolean', {mood: ['Relaxed', false]}, elementError('mood', 1, 'boolean')],
    ['el-null', {season: [null]}, elementError('season', 0, 'null')],
    ['el-map', {occasion: ['Work', {x: 'Party'}]}, elementError('occasion', 1, 'map')],
    ['el-timestamp', {style: [Timestamp.fromMillis(1)]}, elementError('style', 0, 'Timestamp')],
    ['el-geopoint', {season: ['Fall', new GeoPoint(0, 0)]}, elementError('season', 1, 'GeoPoint')],
    [
      'long-100k',
      {style: 'x'.repeat(100_000)},
      new RegExp(`^style: value is 100000 characters long \\(max ${MAX_VALUE_LENGTH}\\)$`),
    ],
    [
      'long-comma-piece',
      {occasion: `Work, ${'y'.repeat(5000)}`},
      /^occasion \(comma-separated value 2\): value is 5000 characters long/,
    ],
    ['long-element', {mood: ['Cozy', 'z'.repeat(20_000)]}, /^mood\[1\]: value is 20000 characters long/],
    [
      'huge-array',
      {style: Array.from({length: 10_000}, (_, i) => `Casual ${i}`)},
      new RegExp(`^style: 10000 values \\(max ${MAX_VALUES_PER_FIELD}\\)$`),
    ],
    [
      'huge-comma-list',
      {season: Array.from({length: 1000}, () => 'Fall').join(',')},
      /^season: 1000 comma-separated values/,
    ],
    ['near-1mib-long-string', {name: 'big', style: 's'.repeat(MIB - 2000)}, /^style: value is \d+ characters long/],
    [
      'near-1mib-huge-array',
      {name: 'big', mood: Array.from({length: 1000}, (_, i) => `${i}`.padEnd(1000, 'm'))},
      /^mood: 1000 values/,
    ],
    ['near-1mib-padded', {name: 'big', description: pad(MIB - 4000), season: 7}, typeError('season', 'number')],
    // Well-formed, but the document has no room left for `normalized`: Firestore refuses the write.
    [
      'near-1mib-no-room',
      {name: 'big', description: pad(MIB - 150), style: ['Casual', 'Streetwear']},
      /1 ?MiB|1048576|too large|size/i,
    ],
  ]
  return list.map(([kind, data, reason]) => ({item: {id: `bad-${kind}`, data: {name: `bad ${kind}`, ...data}}, reason}))
}

/** Scenario 6: malformed items of every kind among well-formed ones: each an error item with its reason, none written, exit 3. */
export const badInput: Scenario = {
  name: 'bad-input',
  title: 'bad input: every malformed shape, huge values, documents near 1 MiB',
  async run(ctx, report) {
    const t = await Target.create(ctx, 'bad-input')
    try {
      const kinds = new Map<string, number>()
      const generated = function* () {
        for (let i = 0; i < ctx.items; i++) {
          const g = generateItem(i, {seed: ctx.seed, malformedRate: 0.2, malformedKinds: WRITABLE_MALFORMED_KINDS})
          if (g.malformed) kinds.set(g.malformed.kind, (kinds.get(g.malformed.kind) ?? 0) + 1)
          yield g.item
        }
      }
      await t.seed(generated())
      const special = specials()
      const ref = special.find((s) => s.item.id === 'bad-reference')!
      ref.item.data.occasion = t.db.doc('other/doc') as DocumentReference
      // One at a time: a batch of near-1 MiB documents would exceed the request size.
      for (const s of special) await t.db.collection(COL).doc(s.item.id).set(s.item.data)

      // A lone surrogate cannot be sent by the client (it encodes UTF-8); JSON escapes can carry one over REST.
      const surrogateId = 'bad-lone-surrogate'
      const rest = await fetch(
        `http://${ctx.host}/v1/projects/${t.projectId}/databases/(default)/documents/${COL}/${surrogateId}`,
        {
          method: 'PATCH',
          headers: {'content-type': 'application/json'},
          body: JSON.stringify({
            fields: {
              name: {stringValue: 'lone surrogate'},
              style: {stringValue: '\uD800'},
              mood: {arrayValue: {values: [{stringValue: 'Casual\uDC00'}]}},
            },
          }),
        },
      )
      const stored = (await t.db.collection(COL).doc(surrogateId).get()).data()
      const storedStyle = String(stored?.style ?? '')
      const kept = /[\uD800-\uDFFF]/.test(storedStyle)
      report.figure(
        'loneSurrogate',
        rest.ok
          ? kept
            ? 'stored as sent'
            : `stored as ${JSON.stringify(storedStyle)} (U+${storedStyle.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})`
          : `refused (HTTP ${rest.status})`,
      )
      if (kept) special.push({item: {id: surrogateId, data: stored!}, reason: /lone UTF-16 surrogate/})

      const before = await snapshotOriginals(t.db, COL)
      const res = await t.run('backfill', [])
      const s = res.stats
      report.check(res.code === 3 && s?.status === 'completed', 'the run completes with exit 3', ended(res))
      const malformed = [...kinds.values()].reduce((a, b) => a + b, 0) + special.length
      report.check(s?.failed === malformed, `it counts ${malformed} error items`, `failed ${s?.failed}`)

      // Every hand-made item: an error item with the expected reason, nothing written.
      const reported = await ledgerErrors(t.db, COL)
      const docs = await readCollection(t.db, COL)
      const wrong: string[] = []
      for (const {item, reason} of special) {
        const got = reported.get(item.id)?.[0]
        if (!got || !reason.test(got)) wrong.push(`${item.id}: ${got ?? 'not reported'}`)
        if (docs.get(item.id)?.data.normalized !== undefined) wrong.push(`${item.id}: written`)
      }
      report.check(
        wrong.length === 0,
        `each of ${special.length} hand-made bad items (types, elements, ${MAX_VALUE_LENGTH}+ chars, huge arrays, near 1 MiB) is an error item with its reason, not written`,
        wrong.join('; '),
      )
      const noRoom = new Map(
        special.filter((x) => x.item.id === 'bad-near-1mib-no-room').map((x) => [x.item.id, x.reason]),
      )
      report.verdict('whole collection', await verifyBackfill(t.db, COL, before, ctx.vocab, {writeRefused: noRoom}))
      report.figure(
        'malformedKinds',
        [...kinds].map(([k, n]) => `${k} ${n}`).join(' / ') + ` / hand-made ${special.length}`,
      )
      report.figure('unitOnly', MALFORMED_KINDS.filter((k) => !WRITABLE_MALFORMED_KINDS.includes(k)).join(', '))
    } finally {
      await t.close()
    }
  },
}
