import fs from 'node:fs'
import path from 'node:path'
import {FieldValue, Firestore, Timestamp} from 'firebase-admin/firestore'
import {parseRate} from '../../src/commands/validate'
import {planBackfill} from '../../src/services/backfill'
import {UsageError} from '../../src/errors'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {checkItem, runValidation, ValidationReport, ValidationReportSchema} from '../../src/services/validate'
import {loadVocabulary, Vocabulary} from '../../src/domain/vocabulary'
import {devArgs, latestFile, readJson, runCli, testDb, tmpDir, uniqueProject} from '../support/harness'

const COL = 'wardrobe_items'

/** Items that carry a `normalized` map, in id order. */
async function normalizedItems(
  db: Firestore,
  collection = COL,
): Promise<{id: string; data: FirebaseFirestore.DocumentData}[]> {
  const snap = await db.collection(collection).where('normalized.normalized_version', '==', '1.0').get()
  return snap.docs.map((d) => ({id: d.id, data: d.data()})).sort((a, b) => (a.id < b.id ? -1 : 1))
}

async function seedAndBackfill(
  db: Firestore,
  project: string,
  out: string,
  count: number,
  seed: number,
): Promise<void> {
  await writeItems(db, COL, generateItems(count, {seed}))
  const backfill = await runCli(['backfill', ...devArgs(project, out), '--json'])
  expect([0, 3]).toContain(backfill.code) // 3: the generator's malformed items, left without normalized
  expect(JSON.parse(backfill.stdout).status).toBe('completed')
}

function parseReport(stdout: string): ValidationReport {
  return ValidationReportSchema.parse(JSON.parse(stdout))
}

