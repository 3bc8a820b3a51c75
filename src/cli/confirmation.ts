import type {Settings} from '../config'
import {UsageError} from '../errors'

export interface ConfirmOptions {
  /** --yes: scripts confirm up front. */
  yes: boolean
  /** Under --json nobody is there to answer. */
  json: boolean
  /** What is about to happen, for the prompt ("backfill wardrobe_items"). */
  action: string
  interactive?: boolean
  warn: (message: string) => void
  /** Injected in tests; defaults to an @inquirer/prompts input on stderr. */
  ask?: (message: string) => Promise<string>
}

/**
 * Gate for writing commands. Production needs the project id typed (or --yes), and is
 * refused when nobody can answer; staging warns. Runs before anything is written.
 */
export async function confirmTarget(
  settings: Pick<Settings, 'environment' | 'projectId'>,
  options: ConfirmOptions,
): Promise<void> {
  const {environment, projectId} = settings
  if (environment === 'development') return
  if (environment === 'staging') {
    options.warn(`staging: about to ${options.action} in project ${projectId}`)
    return
  }
  if (options.yes) {
    options.warn(`production: ${options.action} in project ${projectId} (confirmed by --yes)`)
    return
  }
  const interactive = options.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY)
  if (options.json || !interactive) {
    throw new UsageError(
      `refusing to ${options.action} in production project ${projectId} without confirmation`,
      'run it in a terminal and type the project id, or pass --yes in scripts',
    )
  }
  const ask = options.ask ?? askOnStderr
  let answer: string
  try {
    answer = await ask(`PRODUCTION: ${options.action} in project ${projectId}. Type the project id to continue:`)
  } catch {
    throw new UsageError('confirmation aborted; nothing was written')
  }
  if (answer.trim() !== projectId)
    throw new UsageError(
      `"${answer.trim()}" is not ${projectId}; nothing was written`,
      'type the project id exactly, or pass --yes',
    )
}

async function askOnStderr(message: string): Promise<string> {
  const {input} = await import('@inquirer/prompts')
  return input({message}, {output: process.stderr})
}
