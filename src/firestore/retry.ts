/**
 * Retries, deadlines and outages of Firestore calls: the one place a call that gets no answer
 * becomes an OutageError (a run ends failed with its checkpoint; a command exits 1).
 */
import {DEFAULT_OUTAGE_AFTER_SECONDS} from '../config'
import {errorMessage, ExitCode, isRetryable, WardrobeError} from '../errors'

export interface RetryOptions {
  maxAttempts?: number
  /**
   * Wall-clock budget over all attempts (default: the default outage budget). The client
   * retries a call on its own for tens of seconds per attempt when nothing answers, so
   * attempts alone would wait out an outage for minutes.
   */
  budgetMs?: number
  onRetry?: (attempt: number, err: unknown) => void
  signal?: AbortSignal
}

/**
 * Retries retryable Firestore errors with exponential backoff; rethrows the rest at once. An
 * outage that outlasts the budget or the attempts is an OutageError.
 */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 8
  const budgetMs = options.budgetMs ?? DEFAULT_OUTAGE_AFTER_SECONDS * 1000
  const deadline = Date.now() + budgetMs
  let delay = 500
  for (let attempt = 1; ; attempt++) {
    try {
      return await withDeadline(fn(), deadline - Date.now(), 'waiting for Firestore')
    } catch (err) {
      const timedOut = err instanceof DeadlineError
      if (!timedOut && !isRetryable(err)) throw err
      if (timedOut || Date.now() >= deadline) {
        const last = timedOut ? '' : `: ${errorMessage(err)}`
        throw new OutageError(
          `Firestore unavailable: no answer within ${Math.round(budgetMs / 1000)} s (${attempt} ${attempt === 1 ? 'attempt' : 'attempts'})${last}`,
          err,
        )
      }
      if (attempt >= maxAttempts || options.signal?.aborted)
        throw new OutageError(`Firestore unavailable after ${attempt} attempts: ${errorMessage(err)}`, err)
      options.onRetry?.(attempt, err)
      await new Promise((r) =>
        setTimeout(r, Math.min(delay * (0.75 + Math.random() / 2), Math.max(0, deadline - Date.now()))),
      )
      delay = Math.min(delay * 2, 30_000)
    }
  }
}

/** `p`, or a DeadlineError after `ms` naming `what`; `p` itself goes on unobserved (the client offers no way to cancel it). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`${what} took longer than ${Math.round(ms / 1000)} s`)),
      Math.max(0, ms),
    )
  })
  // An attempt that loses the race may still fail later: observed here, not an unhandled rejection.
  p.catch(() => {})
  return Promise.race([p, expired]).finally(() => clearTimeout(timer))
}

export class DeadlineError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DeadlineError'
  }
}

/** A persistent outage: a run ends as failed with its checkpoint; a command that had not started writing ends with exit 1. */
export class OutageError extends WardrobeError {
  constructor(message: string, cause: unknown) {
    super(
      message,
      ExitCode.FAILURE,
      'check the network path to Firestore, then run the same command again; --outage-after N waits longer',
    )
    this.name = 'OutageError'
    this.cause = cause
  }
}
