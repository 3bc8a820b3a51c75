import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {UsageError} from '../../../src/errors'
import {isCurrent} from '../../../src/domain/normalized'
import {
  DEFAULT_TAXONOMY_FILE,
  NORMALIZED_FIELDS,
  Taxonomy,
  TaxonomySchema,
  Vocabulary,
  VocabularyError,
  foldValue,
  isPlaceholder,
  loadVocabulary,
  lookupKey,
  parseTaxonomy,
} from '../../../src/domain/vocabulary'

const vocab = loadVocabulary()

function minimal(): Taxonomy {
  return {
    version: '2.0',
    fields: {
      style: {casual: ['everyday casual'], 'smart casual': []},
      occasion: {work: ['office']},
      mood: {cool: []},
      season: {fall: ['autumn'], winter: []},
    },
  }
}

/** The one-line error parseTaxonomy gives for a taxonomy object. */
function problem(tax: unknown): string {
  try {
    parseTaxonomy(tax, 'test.json')
  } catch (error) {
    expect(error).toBeInstanceOf(VocabularyError)
    return (error as Error).message
  }
  throw new Error('expected a VocabularyError')
}

describe('foldValue', () => {
  it.each([
    ['Casual', 'casual'],
    ['  STREETWEAR  ', 'streetwear'],
    ['Street wear', 'street wear'],
    ['street-wear', 'street wear'],
    ['street_wear', 'street wear'],
    ['Smart  _-  Casual', 'smart casual'],
    ['smart\tcasual\n', 'smart casual'],
    ['-casual_', 'casual'],
    ['Bohème', 'boheme'],
    ['Crème Brûlée', 'creme brulee'],
    ['ＣＡＳＵＡＬ', 'casual'], // full-width letters (NFKD)
    ['smart\u00a0casual', 'smart casual'], // no-break space
    ['smart\u2013casual', 'smart casual'], // en dash
    ['', ''],
    ['  _-  ', ''],
  ])('%j -> %j', (raw, folded) => {
    expect(foldValue(raw)).toBe(folded)
  })

  it('lookupKey removes every space', () => {
    for (const v of ['Street wear', 'street-wear', 'street_wear', 'StreetWear', 'STREETWEAR', ' street - wear ']) {
      expect(lookupKey(v)).toBe('streetwear')
    }
  })
})

