import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  generateItem,
  generateItems,
  MALFORMED_KINDS,
  readSeedFile,
  SEED_FIELDS,
  SeedFileError,
  WRITABLE_MALFORMED_KINDS,
  type SeedItem,
} from '../../../src/dev/seed-data'

const AUTO_ID = /^[A-Za-z0-9]{20}$/

/** What a normalizer accepts per field: missing, null, a string, or an array of strings (sane sizes). */
function acceptableShape(value: unknown): boolean {
  const okString = (s: string) => s.length <= 200 && !/[\uD800-\uDFFF]/.test(s)
  if (value === undefined || value === null) return true
  if (typeof value === 'string') return okString(value)
  return Array.isArray(value) && value.length <= 50 && value.every((v) => typeof v === 'string' && okString(v))
}

function valuesOf(v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}

async function collect(iterable: AsyncIterable<SeedItem>): Promise<SeedItem[]> {
  const out: SeedItem[] = []
  for await (const item of iterable) out.push(item)
  return out
}

describe('generateItems', () => {
  const items = [...generateItems(2000, {seed: 42})]

  it('is deterministic per seed and per index', () => {
    expect([...generateItems(50, {seed: 42})]).toEqual(items.slice(0, 50))
    expect([...generateItems(30, {seed: 42, startIndex: 100})]).toEqual(items.slice(100, 130))
    expect(generateItem(7, {seed: 42}).item).toEqual(items[7])
    const other = [...generateItems(50, {seed: 43})]
    expect(other.map((i) => i.id)).not.toEqual(items.slice(0, 50).map((i) => i.id))
  })

  it('is lazy', () => {
    const it = generateItems(2 ** 32 - 1)[Symbol.iterator]() // would never return if it were eager
    expect(AUTO_ID.test(it.next().value!.id)).toBe(true)
  })

  it('makes unique auto-like ids spread over the key space', () => {
    const ids = [...generateItems(20_000, {seed: 9})].map((i) => i.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.filter((id) => !AUTO_ID.test(id))).toEqual([])
    const firstChars = new Map<string, number>()
    for (const id of ids) firstChars.set(id[0], (firstChars.get(id[0]) ?? 0) + 1)
    expect(firstChars.size).toBe(62)
    const expected = ids.length / 62
    for (const n of firstChars.values()) {
      expect(n).toBeGreaterThan(expected * 0.7)
      expect(n).toBeLessThan(expected * 1.3)
    }
    // not sorted by generation order
    const sorted = [...ids].sort()
    expect(sorted.slice(0, 100)).not.toEqual(ids.slice(0, 100))
  })

  it('makes realistic items', () => {
    for (const {data} of items.slice(0, 200)) {
      expect(typeof data.name).toBe('string')
      expect((data.name as string).split(' ').length).toBeGreaterThanOrEqual(3)
      expect(typeof data.userId).toBe('string')
      expect(typeof data.brand).toBe('string')
      expect(typeof data.color).toBe('string')
      expect(typeof data.category).toBe('string')
      expect(data.createdAt).toBeInstanceOf(Date)
      expect(typeof data.price).toBe('number')
      expect(Array.isArray(data.tags)).toBe(true)
    }
    const withDetails = items.filter((i) => i.data.details !== undefined)
    expect(withDetails.length).toBeGreaterThan(items.length * 0.4)
    expect(withDetails[0].data.details).toEqual({
      material: expect.any(String),
      size: expect.any(String),
      care: expect.objectContaining({machineWash: expect.any(Boolean)}),
    })
    // several items per user, like a real app
    expect(new Set(items.map((i) => i.data.userId)).size).toBeLessThan(items.length)
  })

  it('has every kind of messy value across 2,000 items', () => {
    const all: string[] = []
    let commaStrings = 0
    let nulls = 0
    let missing = 0
    let duplicates = 0
    for (const {data} of items) {
      for (const field of SEED_FIELDS) {
        const v = data[field]
        if (!(field in data)) missing++
        if (v === null) nulls++
        if (typeof v === 'string' && v.includes(',')) commaStrings++
        if (Array.isArray(v)) {
          const folded = v.filter((x): x is string => typeof x === 'string').map((x) => x.trim().toLowerCase())
          if (new Set(folded).size < folded.length) duplicates++
        }
        all.push(...valuesOf(v))
      }
    }
    const has = (re: RegExp) => all.some((s) => re.test(s))
    expect(has(/^Street-wear$/)).toBe(true)
    expect(has(/^street wear$/)).toBe(true)
    expect(has(/^STREETWEAR$/)).toBe(true)
    expect(has(/^Smart_Casual$/)).toBe(true)
    expect(has(/^smart-casual$/)).toBe(true)
    expect(has(/^\s*Autumn\s*$/)).toBe(true)
    expect(has(/^\s*Fall\s*$/)).toBe(true)
    expect(has(/Bohème/)).toBe(true)
    expect(has(/Décontracté/)).toBe(true)
    expect(has(/^\s+\S|\S\s+$/)).toBe(true) // leading / trailing spaces
    expect(has(/\S {2}\S/)).toBe(true) // doubled inner space
    expect(has(/^(Dark Academia|coastal grandmother|barbiecore|Normcore|Graduation|Harmattan)$/)).toBe(true)
    expect(commaStrings).toBeGreaterThan(50)
    expect(nulls).toBeGreaterThan(50)
    expect(missing).toBeGreaterThan(50)
    expect(duplicates).toBeGreaterThan(20)
  })

  it('honours the malformed rate, and only malformed items have unacceptable shapes', () => {
    const count = 10_000
    const kinds = new Set<string>()
    const wrong: number[] = []
    let malformed = 0
    for (let i = 0; i < count; i++) {
      const g = generateItem(i, {seed: 5, malformedRate: 0.1})
      const acceptable = SEED_FIELDS.every((f) => acceptableShape(g.item.data[f]))
      if (g.malformed) {
        malformed++
        kinds.add(g.malformed.kind)
        if (acceptableShape(g.item.data[g.malformed.field])) wrong.push(i)
      } else if (!acceptable) wrong.push(i)
    }
    expect(wrong).toEqual([])
    expect(malformed / count).toBeGreaterThan(0.09)
    expect(malformed / count).toBeLessThan(0.11)
    // by default only what Firestore can store: no lone surrogates
    expect([...kinds].sort()).toEqual([...WRITABLE_MALFORMED_KINDS].sort())
    expect(WRITABLE_MALFORMED_KINDS).not.toContain('lone-surrogate')
    expect(generateItem(0, {seed: 5, malformedRate: 1, malformedKinds: ['lone-surrogate']}).malformed?.kind).toBe(
      'lone-surrogate',
    )

    let defaults = 0
    for (let i = 0; i < count; i++) if (generateItem(i, {seed: 5}).malformed) defaults++
    expect(defaults / count).toBeGreaterThan(0.015)
    expect(defaults / count).toBeLessThan(0.025)
    expect(
      [...generateItems(2000, {seed: 5, malformedRate: 0})].every(({data}) =>
        SEED_FIELDS.every((f) => acceptableShape(data[f])),
      ),
    ).toBe(true)
  })

  it('produces each malformed kind as specified', () => {
    const byKind = new Map<string, unknown>()
    for (let i = 0; byKind.size < MALFORMED_KINDS.length; i++) {
      const g = generateItem(i, {seed: 3, malformedRate: 1, malformedKinds: MALFORMED_KINDS})
      if (g.malformed && !byKind.has(g.malformed.kind)) byKind.set(g.malformed.kind, g.item.data[g.malformed.field])
    }
    expect(typeof byKind.get('number')).toBe('number')
    expect(typeof byKind.get('boolean')).toBe('boolean')
    expect(byKind.get('map')).toEqual(expect.objectContaining({primary: expect.any(String)}))
    expect((byKind.get('array-with-number') as unknown[]).some((v) => typeof v === 'number')).toBe(true)
    expect((byKind.get('array-with-map') as unknown[]).some((v) => typeof v === 'object' && v !== null)).toBe(true)
    const long = byKind.get('long-string') as string
    expect(long).toHaveLength(500)
    expect(long).not.toMatch(/[\s,]/)
    expect((byKind.get('lone-surrogate') as string[]).join('')).toContain('\uD800')
    expect(byKind.get('oversized-array')).toHaveLength(200)
  })

  it('rejects bad arguments', () => {
    expect(() => [...generateItems(-1)]).toThrow(RangeError)
    expect(() => [...generateItems(1.5)]).toThrow(RangeError)
    expect(() => generateItem(0, {malformedRate: 2})).toThrow(RangeError)
  })
})

