import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {writeItems} from '../../src/dev/seed-data'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {devArgs, latestFile, readJson, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

/**
 * The Phase 1 loop without hand-editing JSON: unmapped values in the collection (or in a dry
 * run's stats) become a draft taxonomy, typos and variants as aliases of the right term, the
 * rest as new terms; the draft loads, and with it the values are mapped.
 */
const ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined}

describe('wardrobe vocabulary suggest', () => {
  let project: string
  let db: Firestore
  let out: string

  beforeEach(async () => {
    project = uniqueProject('vocab-suggest')
    db = testDb(project)
    out = tmpDir()
    const item = (id: string, style: string, season = 'fall') => ({
      id,
      data: {name: id, style, occasion: 'work', mood: 'calm', season},
    })
    await writeItems(db, 'wardrobe_items', [
      item('a', 'Streetwaer'),
      item('b', 'streetwaer'),
      item('c', 'streetwaer'),
      item('d', 'Quiet Luxury'),
      item('e', 'quiet luxury'),
      item('f', 'casual', 'Indian Summer'),
      item('g', 'NA'),
      item('h', 'n/a'),
    ])
  })
  afterEach(async () => {
    await db.terminate()
  })

  const expected = [
    {field: 'style', value: 'streetwaer', count: 3, proposal: 'alias', term: 'streetwear', similarity: 0.8},
    {field: 'style', value: 'quiet luxury', count: 2, proposal: 'term', term: null, similarity: expect.any(Number)},
    {field: 'season', value: 'indian summer', count: 1, proposal: 'alias', term: 'summer', similarity: 0.5},
    // Values meaning "nothing" are never a term or an alias.
    {field: 'style', value: 'n/a', count: 1, proposal: 'placeholder', term: null, similarity: 0},
    {field: 'style', value: 'na', count: 1, proposal: 'placeholder', term: null, similarity: 0},
  ]

  test('from a scan: a typo becomes an alias, a new style a term, and the draft maps them', async () => {
    const draft = path.join(out, 'draft.json')
    const r = await runCli(['vocabulary', 'suggest', ...devArgs(project, out), '--out', draft, '--json'], {env: ENV})
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({scanned: 8, draft: {file: draft, version: '1.0-draft'}})
    expect(report.suggestions).toEqual(expected)
    const vocabulary = loadVocabulary(draft)
    expect(vocabulary.canonical('style', 'Streetwaer')).toBe('streetwear')
    expect(vocabulary.canonical('style', 'Quiet Luxury')).toBe('quiet luxury')
    expect(vocabulary.canonical('season', 'Indian Summer')).toBe('summer')
    expect(vocabulary.canonical('style', 'NA')).toBeUndefined()
    // Never proposed: the draft holds no placeholder spelling anywhere.
    const draftText = fs.readFileSync(draft, 'utf8').toLowerCase()
    for (const p of ['"na"', '"n/a"']) expect(draftText).not.toContain(p)
  })

  test("from a dry run's stats file, without reading the collection again", async () => {
    const dry = await runCli(['backfill', ...devArgs(project, out), '--dry-run', '--json'], {env: ENV})
    expect(dry.code).toBe(0)
    const stats = latestFile(out, 'backfill_stats')
    const draft = path.join(out, 'draft.json')
    // No emulator named: nothing is read but the file.
    const r = await runCli(['vocabulary', 'suggest', '--from-stats', stats, '--out', draft, '--json'], {
      env: ENV,
      cwd: out,
    })
    expect(r.code).toBe(0)
    // The dry run counted the placeholders (2 items) and listed no value of theirs as unmapped: nothing to propose.
    expect(readJson(stats)).toMatchObject({placeholder: 2})
    expect(JSON.parse(r.stdout)).toMatchObject({
      scanned: null,
      suggestions: expected.filter((s) => s.proposal !== 'placeholder'),
    })
    expect(JSON.parse(fs.readFileSync(draft, 'utf8')).fields.style.streetwear).toContain('streetwaer')
  })
})