describe('shipped taxonomy', () => {
  it('is version 1.0 and covers the four fields', () => {
    expect(vocab.version).toBe('1.0')
    expect(NORMALIZED_FIELDS).toEqual(['style', 'occasion', 'mood', 'season'])
    for (const field of NORMALIZED_FIELDS) {
      const terms = vocab.terms(field)
      expect(terms.length).toBeGreaterThanOrEqual(field === 'season' ? 5 : 15)
      for (const t of terms) {
        expect(t).toBe(foldValue(t))
        expect(vocab.isCanonical(field, t)).toBe(true)
        expect(vocab.canonical(field, t)).toBe(t) // canonical terms are their own aliases
      }
    }
    expect(vocab.terms('season')).toEqual(expect.arrayContaining(['spring', 'summer', 'fall', 'winter', 'all season']))
    expect(vocab.terms('style')).toEqual(expect.arrayContaining(['streetwear', 'smart casual']))
  })

  it('file validates against the schema', () => {
    const json: unknown = JSON.parse(fs.readFileSync(DEFAULT_TAXONOMY_FILE, 'utf8'))
    expect(TaxonomySchema.safeParse(json).success).toBe(true)
  })

  it('maps Fall and Autumn to one season', () => {
    for (const v of ['Fall', 'fall', 'FALL', 'Autumn', 'autumn', ' AUTUMN '])
      expect(vocab.canonical('season', v)).toBe('fall')
    expect(vocab.isCanonical('season', 'autumn')).toBe(false)
  })

  it('maps streetwear and smart casual variants', () => {
    for (const v of [
      'Streetwear',
      'Street wear',
      'street-wear',
      'street_wear',
      'StreetWear',
      'STREETWEAR',
      'Street Wear',
    ]) {
      expect(vocab.canonical('style', v)).toBe('streetwear')
    }
    for (const v of ['Smart Casual', 'smart-casual', 'Smart_Casual', 'SmartCasual', 'SMART CASUAL', 'smart  casual']) {
      expect(vocab.canonical('style', v)).toBe('smart casual')
    }
  })

  it('maps the real catalogue usage values (into style) and seasons', () => {
    const usage: Record<string, string> = {
      Casual: 'casual',
      Sports: 'sporty',
      Ethnic: 'ethnic',
      Formal: 'formal',
      'Smart Casual': 'smart casual',
      Party: 'party',
      Travel: 'travel',
      Home: 'loungewear',
    }
    for (const [raw, term] of Object.entries(usage)) expect(vocab.canonical('style', raw)).toBe(term)
    const seasons: Record<string, string> = {Summer: 'summer', Fall: 'fall', Winter: 'winter', Spring: 'spring'}
    for (const [raw, term] of Object.entries(seasons)) expect(vocab.canonical('season', raw)).toBe(term)
  })

  it('maps diacritics and aliases, and is per field', () => {
    expect(vocab.canonical('style', 'Bohème')).toBe('bohemian')
    expect(vocab.canonical('style', 'boho')).toBe('bohemian')
    expect(vocab.canonical('mood', 'Cosy')).toBe('cozy')
    expect(vocab.canonical('occasion', 'Date Night')).toBe('date night')
    expect(vocab.canonical('occasion', 'date-night')).toBe('date night')
    expect(vocab.canonical('style', 'Everyday')).toBeUndefined() // an occasion, not a style
    expect(vocab.canonical('style', 'definitely-not-a-style')).toBeUndefined()
  })

  it('resolve gives the folded form for unknown values and is stable when repeated', () => {
    expect(vocab.resolve('style', '  Neo_Tokyo ')).toEqual({value: 'neo tokyo', mapped: false})
    expect(vocab.resolve('style', '  Neo_Tokyo ')).toEqual({value: 'neo tokyo', mapped: false})
    expect(vocab.resolve('style', 'Street-Wear')).toEqual({value: 'streetwear', mapped: true})
  })

  it('resolve flags a placeholder (never mapped, its folded form kept for reports); isPlaceholder agrees', () => {
    expect(vocab.resolve('style', ' N/A ')).toEqual({value: 'n/a', mapped: false, placeholder: true})
    expect(vocab.resolve('season', '-')).toEqual({value: '', mapped: false, placeholder: true})
    expect(vocab.resolve('style', '')).toEqual({value: '', mapped: false})
    expect(vocab.canonical('style', 'NA')).toBeUndefined()
    for (const raw of ['NA', 'n-a', 'N/A', 'None', 'null', '-', '—', '__', 'UNKNOWN'])
      expect({raw, p: isPlaceholder(raw)}).toEqual({raw, p: true})
    for (const raw of ['', '   ', 'nan', 'nah', 'n.a.', 'none such', 'casual'])
      expect({raw, p: isPlaceholder(raw)}).toEqual({raw, p: false})
  })

  it('terms() returns a copy', () => {
    const t = vocab.terms('mood')
    t.push('mutated')
    expect(vocab.terms('mood')).not.toContain('mutated')
  })
})