describe('wardrobe validate (real emulator)', () => {
  const project = uniqueProject('validate')
  const out = tmpDir()
  const args = devArgs(project, out)
  let db: Firestore
  let items: {id: string; data: FirebaseFirestore.DocumentData}[]
  // id → [check, reason pattern] for each deliberately damaged item
  const damaged = new Map<string, [string, RegExp]>()

  beforeAll(async () => {
    db = testDb(project)
    await seedAndBackfill(db, project, out, 2000, 11)
    items = await normalizedItems(db)
    expect(items.length).toBeGreaterThan(1900)
  })
  afterAll(async () => {
    await db.terminate()
  })

  it('passes clean data after a backfill: --all checks every normalized item, zero failures, exit 0', async () => {
    const r = await runCli(['validate', ...args, '--all', '--json'])
    expect(r.code).toBe(0)
    const report = parseReport(r.stdout)
    expect(report).toMatchObject({
      status: 'passed',
      mode: 'all',
      checked: items.length,
      failed: 0,
      failuresTotal: 0,
      failures: [],
      failureRate: 0,
    })
    expect(report.checks.semantic.checked).toBe(200) // bounded under --all
    expect(report.checks.semantic.failed).toBe(0)
    expect(report.metrics.versions).toEqual([{version: '1.0', count: items.length}])
    // The generator's unmapped values are warnings, not failures.
    expect(report.metrics.unmapped.items).toBeGreaterThan(0)
    expect(report.warningsTotal).toBe(report.checks.canonical.warned)
    expect(report.warnings[0].reasons[0].reason).toMatch(/not in vocabulary 1\.0 \(unmapped\)/)
  })

  it('samples 100 items by default, spread over the whole key space, and prints a summary table', async () => {
    const r = await runCli(['validate', ...args])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/random sample of 100 \(key-space/)
    expect(r.stdout).toMatch(/^check\s+failed\s+notes$/m)
    expect(r.stdout).toMatch(/^semantic\s+0\s+array-contains queries for every checked item/m)
    expect(r.stdout).toMatch(/^style\s+\d+\.\d\d%/m)
    expect(r.stdout).toMatch(/PASSED: 0 of 100 items fail/)
    expect(fs.readdirSync(out).filter((f) => f.startsWith('validation_report_'))).toEqual([]) // only with --save-report
  })

  it('reports exactly the damaged items, each with the right reason, and exits 4', async () => {
    const col = db.collection(COL)
    const pick = (n: number, ok: (d: FirebaseFirestore.DocumentData) => boolean) => {
      const chosen = items
        .filter((i) => !damaged.has(i.id) && ok(i.data))
        .filter((_, k) => k % 37 === 5)
        .slice(0, n)
      expect(chosen).toHaveLength(n)
      return chosen
    }
    for (const {id, data} of pick(3, (d) => d.normalized.style.length > 0)) {
      const style = [...data.normalized.style]
      style[0] = style[0][0].toUpperCase() + style[0].slice(1)
      await col.doc(id).update({'normalized.style': style})
      damaged.set(id, ['canonical', /^style\[0\] ".*" is not lowercase$/])
    }
    for (const {id} of pick(3, () => true)) {
      await col.doc(id).update({'normalized.occasion': 'everyday'})
      damaged.set(id, ['structure', /^normalized\.occasion: expected an array of strings, got string$/])
    }
    for (const {id} of pick(3, () => true)) {
      await col.doc(id).update({'normalized.normalized_at': FieldValue.delete()})
      damaged.set(id, ['structure', /^normalized\.normalized_at is missing$/])
    }
    for (const {id} of pick(3, () => true)) {
      await col.doc(id).update({season: ['Monsoon Deluxe']}) // edited by the app after normalization
      damaged.set(id, [
        'consistency',
        /^stale: original fields changed after normalization \(normalized\.season is .* but the originals give \["monsoon deluxe"\]\)$/,
      ])
    }
    for (const {id, data} of pick(3, (d) => d.normalized.mood.length > 0)) {
      await col.doc(id).update({'normalized.mood': [data.normalized.mood[0], ...data.normalized.mood]})
      damaged.set(id, ['canonical', /^mood has duplicate value ".*"$/])
    }
    expect(damaged.size).toBe(15)

    const r = await runCli(['validate', ...args, '--all', '--json', '--save-report'])
    expect(r.code).toBe(4)
    const report = parseReport(r.stdout)
    expect(report.status).toBe('failed')
    expect(report.checked).toBe(items.length)
    expect(report.failed).toBe(15)
    expect(report.failuresTotal).toBe(15)
    expect(report.failureRate).toBeCloseTo(15 / items.length, 6)
    expect(new Set(report.failures.map((f) => f.id))).toEqual(new Set(damaged.keys()))
    for (const f of report.failures) {
      const [check, pattern] = damaged.get(f.id)!
      expect(f.reasons.some((reason) => reason.check === check && pattern.test(reason.reason))).toBe(true)
    }
    expect(report.checks.structure.failed).toBe(6)
    expect(report.checks.consistency.failed).toBeGreaterThanOrEqual(3) // stale items, plus edited arrays that no longer match their originals
    expect(report.metrics.fields.occasion.invalidItems).toBe(3)

    // The report file: the seed's name, the same object as --json, every failing id with its reasons.
    const file = latestFile(out, 'validation_report_')
    expect(path.basename(file)).toMatch(/^validation_report_\d{8}_\d{6}\.json$/)
    const saved = readJson(file)
    expect(saved).toEqual(JSON.parse(r.stdout))
    expect(saved.failures.map((f: {id: string}) => f.id).sort()).toEqual([...damaged.keys()].sort())
    expect(saved.metrics.fields.style).toEqual(
      expect.objectContaining({emptyShare: expect.any(Number), valuesPerItem: expect.any(Number)}),
    )
  })

  it('--max-failure-rate above the failure rate exits 0, and the table lists the failing items', async () => {
    const r = await runCli(['validate', ...args, '--all', '--max-failure-rate', '0.5'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/PASSED: 15 of \d+ items fail/)
    for (const id of damaged.keys()) expect(r.stdout).toContain(id)
    expect(r.stdout).toMatch(/^structure\s+6\s/m)
  })

  it('refuses bad flag values with exit 2 and a one-line reason', async () => {
    for (const bad of ['abc', '1.5', '-0.1', '']) {
      const r = await runCli(['validate', ...args, '--max-failure-rate', bad])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--max-failure-rate')
      expect(r.stdout).toBe('')
    }
    const json = await runCli(['validate', ...args, '--max-failure-rate', '2', '--json'])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout).error.message).toMatch(/--max-failure-rate "2" is not a rate between 0 and 1/)
    const both = await runCli(['validate', ...args, '--all', '--sample-size', '10'])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/cannot also be provided/)
  })
})

