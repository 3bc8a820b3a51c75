import {GeoPoint, Timestamp} from 'firebase-admin/firestore'
import type {SeedItem} from '../../src/dev/seed-data'
import {ChaosContext, prng} from './context'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** Auto-id-like ids spread over the key space, deterministic per seed. */
export function randomIds(count: number, seed: number): string[] {
  const r = prng(seed)
  return Array.from({length: count}, () => Array.from({length: 20}, () => ALPHABET[Math.floor(r() * 62)]).join(''))
}

/**
 * Items whose `normalized` predates the tool (the app's own, odd types included): the
 * backfill must keep it under `previous`, a rollback must give it back exactly.
 */
export function legacyItems(items: number, seed = 4242): SeedItem[] {
  const ids = randomIds(Math.max(20, Math.round(items / 500)), seed)
  return ids.map((id, i) => ({
    id,
    data: {
      name: `Legacy item ${i}`,
      style: i % 3 === 0 ? 'Casual, Street wear' : ['Formal', 'Boho'],
      season: ['Fall'],
      normalized:
        i % 4 === 0
          ? 'not a map'
          : {
              style: ['CASUAL'],
              written_by: 'app',
              at: Timestamp.fromMillis(1_600_000_000_000 + i),
              where: new GeoPoint(1, 2),
              tags: [1, 'x', null],
            },
    },
  }))
}

/**
 * Flags for runs that get killed or interrupted: a rate cap stretches the run over about
 * 25 s whatever the size, as a throttled staging or production run is (so there are checkpoints to kill after), and a wider write
 * window leaves more unacknowledged writes behind the scan at any moment.
 */
export function runFlags(ctx: ChaosContext): string[] {
  return [
    '--max-rate',
    String(Math.max(200, Math.round(ctx.items / 25))),
    '--batch-size',
    String(Math.min(2000, Math.round(ctx.items / 25))),
  ]
}
