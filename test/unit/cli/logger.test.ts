import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {LOG_FILE, LogFile} from '../../../src/cli/logger'

/** The log file as a user finds it: JSON lines in --output-dir, or no file when nothing was logged. */
function lines(dir: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(dir, LOG_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'wardrobe-log-'))

describe('LogFile', () => {
  test('nothing logged: no file, and close resolves at once', async () => {
    const dir = tmp()
    const log = new LogFile(path.join(dir, 'out'), 'info', 'monitor')
    log.debug('below the level', {a: 1})
    await log.close()
    // The output directory is made up front (a bad --output-dir fails before any work) …
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(true)
    // … but the file only with its first line.
    expect(fs.existsSync(path.join(dir, 'out', LOG_FILE))).toBe(false)
  })

  test('lines at or above the level, in order, as winston JSON with command and pid', async () => {
    const dir = tmp()
    const log = new LogFile(dir, 'warn', 'backfill')
    log.info('dropped')
    log.warn('first', {runId: 'r1'})
    log.debug('dropped too')
    log.error('second', {exit: 3})
    await log.close()
    const got = lines(dir)
    expect(got.map((l) => [l.level, l.message])).toEqual([
      ['warn', 'first'],
      ['error', 'second'],
    ])
    expect(got[0]).toMatchObject({command: 'backfill', pid: process.pid, runId: 'r1'})
    expect(got[1]).toMatchObject({exit: 3})
    expect(Number.isNaN(Date.parse(String(got[0].timestamp)))).toBe(false)
  })

  test('debug level writes debug lines; a line without meta is written too', async () => {
    const dir = tmp()
    const log = new LogFile(dir, 'debug')
    log.debug('detail', {n: 1})
    log.info('plain')
    await log.close()
    expect(lines(dir).map((l) => [l.level, l.message, l.command])).toEqual([
      ['debug', 'detail', 'wardrobe'],
      ['info', 'plain', 'wardrobe'],
    ])
  })

  test('an output directory that cannot be made fails at once', () => {
    const dir = tmp()
    const file = path.join(dir, 'a-file')
    fs.writeFileSync(file, '')
    expect(() => new LogFile(path.join(file, 'out'))).toThrow(/ENOTDIR|EEXIST/)
  })
})