describe('readSeedFile', () => {
  let dir: string
  const write = (name: string, text: string) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, text)
    return file
  }
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-data-test-'))
  })
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}))

  it('reads a JSON array and {items: [...]}', async () => {
    const records = [
      {id: 'a1', name: 'Blue Jeans', style: ['Casual', 'Streetwear'], price: 49.9, details: {size: 'M'}},
      {name: 'Red Dress', season: 'Summer'},
    ]
    const plain = await collect(readSeedFile(write('a.json', JSON.stringify(records, null, 2))))
    expect(plain[0]).toEqual({
      id: 'a1',
      data: {name: 'Blue Jeans', style: ['Casual', 'Streetwear'], price: 49.9, details: {size: 'M'}},
    })
    expect(plain[1].id).toMatch(AUTO_ID)
    expect(plain[1].data).toEqual({name: 'Red Dress', season: 'Summer'})
    const wrapped = await collect(readSeedFile(write('b.JSON', JSON.stringify({items: records}))))
    expect(wrapped).toEqual(plain) // same content, same generated ids
  })

  it('names file, line and problem for bad JSON', async () => {
    const bad = write('bad.json', '[\n  {"name": "a"},\n  {"name": "b",}\n]\n')
    await expect(collect(readSeedFile(bad))).rejects.toThrow(`${bad}:3: invalid JSON`)
    const trailing = write('trailing.json', '[\n  {"name": "a"},\n  3\n]')
    await expect(collect(readSeedFile(trailing))).rejects.toThrow(
      `${trailing}:3: item 2 must be an object, found a number`,
    )
    const wrappedBad = write('wrapped.json', '{"meta": [1, 2],\n "items": [\n  {"id": "x"},\n\n  {"id": "x"}]}')
    await expect(collect(readSeedFile(wrappedBad))).rejects.toThrow(`${wrappedBad}:5: item 2: duplicate id "x"`)
    const notArray = write('obj.json', '{"things": []}')
    await expect(collect(readSeedFile(notArray))).rejects.toThrow(/obj\.json:1: expected an array of items/)
    const surrogate = write('surrogate.json', '[\n{"a": 1},\n{"style": ["ok", "bad\\ud800"]}\n]')
    await expect(collect(readSeedFile(surrogate))).rejects.toThrow(
      `${surrogate}:3: item 2: style[1] holds a lone UTF-16 surrogate`,
    )
    const token = write('token.json', '[\n{"a": 1},\n{"a": tru}\n]')
    const err = await collect(readSeedFile(token)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SeedFileError)
    expect((err as SeedFileError).line).toBe(3)
    expect((err as Error).message).not.toContain('\n')
  })

  it('reads NDJSON / JSONL, ignoring blank lines', async () => {
    const file = write(
      'c.ndjson',
      '{"id": "n1", "name": "Coat", "mood": ["Cozy"]}\r\n\n   \n{"name": "Hat", "style": "Casual, Sporty"}\n',
    )
    const items = await collect(readSeedFile(file))
    expect(items).toHaveLength(2)
    expect(items[0]).toEqual({id: 'n1', data: {name: 'Coat', mood: ['Cozy']}})
    expect(items[1].data).toEqual({name: 'Hat', style: 'Casual, Sporty'})
    expect(items[1].id).toMatch(AUTO_ID)
    const jsonl = write('c.jsonl', '{"id": "j1"}\n')
    expect(await collect(readSeedFile(jsonl))).toEqual([{id: 'j1', data: {}}])
  })

  it('names the line of a bad NDJSON line', async () => {
    const file = write('bad.ndjson', '{"name": "ok"}\n\n{"name": "broken"\n{"name": "never read"}\n')
    const err = await collect(readSeedFile(file)).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: invalid JSON: .+`),
    )
    expect((err as Error).message).not.toContain('\n')
    const notObject = write('arr.ndjson', '{"a": 1}\n[1, 2]\n')
    await expect(collect(readSeedFile(notObject))).rejects.toThrow(
      `${notObject}:2: expected a JSON object, found an array`,
    )
    const badId = write('id.ndjson', '{"id": "a/b"}\n')
    await expect(collect(readSeedFile(badId))).rejects.toThrow(`${badId}:1: id "a/b" contains "/"`)
  })

  it('reads CSV: quotes, commas and newlines in quotes, escaped quotes, lists, empty cells', async () => {
    const file = write(
      'd.csv',
      [
        '\uFEFFid,name,price,style,occasion,mood,season,notes,',
        'c1,"Blue Jeans, Slim",049.90,Casual|Street-wear,Everyday; Weekend,,Fall,"He said ""nice""",',
        'c2,Red Dress,120,"Bohème;Vintage",Party,Elegant,"Spring | Summer","line one',
        'line two",',
        ',Plain Tee, 5 ,casual,,,,"quoted",',
        '',
      ].join('\r\n'),
    )
    const items = await collect(readSeedFile(file))
    expect(items).toHaveLength(3)
    expect(items[0]).toEqual({
      id: 'c1',
      data: {
        name: 'Blue Jeans, Slim',
        price: '049.90',
        style: ['Casual', 'Street-wear'],
        occasion: ['Everyday', 'Weekend'],
        season: ['Fall'],
        notes: 'He said "nice"',
      },
    })
    expect(items[1]).toEqual({
      id: 'c2',
      data: {
        name: 'Red Dress',
        price: '120',
        style: ['Bohème', 'Vintage'],
        occasion: ['Party'],
        mood: ['Elegant'],
        season: ['Spring', 'Summer'],
        notes: 'line one\r\nline two',
      },
    })
    expect(items[2].id).toMatch(AUTO_ID)
    expect(items[2].data).toEqual({name: 'Plain Tee', price: ' 5 ', style: ['casual'], notes: 'quoted'})
    // the same file gives the same ids
    expect((await collect(readSeedFile(file))).map((i) => i.id)).toEqual(items.map((i) => i.id))
  })

  it('names file, line and problem for bad CSV', async () => {
    const cols = write('cols.csv', 'id,name,style\na,Jeans,Casual\n"b","multi\nline",Casual\nc,Shirt\n')
    await expect(collect(readSeedFile(cols))).rejects.toThrow(
      `${cols}:5: expected 3 fields (as in the header row), found 2`,
    )
    const stray = write('stray.csv', 'name,style\nJeans,Casual\n5" Heels,Formal\n')
    await expect(collect(readSeedFile(stray))).rejects.toThrow(`${stray}:3: unexpected '"' inside an unquoted field`)
    // RFC 4180: nothing outside a quoted field's quotes (an unquoted cell keeps its spaces, so they cannot be trimmed silently)
    const spaced = write('spaced.csv', 'name,notes\nJeans, "soft"\n')
    await expect(collect(readSeedFile(spaced))).rejects.toThrow(`${spaced}:2: unexpected '"' inside an unquoted field`)
    const after = write('after.csv', 'name,style\n"Jeans"x,Casual\n')
    await expect(collect(readSeedFile(after))).rejects.toThrow(
      `${after}:2: unexpected character "x" after a closing quote`,
    )
    const open = write('open.csv', 'name,style\nJeans,Casual\n"Shirt,Formal\nmore\n')
    await expect(collect(readSeedFile(open))).rejects.toThrow(`${open}:3: unterminated quoted field`)
    const dup = write('dup.csv', 'id,name\nx,a\nx,b\n')
    await expect(collect(readSeedFile(dup))).rejects.toThrow(`${dup}:3: duplicate id "x"`)
    const header = write('header.csv', 'name,name\n')
    await expect(collect(readSeedFile(header))).rejects.toThrow(`${header}:1: duplicate column "name"`)
    const empty = write('empty.csv', '')
    await expect(collect(readSeedFile(empty))).rejects.toThrow(`${empty}:1: empty CSV file`)
  })

  it('rejects unknown extensions, naming the supported ones', () => {
    expect(() => readSeedFile('items.txt')).toThrow(/items\.txt.*\.json, \.ndjson, \.jsonl, \.csv/)
  })
})