describe('wardrobe validate --sample-size (real emulator)', () => {
  const project = uniqueProject('validate-sample')
  const out = tmpDir()
  let db: Firestore

  beforeAll(() => {
    db = testDb(project)
  })
  afterAll(async () => {
    await db.terminate()
  })

  it('a sample of 500 flags damaged items at about their true rate, even when they all sit in the upper half of the id range', async () => {
    await seedAndBackfill(db, project, out, 2000, 12)
    const items = await normalizedItems(db)
    // 10% damaged, all in the upper half of the ids: a first-N-by-id sample would see none.
    const upper = items.slice(Math.ceil(items.length / 2))
    const damaged = new Set(upper.filter((_, k) => k % 5 === 0).map((i) => i.id))
    const writer = db.bulkWriter({throttling: false})
    for (const id of damaged) void writer.update(db.collection(COL).doc(id), {'normalized.occasion': 'work'})
    await writer.close()
    const trueRate = damaged.size / items.length
    expect(trueRate).toBeGreaterThan(0.09)

    const r = await runCli(['validate', ...devArgs(project, out), '--sample-size', '500', '--json'])
    expect(r.code).toBe(4)
    const report = parseReport(r.stdout)
    expect(report.sampling.method).toBe('key-space')
    expect(report.checked).toBe(500)
    expect(report.failureRate).toBeGreaterThan(0.04)
    expect(report.failureRate).toBeLessThan(0.18)
    for (const f of report.failures) expect(damaged.has(f.id)).toBe(true)
    expect(report.checks.semantic.checked).toBe(500)
  })

  it('exits 4 when no item carries normalized yet', async () => {
    const r = await runCli(['validate', ...devArgs(project, out, 'never_backfilled'), '--json'])
    expect(r.code).toBe(4)
    expect(parseReport(r.stdout)).toMatchObject({status: 'no-data', checked: 0})
  })

  it('samples collections with non-random ids by an exact full-scan reservoir', async () => {
    const collection = 'custom_ids'
    const writer = db.bulkWriter({throttling: false})
    for (let i = 0; i < 300; i++)
      void writer.set(db.collection(collection).doc(`item_${String(i).padStart(5, '0')}`), {
        style: ['Casual'],
        season: i % 3 === 0 ? 'Fall' : ['Summer'],
      })
    await writer.close()
    const backfill = await runCli(['backfill', ...devArgs(project, out, collection), '--json'])
    expect(backfill.code).toBe(0)
    // The top 10% of ids damaged: random auto-id keys would never reach them evenly.
    const damaged = Array.from({length: 30}, (_, k) => `item_${String(270 + k).padStart(5, '0')}`)
    for (const id of damaged) await db.collection(collection).doc(id).update({'normalized.style': 'casual'})

    const vocabulary = loadVocabulary()
    let flagged = 0
    for (let run = 0; run < 4; run++) {
      const report = await runValidation(
        db,
        {environment: 'development', projectId: project, collection},
        {vocabulary, sampleSize: 50},
      )
      expect(report.sampling.method).toBe('scan')
      expect(report.sampling.note).toMatch(/not Firestore auto ids/)
      expect(report.checked).toBe(50)
      for (const f of report.failures) expect(damaged).toContain(f.id)
      flagged += report.failed
    }
    // 4 samples of 50 from 300 with 30 damaged: about 20 expected.
    expect(flagged).toBeGreaterThanOrEqual(6)
    expect(flagged).toBeLessThanOrEqual(40)
  })
})

