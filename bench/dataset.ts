/**
 * The real fashion catalogue (shared data, read in place, never copied into the project) as
 * wardrobe items: name ← productDisplayName, style ← [usage], season ← [season]; the other
 * columns are kept as extra fields.
 */
import fs from 'node:fs'
import type {SeedItem} from '../src/dev/seed-data'

export const DEFAULT_CATALOGUE = '/work/shared/data/fashion-catalogue-styles.csv'

/** RFC 4180 rows: quoted cells may hold commas and doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"'
        i++
      } else if (c === '"') quoted = false
      else cell += c
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(cell)
      cell = ''
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++
      row.push(cell)
      rows.push(row)
      row = []
      cell = ''
    } else cell += c
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell)
    rows.push(row)
  }
  return rows
}

export function readCatalogue(file = DEFAULT_CATALOGUE): SeedItem[] {
  if (!fs.existsSync(file)) throw new Error(`catalogue ${file} not found (--dataset needs it; the benchmark runs without it)`)
  const [header, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'))
  const col = (name: string) => header.indexOf(name)
  const [id, gender, master, sub, colour, season, usage, name] = ['id', 'gender', 'masterCategory', 'subCategory', 'baseColour', 'season', 'usage', 'productDisplayName'].map(col)
  if ([id, season, usage, name].some((i) => i < 0)) throw new Error(`catalogue ${file}: expected columns id, season, usage, productDisplayName`)
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
