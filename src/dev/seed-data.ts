/**
 * Seed data for the development emulator (`wardrobe seed`, the demo, tests, bench): the
 * generator (seed-generator.ts), readers of JSON / NDJSON / CSV seed files (seed-json.ts,
 * seed-csv.ts) and the BulkWriter loader (seed-writer.ts). Services never print: progress
 * goes through callbacks.
 */
import path from 'node:path'
import {readCsvFile} from './seed-csv'
import {readJsonFile, readNdjsonFile} from './seed-json'
import type {SeedItem} from './seed-item'

export {SEED_FIELDS, SeedFileError} from './seed-item'
export type {SeedField, SeedItem} from './seed-item'
export {generateItem, generateItems, MALFORMED_KINDS, mulberry32, WRITABLE_MALFORMED_KINDS} from './seed-generator'
export type {GeneratedItem, GenerateOptions, MalformedKind} from './seed-generator'
export {writeItems} from './seed-writer'

export const SUPPORTED_SEED_EXTENSIONS = ['.json', '.ndjson', '.jsonl', '.csv'] as const

/**
 * Items of a seed file, streamed: `.json` (an array of objects or `{"items": [...]}`),
 * `.ndjson` / `.jsonl` (one object per line, blank lines ignored) or `.csv` (RFC 4180, a
 * header row). An `id` property or column becomes the document id; rows without one get a
 * deterministic auto-like id from their position and content, so loading the same file
 * twice writes the same documents. CSV: `style`, `occasion`, `mood`, `season` cells are
 * lists split on `|` or `;` (parts trimmed, empty parts dropped); an empty cell leaves the
 * field out; every other cell stays a string. Problems throw SeedFileError. An unsupported
 * extension throws at once.
 */
export function readSeedFile(file: string): AsyncIterable<SeedItem> {
  const ext = path.extname(file).toLowerCase()
  switch (ext) {
    case '.json':
      return readJsonFile(file)
    case '.ndjson':
    case '.jsonl':
      return readNdjsonFile(file)
    case '.csv':
      return readCsvFile(file)
    default:
      throw new Error(
        `unsupported seed file ${file}: extension "${ext || '(none)'}" is not one of ${SUPPORTED_SEED_EXTENSIONS.join(', ')}`,
      )
  }
}
