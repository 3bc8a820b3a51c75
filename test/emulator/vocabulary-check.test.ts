import fs from 'node:fs'
import path from 'node:path'
import {Firestore} from 'firebase-admin/firestore'
import {writeItems} from '../../src/dev/seed-data'
import {DEFAULT_TAXONOMY_FILE} from '../../src/domain/vocabulary'
import {devArgs, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

/**
 * `wardrobe vocabulary check` as someone extending the vocabulary uses it: a draft that adds one
 * alias is valid, its difference is that alias, and exactly the items carrying that value would
 * be written differently; nothing is written.
 */
const ENV = {FIRESTORE_EMULATOR_HOST: undefined, WARDROBE_CONFIG: undefined}

function draftWithAlias(dir: string, field: string, term: string, alias: string): string {
  const tax = JSON.parse(fs.readFileSync(DEFAULT_TAXONOMY_FILE, 'utf8'))
  tax.version = '1.0-draft'
  tax.fields[field][term].push(alias)
  const file = path.join(dir, 'draft.json')
  fs.writeFileSync(file, JSON.stringify(tax))
  return file
}

describe('wardrobe vocabulary check', () => {
  let project: string
  let db: Firestore
  let out: string

  beforeEach(async () => {
    project = uniqueProject('vocab-check')
    db = testDb(project)
    out = tmpDir()
    const item = (id: string, style: string) => ({
      id,
      data: {name: id, style, occasion: 'work', mood: 'calm', season: 'fall'},
    })
    await writeItems(db, 'wardrobe_items', [
      item('a', 'snuggly'),
      item('b', 'Snuggly'),
      item('c', 'casual'),
      item('d', 'boho'),
    ])
  })
  afterEach(async () => {
    await db.terminate()
  })

  test('a draft adding one alias: that alias, and the items carrying the value it maps', async () => {
    const file = draftWithAlias(out, 'style', 'loungewear', 'snuggly')
    const before = (await db.collection('wardrobe_items').get()).docs.map((d) => d.updateTime.toMillis())
    const r = await runCli(['vocabulary', 'check', file, ...devArgs(project, out), '--json'], {env: ENV})
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({version: '1.0-draft', identical: false})
    expect(report.fields.style).toEqual({
      termsAdded: [],
      termsRemoved: [],
      aliasesAdded: [{alias: 'snuggly', term: 'loungewear'}],
      aliasesRemoved: [],
      aliasesMoved: [],
    })
    for (const f of ['occasion', 'mood', 'season'])
      expect(report.fields[f]).toEqual({
        termsAdded: [],
        termsRemoved: [],
        aliasesAdded: [],
        aliasesRemoved: [],
        aliasesMoved: [],
      })
    expect(report.impact).toMatchObject({
      scanned: 4,
      changed: 2,
      changedByField: {style: 2, occasion: 0, mood: 0, season: 0},
    })
    expect(report.impact.examples).toEqual([
      {id: 'wardrobe_items/a', field: 'style', before: ['snuggly'], after: ['loungewear']},
      {id: 'wardrobe_items/b', field: 'style', before: ['snuggly'], after: ['loungewear']},
    ])
    // Read only.
    expect((await db.collection('wardrobe_items').get()).docs.map((d) => d.updateTime.toMillis())).toEqual(before)
  })

  test('the human summary names the change and the count', async () => {
    const file = draftWithAlias(out, 'style', 'loungewear', 'snuggly')
    const r = await runCli(['vocabulary', 'check', file, ...devArgs(project, out)], {env: ENV})
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('style: aliases added: snuggly → loungewear')
    expect(r.stdout).toContain('Items in scope that a backfill would write differently: 2 of 4 (style 2)')
  })

  test('--no-scan needs no emulator; --against compares two files', async () => {
    const file = draftWithAlias(out, 'style', 'loungewear', 'snuggly')
    const r = await runCli(['vocabulary', 'check', DEFAULT_TAXONOMY_FILE, '--against', file, '--no-scan', '--json'], {
      env: ENV,
      cwd: out,
    })
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.impact).toBeNull()
    expect(report.fields.style.aliasesRemoved).toEqual([{alias: 'snuggly', term: 'loungewear'}])
  })

  test('an invalid file: exit 2 with what is wrong', async () => {
    const file = path.join(out, 'bad.json')
    fs.writeFileSync(file, JSON.stringify({version: '2', fields: {style: {}}}))
    const r = await runCli(['vocabulary', 'check', file, '--no-scan'], {env: ENV, cwd: out})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: Invalid taxonomy file .*bad\.json: fields\.occasion/)
  })
})
