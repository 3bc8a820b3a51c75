import fs from 'node:fs'
import path from 'node:path'
import type winston from 'winston'

export const LOG_FILE = 'backfill_normalize.log'
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** JSON lines into `<outputDir>/backfill_normalize.log`; the terminal gets only what commands render. */
export async function createLogger(
  outputDir: string,
  level: LogLevel = 'info',
  command = 'wardrobe',
): Promise<winston.Logger> {
  // Loaded here, not at the top: LOG_LEVELS is needed to define flags, winston only once a command runs.
  const {default: winston} = await import('winston')
  fs.mkdirSync(outputDir, {recursive: true})
  return winston.createLogger({
    level,
    defaultMeta: {command, pid: process.pid},
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.File({filename: path.join(outputDir, LOG_FILE)})],
  })
}

/** Resolves once everything logged so far is on disk. */
export function closeLogger(logger: winston.Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.on('finish', () => resolve())
    logger.end()
  })
}
