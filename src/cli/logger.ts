import fs from 'node:fs'
import path from 'node:path'
import type winston from 'winston'
import type {Logger} from '../engine/run-context'

export const LOG_FILE = 'backfill_normalize.log'
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * JSON lines into `<outputDir>/backfill_normalize.log` (winston); the terminal gets only what
 * commands render. winston and the file open at the first line written, not before: a command
 * that logs nothing (a one-shot monitor, runs list) does not pay winston's ~40 ms of start-up.
 */
export class LogFile implements Logger {
  private logger?: winston.Logger

  constructor(
    private readonly outputDir: string,
    private readonly level: LogLevel = 'info',
    private readonly command = 'wardrobe',
  ) {
    // Still at once: an output directory that cannot be made fails before any work, not at the first line.
    fs.mkdirSync(outputDir, {recursive: true})
  }

  error(message: string, meta?: object): void {
    this.write('error', message, meta)
  }

  warn(message: string, meta?: object): void {
    this.write('warn', message, meta)
  }

  info(message: string, meta?: object): void {
    this.write('info', message, meta)
  }

  debug(message: string, meta?: object): void {
    this.write('debug', message, meta)
  }

  /** Resolves once everything logged so far is on disk. */
  close(): Promise<void> {
    const logger = this.logger
    if (!logger) return Promise.resolve()
    return new Promise((resolve) => {
      logger.on('finish', () => resolve())
      logger.end()
    })
  }

  private write(level: LogLevel, message: string, meta?: object): void {
    // A line below the level is dropped without opening anything.
    if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(this.level)) return
    this.open().log(level, message, meta)
  }

  private open(): winston.Logger {
    if (this.logger) return this.logger
    // Synchronous: the line is stamped and queued as it is logged, in order with the ones after it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const w = require('winston') as typeof winston
    this.logger = w.createLogger({
      level: this.level,
      defaultMeta: {command: this.command, pid: process.pid},
      format: w.format.combine(w.format.timestamp(), w.format.json()),
      transports: [new w.transports.File({filename: path.join(this.outputDir, LOG_FILE)})],
    })
    return this.logger
  }
}
