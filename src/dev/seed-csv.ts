/**
 * Seed files in CSV (RFC 4180, a header row), read by csv-parse as a stream. Problems name
 * the file and the line their record starts on: csv-parse's own line count is off after
 * quoted CRLF line breaks, so lines are counted here from each record's raw text.
 */
import fs from 'node:fs'
import {CsvError, parse} from 'csv-parse'
import {SEED_FIELDS, SeedFileError, SeedItem, toSeedItem} from './seed-item'

const LIST_COLUMNS: ReadonlySet<string> = new Set(SEED_FIELDS)

interface CsvRow {
  /** Line on which the record starts (1-based). */
  line: number
  cells: string[]
}

const lineBreaks = (text: string) => text.match(/\r\n|\r|\n/g)?.length ?? 0

export async function* readCsvFile(file: string): AsyncGenerator<SeedItem> {
  let header: Array<string | null> | undefined
  const seen = new Set<string>()
  let ordinal = 0
  /** Where the record being parsed starts, and where each record read but not yet taken started. */
  let line = 1
  const starts: number[] = []
  const parser = parse({
    bom: true,
    // Checked below, naming the header's count.
    relax_column_count: true,
    // Blank lines are skipped below, after counting them.
    skip_empty_lines: false,
    raw: true,
    // With `raw`, csv-parse hands on_record {record, raw}, whatever its typings say.
    on_record: (withRaw, {raw = ''}) => {
      const start = line
      line += lineBreaks(raw)
      if (raw.replace(/[\r\n]+$/, '') === '') return null
      starts.push(start)
      return (withRaw as unknown as {record: string[]}).record
    },
  })
  const input = fs.createReadStream(file)
  input.on('error', (err) => parser.destroy(err))
  input.pipe(parser)
  const toItem = (row: CsvRow): SeedItem | undefined => {
    if (!header) {
      header = row.cells.map((c) => {
        const name = c.trim()
        return name === '' ? null : name
      })
      const names = header.filter((h): h is string => h !== null)
      if (names.length === 0) throw new SeedFileError(file, row.line, 'the header row has no column names')
      const dup = names.find((n, i) => names.indexOf(n) !== i)
      if (dup) throw new SeedFileError(file, row.line, `duplicate column "${dup}" in the header row`)
      return undefined
    }
    if (row.cells.length !== header.length) {
      throw new SeedFileError(
        file,
        row.line,
        `expected ${header.length} fields (as in the header row), found ${row.cells.length}`,
      )
    }
    const record: Record<string, unknown> = {}
    header.forEach((name, i) => {
      const cell = row.cells[i]
      if (name === null || cell === '') return
      record[name] = LIST_COLUMNS.has(name)
        ? cell
            .split(/[|;]/)
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : cell
    })
    return toSeedItem(file, row.line, ++ordinal, record, seen, () => JSON.stringify(row.cells))
  }
  try {
    for await (const cells of parser as AsyncIterable<string[]>) {
      const item = toItem({line: starts.shift()!, cells})
      if (item) yield item
    }
  } catch (err) {
    throw err instanceof CsvError ? new SeedFileError(file, line, csvProblem(err)) : err
  } finally {
    input.destroy()
    parser.destroy()
  }
  if (!header) throw new SeedFileError(file, 1, 'empty CSV file: a header row is required')
}

/** csv-parse's complaint, said as the fix. */
function csvProblem(err: CsvError): string {
  switch (err.code) {
    case 'INVALID_OPENING_QUOTE':
      return "unexpected '\"' inside an unquoted field (quote the whole field, with nothing before its opening quote, and double inner quotes)"
    case 'CSV_INVALID_CLOSING_QUOTE':
      return `unexpected character ${JSON.stringify(/got "(.*?)" at line/s.exec(err.message)?.[1] ?? '')} after a closing quote`
    case 'CSV_QUOTE_NOT_CLOSED':
      return "unterminated quoted field (missing closing '\"')"
    default:
      return err.message
  }
}
