/** Seed files in JSON (an array, or `{"items": [...]}`) and NDJSON / JSON Lines; problems name file and line. */
import fs from 'node:fs'
import readline from 'node:readline'
import {describe, isPlainObject, SeedFileError, SeedItem, toSeedItem} from './seed-item'

function jsonErrorLine(text: string, err: unknown): {line: number; problem: string} {
  const message = err instanceof Error ? err.message : String(err)
  const m = / at position (\d+)/.exec(message)
  const pos = m ? Number(m[1]) : jsonErrorOffset(text)
  let line = 1
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  const reason = message
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ at position \d+.*$/s, '')
  return {line, problem: `invalid JSON: ${reason}`}
}

/**
 * Offset of the first syntax error in text that JSON.parse rejected (V8 does not always
 * say where). A small recursive-descent checker, only run on failure.
 */
function jsonErrorOffset(text: string): number {
  let i = 0
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++
  }
  class Stop extends Error {}
  const fail = (): never => {
    throw new Stop()
  }
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length
    else fail()
  }
  const string = () => {
    if (text[i] !== '"') fail()
    i++
    for (;;) {
      if (i >= text.length) fail()
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return
      }
      if (c < 0x20) fail()
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i++
            fail()
          }
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else {
          i++
          fail()
        }
      } else i++
    }
  }
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (!m) fail()
    i += m![0].length
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        string()
        ws()
        if (text[i] !== ':') fail()
        i++
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === '}') {
          i++
          return
        } else fail()
      }
    } else if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === ']') {
          i++
          return
        } else fail()
      }
    } else if (c === '"') string()
    else if (c === 't') literal('true')
    else if (c === 'f') literal('false')
    else if (c === 'n') literal('null')
    else number()
  }
  try {
    value()
    ws()
    return i
  } catch (error) {
    if (error instanceof Stop || error instanceof RangeError) return i
    throw error
  }
}

/**
 * Lines on which the elements of the items array start: the top-level array, or the
 * array under the top-level "items" key. Only called to place an error.
 */
function elementLines(text: string, underItemsKey: boolean): number[] {
  const lines: number[] = []
  let depth = 0
  let line = 1
  let inString = false
  let target = underItemsKey ? -1 : 1 // depth of the items array's elements
  let lastKey = ''
  let expectElement = false
  let stringStart = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '\n') line++
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') {
        inString = false
        if (depth === 1) lastKey = text.slice(stringStart + 1, i)
      }
      continue
    }
    if (/\s/.test(c)) continue
    if (expectElement && depth === target && c !== ']') {
      lines.push(line)
      expectElement = false
    }
    if (c === '"') {
      inString = true
      stringStart = i
    } else if (c === '[' || c === '{') {
      depth++
      if (c === '[' && target === -1 && depth === 2 && lastKey === 'items') target = 2
      if (depth === target && c === '[') expectElement = true
    } else if (c === ']' || c === '}') {
      if (depth === target && c === ']') return lines
      depth--
    } else if (c === ',' && depth === target) {
      expectElement = true
    }
  }
  return lines
}

export async function* readJsonFile(file: string): AsyncGenerator<SeedItem> {
  const text = (await fs.promises.readFile(file, 'utf8')).replace(/^\uFEFF/, '')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    const {line, problem} = jsonErrorLine(text, error)
    throw new SeedFileError(file, line, problem)
  }
  let items: unknown[]
  let underItemsKey = false
  if (Array.isArray(parsed)) items = parsed
  else if (isPlainObject(parsed) && Array.isArray(parsed.items)) {
    items = parsed.items
    underItemsKey = true
  } else {
    throw new SeedFileError(
      file,
      1,
      `expected an array of items or an object with an "items" array, found ${describe(parsed)}`,
    )
  }
  let lines: number[] | undefined
  const lineOf = (i: number) => (lines ??= elementLines(text, underItemsKey))[i] ?? 1
  const seen = new Set<string>()
  for (let i = 0; i < items.length; i++) {
    const record = items[i]
    if (!isPlainObject(record))
      throw new SeedFileError(file, lineOf(i), `item ${i + 1} must be an object, found ${describe(record)}`)
    try {
      yield toSeedItem(file, 0, i + 1, record, seen, () => JSON.stringify(record))
    } catch (error) {
      if (error instanceof SeedFileError) throw new SeedFileError(file, lineOf(i), `item ${i + 1}: ${error.problem}`)
      throw error
    }
  }
}

export async function* readNdjsonFile(file: string): AsyncGenerator<SeedItem> {
  const lines = readline.createInterface({input: fs.createReadStream(file, {encoding: 'utf8'}), crlfDelay: Infinity})
  const seen = new Set<string>()
  let line = 0
  let ordinal = 0
  try {
    for await (const raw of lines) {
      line++
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw
      if (text.trim() === '') continue
      let record: unknown
      try {
        record = JSON.parse(text)
      } catch (error) {
        throw new SeedFileError(file, line, jsonErrorLine(text, error).problem)
      }
      if (!isPlainObject(record))
        throw new SeedFileError(file, line, `expected a JSON object, found ${describe(record)}`)
      yield toSeedItem(file, line, ++ordinal, record, seen, () => text)
    }
  } finally {
    lines.close()
  }
}