describe('wardrobe validate: coverage and unverified versions (issue 12, finding 7)', () => {
  const project = uniqueProject('validate-coverage')
  const out = tmpDir()
  const args = devArgs(project, out)
  let db: Firestore
  const good = Array.from({length: 60}, (_, i) => `item-${String(i).padStart(2, '0')}`)
  const kept = new Set(good.slice(0, 3))

  beforeAll(async () => {
    db = testDb(project)
    const batch = db.batch()
    for (const id of good)
      batch.set(db.collection(COL).doc(id), {name: id, style: ['Casual'], occasion: 'Work', mood: [], season: ['Fall']})
    // Malformed originals: the backfill records them as error items, which coverage leaves out.
    for (const id of ['bad-0', 'bad-1']) batch.set(db.collection(COL).doc(id), {name: id, style: 42})
    await batch.commit()
    const backfill = await runCli(['backfill', ...args, '--json'])
    expect(backfill.code).toBe(3)
    // Everything but 3 items loses its normalized (e.g. a rollback, or items the backfill never reached).
    const writer = db.bulkWriter({throttling: false})
    for (const id of good)
      if (!kept.has(id)) void writer.update(db.collection(COL).doc(id), {normalized: FieldValue.delete()})
    await writer.close()
  })
  afterAll(async () => {
    await db.terminate()
  })

  it('--all with 3 of 60 items normalized fails on coverage (exit 4), error items excluded; JSON, file and human view say so', async () => {
    const r = await runCli(['validate', ...args, '--all', '--max-failure-rate', '0.001', '--json', '--save-report'])
    expect(r.code).toBe(4)
    const report = parseReport(r.stdout)
    expect(report.status).toBe('failed')
    expect(report.coverage).toEqual({
      normalized: 3,
      inScope: 60,
      errorItems: 2,
      ratio: 0.05,
      minCoverage: 1,
      enforced: true,
    })
    expect(report.checks.notNormalized.failed).toBe(57)
    expect(report).toMatchObject({checked: 60, failed: 57, passed: 3})
    expect(
      report.failures
        .filter((f) => f.reasons.some((x) => x.check === 'not-normalized'))
        .map((f) => f.id)
        .sort(),
    ).toEqual(good.filter((id) => !kept.has(id)))
    expect(readJson(latestFile(out, 'validation_report_'))).toEqual(JSON.parse(r.stdout))

    // Failures allowed, coverage still short: exit 4, and the human view names coverage.
    const human = await runCli(['validate', ...args, '--all', '--max-failure-rate', '1'])
    expect(human.code).toBe(4)
    expect(human.stdout).toMatch(
      /^Coverage: 3 of 60 items in scope carry normalized \(5\.00%; 2 error items excluded\); --min-coverage 100\.00%$/m,
    )
    expect(human.stdout).toMatch(/FAILED: coverage 5\.00% is below --min-coverage 100\.00%/)
    const lenient = await runCli([
      'validate',
      ...args,
      '--all',
      '--max-failure-rate',
      '1',
      '--min-coverage',
      '0.05',
      '--json',
    ])
    expect(lenient.code).toBe(0)
    expect(parseReport(lenient.stdout).coverage.minCoverage).toBe(0.05)
    const bad = await runCli(['validate', ...args, '--all', '--min-coverage', '1.5'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--min-coverage "1\.5" is not a rate between 0 and 1/)
    const sampled = await runCli(['validate', ...args, '--min-coverage', '0.5'])
    expect(sampled.code).toBe(2)
    expect(sampled.stderr).toMatch(/--min-coverage applies to --all only/)
  })

  it('a sampled item without normalized (not an error item) is a not-normalized failure', async () => {
    const r = await runCli(['validate', ...args, '--sample-size', '100', '--max-failure-rate', '0.5', '--json'])
    expect(r.code).toBe(4)
    const report = parseReport(r.stdout)
    expect(report).toMatchObject({checked: 60, failed: 57})
    expect(report.coverage).toMatchObject({normalized: 3, inScope: 60, enforced: false})
    const ids = report.failures.map((f) => f.id)
    expect(ids).not.toContain('bad-0')
    expect(report.failures[0].reasons).toEqual([
      {
        check: 'not-normalized',
        field: null,
        reason: expect.stringMatching(/no normalized field.*not recorded as an error item/),
      },
    ])
  })

  it('items at a version with no vocabulary loaded: stale ones fail by source_hash, the others are unverified-version, not passed', async () => {
    const collection = 'old_versions'
    const cargs = devArgs(project, out, collection)
    const batch = db.batch()
    for (let i = 0; i < 5; i++)
      batch.set(db.collection(collection).doc(`v-${i}`), {name: `v-${i}`, style: ['Casual'], season: ['Fall']})
    await batch.commit()
    expect((await runCli(['backfill', ...cargs, '--json'])).code).toBe(0)
    // Two items carry a version no loaded vocabulary knows; the app then edits one's originals.
    for (const id of ['v-0', 'v-1'])
      await db.collection(collection).doc(id).update({'normalized.normalized_version': '0.7'})
    await db
      .collection(collection)
      .doc('v-1')
      .update({style: ['Formal']})

    const r = await runCli(['validate', ...cargs, '--all', '--json'])
    expect(r.code).toBe(4)
    const report = parseReport(r.stdout)
    expect(report.failures.map((f) => f.id)).toEqual(['v-1'])
    expect(report.failures[0].reasons.map((x) => x.reason)).toEqual([
      expect.stringMatching(/^stale: original fields changed after normalization \(source_hash differs/),
    ])
    expect(report.unverifiedTotal).toBe(1)
    expect(report.unverified).toEqual([
      {
        id: 'v-0',
        reasons: [
          {
            check: 'unverified-version',
            field: null,
            reason: expect.stringMatching(/version 0\.7.*not loaded.*source_hash unchanged/),
          },
        ],
      },
    ])
    expect(report).toMatchObject({checked: 5, failed: 1, passed: 3})
    const human = await runCli(['validate', ...cargs, '--all', '--max-failure-rate', '0.5'])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/1 unverified \(version 0\.7: pass --taxonomy with its vocabulary\)/)
  })
})

describe('per-item checks', () => {
  const vocabulary = loadVocabulary()
  const vocabularies = new Map<string, Vocabulary>([[vocabulary.version, vocabulary]])
  const backfilled = (originals: Record<string, unknown>) => {
    const plan = planBackfill(originals, vocabulary, {force: false, runId: 'run-1'})
    if (plan.action !== 'write') throw new Error('expected a write')
    return {...originals, ...(plan.data as Record<string, unknown>)}
  }
  const item = backfilled({
    style: ['Street wear', 'Boho'],
    occasion: 'Weekend, Brunch',
    mood: ['Chill'],
    season: ['Autumn', 'Fall'],
  })
  const normalized = item.normalized as Record<string, unknown>
  const reasons = (data: Record<string, unknown>, vocabs = vocabularies) =>
    checkItem('x', data, vocabs, vocabulary).failures.map((f) => `${f.check}: ${f.reason}`)

  it('passes what the backfill writes', () => {
    const r = checkItem('x', item, vocabularies, vocabulary)
    expect(r.failures).toEqual([])
    expect(r.warnings).toEqual([])
    expect(r.probe).toEqual(expect.objectContaining({id: 'x'}))
  })

  it('fails an alias stored instead of its canonical term, warns on unmapped values', () => {
    expect(reasons({...item, normalized: {...normalized, style: ['boho']}})).toContain(
      'canonical: style[0] "boho" is an alias of "bohemian", not the canonical term',
    )
    const unmapped = checkItem('x', backfilled({style: ['Cyber Grunge Deluxe']}), vocabularies, vocabulary)
    expect(unmapped.failures).toEqual([])
    expect(unmapped.warnings.map((w) => w.reason)).toEqual([
      'style "cyber grunge deluxe" is not in vocabulary 1.0 (unmapped)',
    ])
  })

  it('reports items of a version whose vocabulary is not loaded as unverified (not failed, not passed), and still catches stale ones by source_hash', () => {
    const old = {...item, normalized: {...normalized, normalized_version: '0.9', style: ['made up old term']}}
    const r = checkItem('x', old, vocabularies, vocabulary)
    expect(r.failures).toEqual([])
    expect(r.warnings).toEqual([])
    expect(r.unverified).toEqual({
      check: 'unverified-version',
      field: null,
      reason: expect.stringMatching(
        /^normalized_version 0\.9: its vocabulary is not loaded .*source_hash unchanged since normalization$/,
      ),
    })
    expect(
      checkItem('x', {...old, normalized: {...old.normalized, source_hash: undefined}}, vocabularies, vocabulary)
        .unverified?.reason,
    ).toMatch(/no source_hash, so whether the originals changed since is unknown$/)
    expect(checkItem('x', {...old, style: ['Formal']}, vocabularies, vocabulary).unverified).toBeNull()
    expect(r.consistency.compared).toBe(false)
    expect(reasons({...old, style: ['Formal']})).toEqual([
      expect.stringMatching(
        /^consistency: stale: original fields changed after normalization \(source_hash differs; values not compared: vocabulary for version 0\.9 not loaded\)$/,
      ),
    ])
  })

  it('fails items whose originals are malformed but carry normalized, with the normalizer reason', () => {
    expect(reasons({...item, mood: 42})).toEqual([
      'consistency: originals are malformed, so the item should carry no normalized: mood: expected an array of strings or a string, got number',
    ])
  })

  it('fails a normalized that is not a map, wrong types and whitespace', () => {
    expect(reasons({...item, normalized: 'casual'})).toEqual(['structure: normalized: expected a map, got string'])
    expect(
      reasons({...item, normalized: {...normalized, normalized_at: '2024-01-15T10:30:00Z', normalized_version: 1}}),
    ).toEqual([
      'structure: normalized.normalized_at: expected a Timestamp, got string',
      'structure: normalized.normalized_version: expected a non-empty string, got number',
    ])
    expect(
      reasons({
        ...item,
        normalized: {...normalized, style: [' streetwear', 'bohemian'], normalized_at: Timestamp.now()},
      }),
    ).toEqual([
      'canonical: style[0] " streetwear" has leading or trailing whitespace',
      expect.stringMatching(
        /^consistency: normalized\.style is .* but the originals give .*; the originals are unchanged since normalization/,
      ),
    ])
  })

  it('parses --max-failure-rate as a number or a percentage in [0, 1]', () => {
    expect(parseRate('0')).toBe(0)
    expect(parseRate('0.05')).toBe(0.05)
    expect(parseRate('5%')).toBeCloseTo(0.05)
    expect(parseRate('1')).toBe(1)
    for (const bad of ['abc', '1.01', '-1', '', '120%', '0x1']) expect(() => parseRate(bad)).toThrow(UsageError)
    expect(() => parseRate('2', '--min-coverage')).toThrow(/^--min-coverage "2" is not a rate between 0 and 1$/)
  })
})
