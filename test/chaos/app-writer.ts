/**
 * The concurrent app of scenario 3, as its own process: updates original fields of random
 * items, adds and deletes items, until SIGTERM. Every acknowledged write is logged (NDJSON)
 * with its update time from the WriteResult, so the checker can tell who wrote last.
 *
 *   node --import tsx test/chaos/app-writer.ts <host> <project> <collection> <log> <seed> <ratePerSecond>
 */
import fs from 'node:fs'
import {FieldPath, Firestore, WriteResult} from 'firebase-admin/firestore'
import {generateItem} from '../../src/dev/seed-data'
import {prng} from './context'

export type AppWrite =
  | {id: string; op: 'update'; t: [number, number]; fields: Record<string, unknown>}
  | {id: string; op: 'create'; t: [number, number]; index: number}
  | {id: string; op: 'delete'; t: [number, number]}
  | {id: string; op: 'failed'; error: string}

/** Items the app creates come from the generator at indexes no seeded item uses. */
export const APP_INDEX_BASE = 1_000_000_000

const TERMS: Record<string, string[]> = {
  style: ['Casual', 'Street wear', 'FORMAL', 'Boho', 'vintage', 'Dark Academia', 'smart-casual', 'Sporty'],
  occasion: ['Work', 'Weekend', 'date night', 'Party', 'Travelling', 'Graduation'],
  mood: ['Relaxed', 'Cosy', 'Bold', 'main character', 'Playful'],
  season: ['Fall', 'Autumn', 'Summer', 'Winter', 'Spring', 'Harmattan'],
}

async function main(): Promise<void> {
  const [host, projectId, collection, logFile, seedText, rateText] = process.argv.slice(2)
  process.env.FIRESTORE_EMULATOR_HOST = host
  const db = new Firestore({projectId})
  const col = db.collection(collection)
  const random = prng(Number(seedText))
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]
  const log = fs.openSync(logFile, 'a')
  const record = (w: AppWrite) => fs.writeSync(log, JSON.stringify(w) + '\n')
  const t = (r: WriteResult): [number, number] => [r.writeTime.seconds, r.writeTime.nanoseconds]

  const ids = (await col.select(FieldPath.documentId()).get()).docs.map((d) => d.id)
  const busy = new Set<string>()
  let created = 0
  let stopping = false
  process.on('SIGTERM', () => (stopping = true))
  process.on('SIGINT', () => (stopping = true))
  process.send?.({ready: ids.length})

  const fields = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {}
    for (const f of Object.keys(TERMS)) {
      if (random() < 0.5) continue
      const values = Array.from({length: 1 + Math.floor(random() * 3)}, () => pick(TERMS[f]))
      // Mostly arrays, sometimes a comma string, now and then a shape the backfill must reject.
      const r = random()
      out[f] = r < 0.03 ? Math.floor(random() * 100) : r < 0.2 ? values.join(', ') : values
    }
    if (random() < 0.3) out.name = `Renamed ${Math.floor(random() * 1e6)}`
    if (random() < 0.3) out.price = Math.round(random() * 40000) / 100
    if (Object.keys(out).length === 0) out.style = [pick(TERMS.style)]
    return out
  }

  const one = async (): Promise<void> => {
    const r = random()
    if (r < 0.1) {
      const index = APP_INDEX_BASE + (Number(seedText) % 1000) * 100_000 + created++
      const {item} = generateItem(index, {seed: Number(seedText), malformedRate: 0})
      busy.add(item.id)
      try {
        record({id: item.id, op: 'create', t: t(await col.doc(item.id).create(item.data)), index})
        ids.push(item.id)
      } catch (err) {
        record({id: item.id, op: 'failed', error: String(err)})
      } finally {
        busy.delete(item.id)
      }
      return
    }
    let i = Math.floor(random() * ids.length)
    while (busy.has(ids[i])) i = Math.floor(random() * ids.length)
    const id = ids[i]
    busy.add(id)
    try {
      if (r < 0.18) {
        ids.splice(i, 1)
        record({id, op: 'delete', t: t(await col.doc(id).delete())})
      } else {
        const data = fields()
        record({id, op: 'update', t: t(await col.doc(id).update(data)), fields: data})
      }
    } catch (err) {
      record({id, op: 'failed', error: String(err)})
    } finally {
      busy.delete(id)
    }
  }

  // A few workers, each pacing itself so that together they stay near the rate.
  const workers = 8
  const interval = (1000 * workers) / Number(rateText)
  await Promise.all(
    Array.from({length: workers}, async () => {
      while (!stopping) {
        const started = Date.now()
        await one()
        const wait = interval - (Date.now() - started)
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
    }),
  )
  fs.closeSync(log)
  await db.terminate()
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