describe('taxonomy validation', () => {
  it('accepts a minimal valid taxonomy', () => {
    const v = new Vocabulary(minimal())
    expect(v.version).toBe('2.0')
    expect(v.canonical('season', 'Autumn')).toBe('fall')
    expect(v.canonical('style', 'SmartCasual')).toBe('smart casual')
  })

  it('rejects an alias that maps to two terms, naming alias, field and both terms', () => {
    const tax = minimal()
    tax.fields.season.winter = ['Autumn']
    const msg = problem(tax)
    expect(msg).toContain('Autumn')
    expect(msg).toContain('"season"')
    expect(msg).toContain('"fall"')
    expect(msg).toContain('"winter"')
    expect(msg).toContain('test.json')
    expect(msg).not.toContain('\n')
  })

  it('rejects aliases that only collide after folding', () => {
    const tax = minimal()
    tax.fields.style.casual = ['Smart-Casual']
    const msg = problem(tax)
    expect(msg).toMatch(
      /alias "Smart-Casual" maps to two different terms in field "style": "smart casual" and "casual"/,
    )
  })

  it('rejects canonical terms whose lookup keys collide', () => {
    const tax = minimal()
    tax.fields.style = {streetwear: [], 'street wear': []}
    expect(problem(tax)).toMatch(/"streetwear" and "street wear"/)
  })

  it('allows the same alias twice for the same term', () => {
    const tax = minimal()
    tax.fields.season.fall = ['autumn', 'Autumn', 'fall']
    expect(() => parseTaxonomy(tax, 'x')).not.toThrow()
  })

  it('rejects an uppercase or unfolded canonical term', () => {
    const tax = minimal()
    ;(tax.fields.style as Record<string, string[]>).Casual = []
    expect(problem(tax)).toMatch(
      /fields\.style\.Casual: canonical term "Casual" must be lowercase and folded \(write it as "casual"\)/,
    )
    const tax2 = minimal()
    ;(tax2.fields.style as Record<string, string[]>)['smart-casual'] = []
    expect(problem(tax2)).toMatch(/canonical term "smart-casual" must be lowercase and folded/)
  })

  it('rejects a missing field', () => {
    const tax = minimal() as unknown as {fields: Record<string, unknown>}
    delete tax.fields.mood
    expect(problem(tax)).toMatch(/fields\.mood: field "mood" is required/)
  })

  it('rejects an unknown field, bad version and bad alias lists', () => {
    const extra = minimal() as unknown as {fields: Record<string, unknown>}
    extra.fields.seasons = {}
    expect(problem(extra)).toMatch(/seasons/)
    expect(problem({...minimal(), version: ''})).toMatch(/version: version must be a non-empty string/)
    expect(problem({...minimal(), version: 1})).toMatch(/version: version must be a string/)
    const badAliases = minimal() as unknown as {fields: {style: Record<string, unknown>}}
    badAliases.fields.style.casual = 'everyday'
    expect(problem(badAliases)).toMatch(/fields\.style\.casual: aliases must be an array of strings/)
    expect(problem([])).toMatch(/test\.json/)
  })

  it('rejects an alias that folds to nothing', () => {
    const tax = minimal()
    tax.fields.mood.cool = [' - ']
    expect(problem(tax)).toMatch(/empty after folding/)
  })

  it.each([
    ['style', 'casual', 'N/A'],
    ['mood', 'calm', 'none'],
    ['season', 'fall', 'Unknown'],
    ['occasion', 'work', 'NULL'],
  ] as const)(
    'rejects a placeholder as an alias (%s: %s ← %j) or as a term: it means "nothing"',
    (field, term, alias) => {
      const tax = minimal()
      ;(tax.fields[field] as Record<string, string[]>)[term] = [alias]
      expect(problem(tax)).toMatch(/means "nothing" \(a placeholder, treated as missing\)/)
      const asTerm = minimal()
      ;(asTerm.fields[field] as Record<string, string[]>).na = []
      expect(problem(asTerm)).toMatch(/"na" means "nothing"/)
    },
  )

  it('the Vocabulary constructor validates too', () => {
    const tax = minimal()
    tax.fields.season.winter = ['autumn']
    expect(() => new Vocabulary(tax)).toThrow(VocabularyError)
  })
})

