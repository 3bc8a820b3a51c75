import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {deleteApp, initializeApp, type App} from 'firebase-admin/app'
import {getFirestore, Timestamp, type Firestore} from 'firebase-admin/firestore'
import {clearEmulator} from '../../src/dev/emulator'
import {generateItem, generateItems, readSeedFile, writeItems} from '../../src/dev/seed-data'

describe('writeItems (emulator)', () => {
  const projectId = 'demo-seed-data-test'
  let app: App
  let db: Firestore

  beforeAll(async () => {
    const host = process.env.FIRESTORE_EMULATOR_HOST
    if (!host) throw new Error('FIRESTORE_EMULATOR_HOST is not set: the jest globalSetup must start the emulator')
    await clearEmulator(host, projectId)
    app = initializeApp({projectId}, 'seed-data-test')
    db = getFirestore(app)
  })
  afterAll(async () => {
    if (app) await deleteApp(app)
  })

  it('writes 1,000 generated items and reports progress', async () => {
    const progress: number[] = []
    const items = [...generateItems(1000, {seed: 11, malformedRate: 0.05})]
    const written = await writeItems(db, 'wardrobe_items', items, (n) => progress.push(n))
    expect(written).toBe(1000)
    expect(progress.at(-1)).toBe(1000)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
    const count = await db.collection('wardrobe_items').count().get()
    expect(count.data().count).toBe(1000)

    const sample = items.find((i) => i.data.details !== undefined && Array.isArray(i.data.style))!
    const snap = await db.collection('wardrobe_items').doc(sample.id).get()
    const stored = snap.data()!
    expect(stored.createdAt).toBeInstanceOf(Timestamp)
    expect((stored.createdAt as Timestamp).toDate()).toEqual(sample.data.createdAt)
    expect(stored.style).toEqual(sample.data.style)
    expect(stored.details).toEqual(sample.data.details)
    expect(stored.name).toBe(sample.data.name)
  })

  it('writes an async iterable (a seed file) and overwrites on re-run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-data-write-'))
    try {
      const file = path.join(dir, 'items.ndjson')
      fs.writeFileSync(
        file,
        '{"id": "f1", "name": "Coat", "style": "Casual, Sporty"}\n{"name": "Hat", "season": null}\n',
      )
      expect(await writeItems(db, 'from_file', readSeedFile(file))).toBe(2)
      expect(await writeItems(db, 'from_file', readSeedFile(file))).toBe(2)
      expect((await db.collection('from_file').count().get()).data().count).toBe(2)
      expect((await db.collection('from_file').doc('f1').get()).data()).toEqual({name: 'Coat', style: 'Casual, Sporty'})
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
  })

  it('refuses an item Firestore cannot store, without failing the other writes', async () => {
    const good = [...generateItems(30, {seed: 12, malformedRate: 0})]
    const bad = generateItem(0, {seed: 99, malformedRate: 1, malformedKinds: ['lone-surrogate']})
    const field = bad.malformed!.field
    await expect(writeItems(db, 'unstorable', [...good, bad.item])).rejects.toThrow(
      `cannot write unstorable/${bad.item.id}: ${field}[0] holds a lone UTF-16 surrogate, which Firestore cannot store`,
    )
    expect((await db.collection('unstorable').count().get()).data().count).toBe(30)
  })

  it('rejects with the file error when the source fails midway, after the earlier writes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seed-data-write-'))
    try {
      const file = path.join(dir, 'half.ndjson')
      fs.writeFileSync(file, '{"id": "h1"}\n{"id": "h2"}\nnot json\n')
      await expect(writeItems(db, 'half', readSeedFile(file))).rejects.toThrow(`${file}:3: invalid JSON`)
      expect((await db.collection('half').count().get()).data().count).toBe(2)
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
  })
})
