import type {Firestore} from 'firebase-admin/firestore'
import type {Settings} from '../config'
import {UsageError} from '../errors'
import {generateItems, readSeedFile, SeedItem, writeItems} from '../dev/seed-data'

export interface SeedRequest {
  count?: number
  file?: string
  seed?: number
  malformedRate?: number
  /** For a collection group: items are spread over this many `users/{uid}/<group>` collections. */
  users?: number
  onProgress?: (written: number) => void
}

export interface SeedResult {
  collection: string
  projectId: string
  written: number
  source: string
}

/** `wardrobe seed`: loads generated or file items, into a development emulator only. */
export async function seedCollection(
  db: Firestore,
  settings: Pick<Settings, 'environment' | 'collection' | 'projectId' | 'emulatorHost'> &
    Partial<Pick<Settings, 'group'>>,
  req: SeedRequest,
): Promise<SeedResult> {
  if (settings.environment !== 'development' || !settings.emulatorHost) {
    throw new UsageError(
      `seed writes sample data and runs only in development against an emulator, not ${settings.environment}`,
      'use --environment development with FIRESTORE_EMULATOR_HOST set',
    )
  }
  const items: Iterable<SeedItem> | AsyncIterable<SeedItem> = req.file
    ? readSeedFile(req.file)
    : generateItems(req.count ?? 1000, {seed: req.seed, malformedRate: req.malformedRate})
  const users = req.users ?? 100
  const where = settings.group
    ? (index: number) => `users/user${String(index % users).padStart(4, '0')}/${settings.collection}`
    : settings.collection
  const written = await writeItems(db, where, items, req.onProgress)
  return {
    collection: settings.group
      ? `users/{uid}/${settings.collection} (${Math.min(users, written)} users)`
      : settings.collection,
    projectId: settings.projectId,
    written,
    source: req.file ?? `generated (seed ${req.seed ?? 1})`,
  }
}