describe('loadVocabulary', () => {
  let dir: string
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wardrobe-vocab-'))
  })
  afterAll(() => {
    fs.rmSync(dir, {recursive: true, force: true})
  })

  it('loads the shipped default', () => {
    expect(loadVocabulary().version).toBe('1.0')
    expect(path.basename(DEFAULT_TAXONOMY_FILE)).toBe('default.json')
  })

  it('loads a custom file', () => {
    const file = path.join(dir, 'custom.json')
    const tax = minimal()
    tax.fields.style.streetwear = ['urban']
    fs.writeFileSync(file, '\ufeff' + JSON.stringify(tax))
    const v = loadVocabulary(file)
    expect(v.version).toBe('2.0')
    expect(v.canonical('style', 'Urban')).toBe('streetwear')
    expect(v.terms('style')).toEqual(['casual', 'smart casual', 'streetwear'])
  })

  it('a missing file throws a VocabularyError naming the file and the fix', () => {
    const file = path.join(dir, 'nope.json')
    expect(() => loadVocabulary(file)).toThrow(VocabularyError)
    expect(() => loadVocabulary(file)).toThrow(new RegExp(`${file.replace(/[.\\]/g, '\\$&')} not found.*--taxonomy`))
  })

  it('bad JSON throws a one-line VocabularyError', () => {
    const file = path.join(dir, 'bad.json')
    fs.writeFileSync(file, '{"version": "1.0",\n "fields": ')
    let err: unknown
    try {
      loadVocabulary(file)
    } catch (error) {
      err = error
    }
    expect(err).toBeInstanceOf(VocabularyError)
    expect(err).toBeInstanceOf(UsageError) // exit code 2
    const msg = (err as Error).message
    expect(msg).toContain(file)
    expect(msg).toContain('not valid JSON')
    expect(msg).not.toMatch(/\n/)
  })

  it('a schema error names the file, the path and the problem', () => {
    const file = path.join(dir, 'invalid.json')
    const tax = minimal()
    tax.fields.occasion.home = ['Office']
    fs.writeFileSync(file, JSON.stringify(tax, null, 2))
    expect(() => loadVocabulary(file)).toThrow(
      /Invalid taxonomy file .*invalid\.json: fields\.occasion\.home\[0\]: alias "Office" maps to two different terms in field "occasion": "work" and "home".*Fix the file/,
    )
  })

  it('a directory is reported as unreadable', () => {
    expect(() => loadVocabulary(dir)).toThrow(/cannot be read \(EISDIR\)/)
  })
})

describe('content hash and "current"', () => {
  const reversed = (t: Taxonomy): Taxonomy => ({
    version: '9.9',
    fields: Object.fromEntries(
      NORMALIZED_FIELDS.map((f) => [
        f,
        Object.fromEntries(
          Object.entries(t.fields[f])
            .reverse()
            .map(([term, aliases]) => [term, [...aliases].reverse()]),
        ),
      ]),
    ) as Taxonomy['fields'],
  })

  it('is a short hex digest of what the vocabulary maps, not of how the file orders it or of its version', () => {
    const tax = minimal()
    expect(new Vocabulary(tax).hash).toMatch(/^[0-9a-f]{16}$/)
    expect(new Vocabulary(reversed(tax)).hash).toBe(new Vocabulary(tax).hash)
    expect(new Vocabulary(tax).hash).not.toBe(vocab.hash)
  })

  it('changes with any edit that maps a value differently, the version left as it is', () => {
    const tax = minimal()
    const edits: Taxonomy[] = [
      {...tax, fields: {...tax.fields, style: {...tax.fields.style, casual: ['everyday casual', 'laid back']}}},
      {...tax, fields: {...tax.fields, season: {autumn: ['fall'], winter: []}}},
      {...tax, fields: {...tax.fields, mood: {cool: [], calm: []}}},
    ]
    const hashes = new Set([tax, ...edits].map((t) => new Vocabulary(t).hash))
    expect(hashes.size).toBe(4)
  })

  it('isCurrent: the same version and the same content hash; a value from before taxonomy_hash is not current', () => {
    const identity = {version: vocab.version, hash: vocab.hash}
    expect(isCurrent({normalized_version: vocab.version, taxonomy_hash: vocab.hash}, identity)).toBe(true)
    expect(isCurrent({normalized_version: vocab.version}, identity)).toBe(false)
    expect(isCurrent({normalized_version: vocab.version, taxonomy_hash: 'other'}, identity)).toBe(false)
    expect(isCurrent({normalized_version: '0.9', taxonomy_hash: vocab.hash}, identity)).toBe(false)
    expect(isCurrent('not a map', identity)).toBe(false)
  })
})
