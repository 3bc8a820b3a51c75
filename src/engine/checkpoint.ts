import type {DocumentReference} from 'firebase-admin/firestore'
import type {Counters, Tags, Unmapped} from './ledger/records'

/**
 * Tracks items in scan (document id) order and yields the low-water mark: the last id
 * such that every item up to and including it has finished (written and acknowledged,
 * skipped, or recorded as an error). Only that id may be checkpointed, so a resume
 * never skips an unwritten item, while writes complete out of order.
 */
export class Watermark<Outcome> {
  private ids: string[] = []
  private outcomes: (Outcome | undefined)[] = []
  private head = 0
  private base = 0
  private mark: string | null

  constructor(
    start: string | null,
    /** Called once per item, in id order, as it joins the acknowledged prefix. */
    private readonly onCommit: (outcome: Outcome) => void,
  ) {
    this.mark = start
  }

  /** Registers the next item in scan order; returns its ticket. */
  add(id: string): number {
    this.ids.push(id)
    this.outcomes.push(undefined)
    return this.base + this.ids.length - 1
  }

  complete(ticket: number, outcome: Outcome): void {
    this.outcomes[ticket - this.base] = outcome
    while (this.head < this.ids.length && this.outcomes[this.head] !== undefined) {
      this.onCommit(this.outcomes[this.head] as Outcome)
      this.mark = this.ids[this.head]
      this.head++
    }
    // Drop the committed prefix now and then so memory follows the in-flight window only.
    if (this.head > 4096 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head)
      this.outcomes = this.outcomes.slice(this.head)
      this.base += this.head
      this.head = 0
    }
  }

  /** The id to checkpoint: every item up to it is done. */
  get cursor(): string | null {
    return this.mark
  }

  get pending(): number {
    return this.ids.length - this.head
  }
}

/** A checkpoint: every item up to `cursor` is acknowledged, and the counters cover exactly those. */
export interface Progress {
  cursor: string | null
  counters: Counters
  unmapped: Unmapped
  tags: Tags
}

/** Where a job's progress lives: a run record, or one partition of a sharded run. */
export interface ProgressStore {
  /** What was saved before: the job starts after its cursor and adds to its counters. */
  readonly saved: Progress
  /** Throws LeaseLostError when the work was taken over by another worker. */
  save(progress: Progress): Promise<void>
  heartbeat(): Promise<void>
  errorRef(key: string): DocumentReference
}

/** Keys (ids, or paths in a group) from `startAfter` (exclusive) to `endAt` (inclusive); null = open. */
export interface KeyRange {
  startAfter: string | null
  endAt: string | null
}
