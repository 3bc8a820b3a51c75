import {
  MAX_VALUES_PER_FIELD,
  MAX_VALUE_LENGTH,
  NormalizeOutcome,
  NormalizedValues,
  describeType,
  normalizeItem,
  sourceHash,
} from '../../../src/domain/normalization'
import {loadVocabulary} from '../../../src/domain/vocabulary'

const vocab = loadVocabulary()

function ok(data: Record<string, unknown>): Extract<NormalizeOutcome, {ok: true}> {
  const r = normalizeItem(data, vocab)
  if (!r.ok) throw new Error(`expected ok, got: ${r.reason}`)
  return r
}

function values(data: Record<string, unknown>): NormalizedValues {
  return ok(data).values
}

// Firestore-like special values (same class names as firebase-admin's).
class Timestamp {
  constructor(
    readonly _seconds: number,
    readonly _nanoseconds: number,
  ) {}
}
class GeoPoint {
  constructor(
    readonly _latitude: number,
    readonly _longitude: number,
  ) {}
}
class DocumentReference {
  readonly firestore = {settings: {secret: 'x'}}
  constructor(readonly path: string) {}
  get id(): string {
    return this.path.split('/').pop() as string
  }
}

describe('normalizeItem', () => {
  it('normalizes the seed example exactly', () => {
    const r = ok({
      id: 'item_123',
      name: 'Blue Jeans',
      style: ['Casual', 'Streetwear'],
      occasion: ['Everyday', 'Weekend'],
      mood: ['Relaxed', 'Cool'],
      season: ['Spring', 'Summer'],
    })
    expect(r.values).toEqual({
      style: ['casual', 'streetwear'],
      occasion: ['everyday', 'weekend'],
      mood: ['relaxed', 'cool'],
      season: ['spring', 'summer'],
    })
    expect(Object.keys(r.values)).toEqual(['style', 'occasion', 'mood', 'season'])
    expect(r.unmapped).toEqual([])
    expect(r.sourceHash).toMatch(/^[0-9a-f]{64}$/)
  })

  it('does not modify its input', () => {
    const data = {style: ['Casual', 'casual'], season: 'Fall, Autumn'}
    const copy = JSON.parse(JSON.stringify(data)) as unknown
    ok(data)
    expect(data).toEqual(copy)
  })

  describe('accepted shapes', () => {
    it.each<[string, unknown, string[]]>([
      ['array of strings', ['Casual', 'Formal'], ['casual', 'formal']],
      ['empty array', [], []],
      ['single string', 'Casual', ['casual']],
      ['comma-separated string', 'Casual, Streetwear ,Formal', ['casual', 'streetwear', 'formal']],
      ['string with empty pieces', ' ,Casual,, ,', ['casual']],
      ['empty string', '', []],
      ['blank string', '   ', []],
      ['missing', undefined, []],
      ['null', null, []],
      ['array with empty / blank strings', ['', '  ', 'Casual', '_-_'], ['casual']],
      ['value of exactly MAX_VALUE_LENGTH', ['x'.repeat(MAX_VALUE_LENGTH)], ['x'.repeat(MAX_VALUE_LENGTH)]],
      ['long value padded with spaces', ['  ' + 'y'.repeat(MAX_VALUE_LENGTH) + '  '], ['y'.repeat(MAX_VALUE_LENGTH)]],
      ['MAX_VALUES_PER_FIELD elements', Array(MAX_VALUES_PER_FIELD).fill('Casual'), ['casual']],
      ['valid surrogate pair (emoji)', ['Casual 😎'], ['casual 😎']],
    ])('%s', (_name, style, expected) => {
      const data: Record<string, unknown> = {}
      if (style !== undefined) data.style = style
      const r = ok(data)
      expect(r.values.style).toEqual(expected)
      expect(r.values.occasion).toEqual([])
    })

    it('explicit undefined field', () => {
      expect(values({style: undefined, mood: null}).style).toEqual([])
    })

    it('item with none of the fields', () => {
      expect(values({name: 'x'})).toEqual({style: [], occasion: [], mood: [], season: []})
    })
  })

  describe('rejected shapes', () => {
    const longValue = 'z'.repeat(MAX_VALUE_LENGTH + 1)
    it.each<[string, unknown, string]>([
      ['number', 42, 'style: expected an array of strings or a string, got number'],
      ['NaN', Number.NaN, 'style: expected an array of strings or a string, got number'],
      ['boolean', true, 'style: expected an array of strings or a string, got boolean'],
      ['bigint', BigInt(5), 'style: expected an array of strings or a string, got bigint'],
      ['map', {casual: true}, 'style: expected an array of strings or a string, got map'],
      [
        'null-prototype map',
        Object.create(null) as unknown,
        'style: expected an array of strings or a string, got map',
      ],
      ['Timestamp', new Timestamp(1, 2), 'style: expected an array of strings or a string, got Timestamp'],
      ['GeoPoint', new GeoPoint(1, 2), 'style: expected an array of strings or a string, got GeoPoint'],
      [
        'DocumentReference',
        new DocumentReference('a/b'),
        'style: expected an array of strings or a string, got DocumentReference',
      ],
      ['Date', new Date(0), 'style: expected an array of strings or a string, got Date'],
      ['Buffer', Buffer.from('casual'), 'style: expected an array of strings or a string, got Buffer'],
      ['Uint8Array', new Uint8Array([1, 2]), 'style: expected an array of strings or a string, got Uint8Array'],
      ['array with a number', ['Casual', 3], 'style[1]: expected a string, got number'],
      ['array with null', [null], 'style[0]: expected a string, got null'],
      ['array with a map', ['a', 'b', {x: 1}], 'style[2]: expected a string, got map'],
      ['array with a Timestamp', [new Timestamp(0, 0)], 'style[0]: expected a string, got Timestamp'],
      [
        'nested array',
        ['Casual', ['Formal']],
        'style[1]: expected a string, got array (nested arrays are not supported)',
      ],
      [
        'value too long',
        ['Casual', longValue],
        `style[1]: value is ${MAX_VALUE_LENGTH + 1} characters long (max ${MAX_VALUE_LENGTH})`,
      ],
      [
        'single string too long',
        longValue,
        `style: value is ${MAX_VALUE_LENGTH + 1} characters long (max ${MAX_VALUE_LENGTH})`,
      ],
      [
        'comma piece too long',
        `Casual, ${longValue}`,
        `style (comma-separated value 2): value is ${MAX_VALUE_LENGTH + 1} characters long (max ${MAX_VALUE_LENGTH})`,
      ],
      [
        'too many elements',
        Array(MAX_VALUES_PER_FIELD + 1).fill('Casual'),
        `style: ${MAX_VALUES_PER_FIELD + 1} values (max ${MAX_VALUES_PER_FIELD})`,
      ],
      [
        'too many comma-separated values',
        Array(MAX_VALUES_PER_FIELD + 1)
          .fill('a')
          .join(','),
        `style: ${MAX_VALUES_PER_FIELD + 1} comma-separated values (max ${MAX_VALUES_PER_FIELD})`,
      ],
      ['lone high surrogate', ['Casual\uD83D'], 'style[0]: invalid Unicode (lone UTF-16 surrogate)'],
      ['lone low surrogate', 'x\uDE0Ey', 'style: invalid Unicode (lone UTF-16 surrogate)'],
    ])('%s', (_name, style, reason) => {
      const r = normalizeItem({style, occasion: ['Work']}, vocab)
      expect(r).toEqual({ok: false, field: 'style', reason})
    })

    it('names the failing field, not the first one', () => {
      expect(normalizeItem({style: ['Casual'], occasion: 'Work', mood: 7, season: ['Fall']}, vocab)).toEqual({
        ok: false,
        field: 'mood',
        reason: 'mood: expected an array of strings or a string, got number',
      })
      expect(normalizeItem({season: [false]}, vocab)).toEqual({
        ok: false,
        field: 'season',
        reason: 'season[0]: expected a string, got boolean',
      })
    })

    it('many empty comma pieces are not "too many values"', () => {
      expect(values({style: ','.repeat(200) + 'Casual'}).style).toEqual(['casual'])
    })
  })

  it('maps Fall and Autumn to one season', () => {
    expect(values({season: ['Fall', 'Autumn', 'AUTUMN', 'fall']}).season).toEqual(['fall'])
    expect(values({season: 'Autumn, Winter'}).season).toEqual(['fall', 'winter'])
  })

  it('maps streetwear and smart casual variants', () => {
    expect(values({style: ['Street wear', 'street-wear', 'street_wear', 'StreetWear', 'STREETWEAR']}).style).toEqual([
      'streetwear',
    ])
    expect(values({style: ['smart-casual', 'Smart_Casual', 'SmartCasual', 'Smart Casual']}).style).toEqual([
      'smart casual',
    ])
  })

  it('folds diacritics', () => {
    expect(values({style: ['Bohème', 'Boheme', 'bohemian']}).style).toEqual(['bohemian'])
    const r = ok({style: ['Café Racer']})
    expect(r.values.style).toEqual(['cafe racer'])
    expect(r.unmapped).toEqual([{field: 'style', value: 'cafe racer'}])
  })

  it('keeps first-seen order without duplicates', () => {
    expect(values({mood: ['Cool', 'relaxed', 'COOL', 'Chill', 'Playful', 'cool ']}).mood).toEqual([
      'cool',
      'relaxed',
      'playful',
    ])
    expect(values({occasion: ['Weekend', 'Everyday', 'weekend']}).occasion).toEqual(['weekend', 'everyday'])
  })

  it('keeps and reports unmapped values once per field, folded (NA is a placeholder, not a value)', () => {
    const r = ok({
      style: ['Casual', 'Cyber_Punk', 'cyber-punk', 'NA'],
      occasion: 'Moon Landing, Work',
      mood: ['Cyber Punk'],
      season: ['Summer'],
    })
    expect(r.values).toEqual({
      style: ['casual', 'cyber punk'],
      occasion: ['moon landing', 'work'],
      mood: ['cyber punk'],
      season: ['summer'],
    })
    expect(r.unmapped).toEqual([
      {field: 'style', value: 'cyber punk'},
      {field: 'occasion', value: 'moon landing'},
      {field: 'mood', value: 'cyber punk'},
    ])
    expect(r.placeholders).toEqual([{field: 'style', value: 'na'}])
  })

  it('maps catalogue usage values given as the style string', () => {
    expect(values({style: 'Smart Casual', season: 'Fall'})).toEqual({
      style: ['smart casual'],
      occasion: [],
      mood: [],
      season: ['fall'],
    })
    expect(values({style: ['Sports', 'Ethnic', 'Home', 'Travel', 'Party', 'Formal']}).style).toEqual([
      'sporty',
      'ethnic',
      'loungewear',
      'travel',
      'party',
      'formal',
    ])
  })

  it('never returns empty strings', () => {
    const r = ok({style: ['', ' ', '--'], occasion: ',,', mood: [], season: null})
    expect(r.values).toEqual({style: [], occasion: [], mood: [], season: []})
    expect(r.unmapped).toEqual([])
  })
})

