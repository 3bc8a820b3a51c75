/**
 * The real fashion catalogue (shared data, read in place, never copied into the project) as
 * wardrobe items: name ← productDisplayName, style ← [usage], season ← [season]; the other
 * columns are kept as extra fields.
 */
import fs from 'node:fs'
import path from 'node:path'
import {parse} from 'csv-parse/sync'
import type {SeedItem} from '../src/dev/seed-data'

/** Beside the repository (the project's shared data folder); --dataset-file names another. */
export const DEFAULT_CATALOGUE = path.resolve(__dirname, '..', '..', 'shared', 'data', 'fashion-catalogue-styles.csv')

export function readCatalogue(file = DEFAULT_CATALOGUE): SeedItem[] {
  if (!fs.existsSync(file))
    throw new Error(`catalogue ${file} not found (--dataset needs it; the benchmark runs without it)`)
  // Lenient like the catalogue's exporter: ragged rows, stray quotes.
  const [header, ...rows] = parse(fs.readFileSync(file), {
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
  }) as string[][]
  const col = (name: string) => header.indexOf(name)
  const [id, gender, master, sub, colour, season, usage, name] = [
    'id',
    'gender',
    'masterCategory',
    'subCategory',
    'baseColour',
    'season',
    'usage',
    'productDisplayName',
  ].map(col)
  if ([id, season, usage, name].some((i) => i < 0))
    throw new Error(`catalogue ${file}: expected columns id, season, usage, productDisplayName`)
  const seen = new Set<string>()
  const items: SeedItem[] = []
  for (const r of rows) {
    const docId = r[id]?.trim()
    if (!docId || seen.has(docId)) continue
    seen.add(docId)
    const cell = (i: number) => (i >= 0 ? (r[i] ?? '').trim() : '')
    items.push({
      id: docId,
      data: {
        name: cell(name),
        style: cell(usage) ? [cell(usage)] : [],
        season: cell(season) ? [cell(season)] : [],
        gender: cell(gender),
        category: cell(master),
        subCategory: cell(sub),
        color: cell(colour),
      },
    })
  }
  return items
}
