import type {
  Firestore,
  ReadOnlyTransactionOptions,
  ReadWriteTransactionOptions,
  Transaction,
} from 'firebase-admin/firestore'
import {GrpcCode} from '../errors'

/** Whole re-runs of a transaction the server closed under it (each re-run has the client's own retries inside). */
const CLOSED_ATTEMPTS = 5

/**
 * The server closed the transaction under its caller: INVALID_ARGUMENT "Transaction is invalid
 * or closed." (the emulator, under contention: two starts at once) or "The referenced
 * transaction has expired or is no longer valid." (the service). Running it again from the
 * start is safe: it reads afresh, and each ledger transaction recognises its own write should
 * an earlier attempt have committed unseen. The client re-runs only "transaction has expired",
 * and then in the same Transaction, naming the closed one as its predecessor.
 */
export function isClosedTransaction(err: unknown): boolean {
  const {code, message} = (err ?? {}) as {code?: unknown; message?: unknown}
  return (
    code === GrpcCode.INVALID_ARGUMENT &&
    typeof message === 'string' &&
    /transaction is invalid or closed|transaction has expired|no longer valid/i.test(message)
  )
}

/**
 * `db.runTransaction`, re-run from the start in a new transaction when the server closed the
 * previous one: two operators starting at once must see one run start and the other refused,
 * never a raw INVALID_ARGUMENT.
 */
export async function runTransaction<T>(
  db: Firestore,
  fn: (tx: Transaction) => Promise<T>,
  options?: ReadWriteTransactionOptions | ReadOnlyTransactionOptions,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.runTransaction(fn, options)
    } catch (err) {
      if (attempt >= CLOSED_ATTEMPTS || !isClosedTransaction(err)) throw err
      // Contention closed it: back off a little, at random, so the contenders do not meet again.
      await new Promise((r) => setTimeout(r, 100 * attempt * (0.5 + Math.random())))
    }
  }
}