describe('sourceHash', () => {
  const base = {style: ['Casual'], occasion: ['Work'], mood: ['Cool'], season: ['Fall']}

  it('is stable across key order and ignores other fields', () => {
    const reordered = {season: ['Fall'], name: 'x', mood: ['Cool'], occasion: ['Work'], style: ['Casual'], id: 'a'}
    expect(sourceHash(reordered)).toBe(sourceHash(base))
    expect(ok(reordered).sourceHash).toBe(sourceHash(base))
  })

  it('changes when any original field changes', () => {
    const h = sourceHash(base)
    const variants: Record<string, unknown>[] = [
      {...base, style: ['casual']}, // case matters: the original changed
      {...base, style: ['Casual', 'Casual']},
      {...base, style: 'Casual'},
      {...base, occasion: ['Work', 'Party']},
      {...base, mood: []},
      {...base, season: ['Autumn']},
      {...base, season: null},
    ]
    const hashes = variants.map((v) => sourceHash(v))
    for (const x of hashes) expect(x).not.toBe(h)
    expect(new Set(hashes).size).toBe(hashes.length)
  })

  it('treats missing, undefined and null alike', () => {
    expect(sourceHash({style: ['a']})).toBe(sourceHash({style: ['a'], occasion: null, mood: undefined}))
  })

  it('does not depend on the order of keys inside maps', () => {
    expect(sourceHash({style: {a: 1, b: 2}})).toBe(sourceHash({style: {b: 2, a: 1}}))
    expect(sourceHash({style: {a: 1}})).not.toBe(sourceHash({style: {a: 2}}))
  })

  it('never throws on weird input', () => {
    const cyclic: Record<string, unknown> = {a: 1}
    cyclic.self = cyclic
    const throwing = {
      get style(): unknown {
        throw new Error('boom')
      },
    }
    const deep: unknown[] = []
    let cur = deep
    for (let i = 0; i < 1000; i++) {
      const next: unknown[] = []
      cur.push(next)
      cur = next
    }
    const weird: unknown[] = [
      {style: cyclic},
      {style: [cyclic, cyclic]},
      throwing,
      {style: deep},
      {style: BigInt(1), occasion: Symbol('s'), mood: () => 1, season: Number.NaN},
      {
        style: new Timestamp(1, 2),
        occasion: new GeoPoint(3, 4),
        mood: new DocumentReference('items/a'),
        season: Buffer.from('x'),
      },
      {style: new Date(Number.NaN), occasion: new Uint8Array([1])},
      {style: ['\uD800']},
      null,
      undefined,
      'string',
    ]
    for (const w of weird) expect(sourceHash(w as Record<string, unknown>)).toMatch(/^[0-9a-f]{64}$/)
    // and the cycle guard does not leak state between calls
    expect(sourceHash({style: [cyclic, cyclic]})).toBe(sourceHash({style: [cyclic, cyclic]}))
    expect(sourceHash(base)).toBe(sourceHash({...base}))
  })

  it('distinguishes special values by content', () => {
    expect(sourceHash({style: new Timestamp(1, 2)})).not.toBe(sourceHash({style: new Timestamp(1, 3)}))
    expect(sourceHash({style: new DocumentReference('a/b')})).not.toBe(
      sourceHash({style: new DocumentReference('a/c')}),
    )
    expect(sourceHash({style: Buffer.from('a')})).not.toBe(sourceHash({style: Buffer.from('b')}))
  })
})

describe('describeType', () => {
  it.each<[unknown, string]>([
    [null, 'null'],
    [undefined, 'undefined'],
    ['s', 'string'],
    [1, 'number'],
    [[], 'array'],
    [{}, 'map'],
    [new Timestamp(0, 0), 'Timestamp'],
    [Buffer.alloc(1), 'Buffer'],
  ])('%p -> %s', (v, name) => {
    expect(describeType(v)).toBe(name)
  })
})

describe('performance', () => {
  it('normalizes 100k items quickly', () => {
    const items = Array.from({length: 1000}, (_, i) => ({
      style: ['Casual', i % 2 ? 'Street wear' : 'Smart_Casual'],
      occasion: 'Everyday, Weekend',
      mood: ['Relaxed', `Mood ${i % 37}`],
      season: ['Spring', 'Autumn'],
    }))
    const start = process.hrtime.bigint()
    let n = 0
    for (let round = 0; round < 100; round++) for (const it of items) if (normalizeItem(it, vocab).ok) n++
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    expect(n).toBe(100_000)
    expect(ms).toBeLessThan(5000)
  })
})

describe('placeholders: values meaning "nothing" are missing', () => {
  // Every spelling of the issue, in other cases and with what folding removes around it.
  const spellings = [
    'NA',
    'na',
    'Na',
    'N/A',
    'n/a',
    'N / A',
    'n-a',
    'N_A',
    ' none ',
    'None',
    'NONE',
    'null',
    'NULL',
    'Null',
    '-',
    ' - ',
    '--',
    '_',
    'unknown',
    'Unknown',
    'UNKNOWN',
  ]

  it.each(spellings)('%j alone, as an array element or a string, leaves the field empty and is counted', (raw) => {
    for (const style of [[raw], raw]) {
      const r = ok({style})
      expect(r.values.style).toEqual([])
      expect(r.unmapped).toEqual([])
      expect(r.placeholders).toHaveLength(1)
      expect(r.placeholders[0].field).toBe('style')
    }
  })

  it('mixed with real values, keeps the real ones in first-seen order (arrays and comma-separated strings)', () => {
    const r = ok({
      style: ['NA', 'Casual', 'none', 'Cyberpunk'],
      occasion: 'n/a, Work, -',
      mood: 'Unknown,calm',
      season: ['Fall', 'NULL'],
    })
    expect(r.values).toEqual({style: ['casual', 'cyberpunk'], occasion: ['work'], mood: ['calm'], season: ['fall']})
    expect(r.unmapped).toEqual([{field: 'style', value: 'cyberpunk'}])
    expect(r.placeholders).toEqual([
      {field: 'style', value: 'na'},
      {field: 'style', value: 'none'},
      {field: 'occasion', value: 'n/a'},
      {field: 'occasion', value: '-'},
      {field: 'mood', value: 'unknown'},
      {field: 'season', value: 'null'},
    ])
  })

  it('a field of placeholders only is as missing; repeats are listed once per field and spelling', () => {
    const r = ok({style: ['NA', 'na', 'N/A'], occasion: 'none, NONE', mood: '-', season: null})
    expect(r.values).toEqual({style: [], occasion: [], mood: [], season: []})
    expect(r.values).toEqual(ok({}).values)
    expect(r.placeholders).toEqual([
      {field: 'style', value: 'na'},
      {field: 'style', value: 'n/a'},
      {field: 'occasion', value: 'none'},
      {field: 'mood', value: '-'},
    ])
  })

  it('blanks and empty comma parts are dropped as before, not counted as placeholders', () => {
    const r = ok({style: ['', '   ', 'Casual'], occasion: 'Work,, ,', mood: ''})
    expect(r.values).toEqual({style: ['casual'], occasion: ['work'], mood: [], season: []})
    expect(r.placeholders).toEqual([])
  })

  it('words containing a placeholder are values: "Nana", "None Such", "N/A Style", "unknown pleasures"', () => {
    const r = ok({style: ['Nana', 'None Such', 'N/A Style', 'unknown pleasures']})
    expect(r.values.style).toEqual(['nana', 'none such', 'n/a style', 'unknown pleasures'])
    expect(r.placeholders).toEqual([])
  })

  it('the source hash still covers the placeholder as written: editing NA to Casual is a change', () => {
    expect(ok({style: ['NA']}).sourceHash).not.toBe(ok({style: []}).sourceHash)
  })
})
