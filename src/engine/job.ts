import {
  DocumentData,
  DocumentReference,
  DocumentSnapshot,
  FieldValue,
  Firestore,
  Query,
  UpdateData,
} from 'firebase-admin/firestore'
import {KeyRange, ProgressStore, Watermark} from './checkpoint'
import {CredentialsError, errorMessage} from '../errors'
import {LeaseLostError} from './lease'
import {Counters, Tags, Unmapped, zeroCounters} from './ledger/records'
import {scanBatches} from './scan'
import {withRetry} from '../firestore/retry'
import {itemKey, refKey, Target} from '../firestore/target'
import {GuardedWriter} from './writer'

/** What to do with one item, decided from the document as read. */
export type Plan =
  /** `own`: the item already holds this run's write of its current content. */
  | {action: 'skip'; unmapped?: string[]; own?: boolean; tag?: string}
  | {action: 'error'; field: string | null; reason: string}
  | {action: 'write'; data: UpdateData<DocumentData>; unmapped?: string[]; tag?: string}

export interface ErrorSample {
  id: string
  field: string | null
  reason: string
}

export interface JobProgress {
  counters: Counters
  total: number | null
  /** Items per second since this process started. */
  rate: number
  etaSeconds: number | null
  inFlight: number
}

/** Progress since `startedAt`, when `startScanned` items were already counted (a resumed run's). */
export function measureProgress(
  counters: Counters,
  total: number | null,
  startedAt: number,
  startScanned: number,
  inFlight: number,
): JobProgress {
  const elapsed = (Date.now() - startedAt) / 1000
  const rate = elapsed > 0 ? (counters.scanned - startScanned) / elapsed : 0
  const left = total === null ? null : Math.max(0, total - counters.scanned)
  return {counters, total, rate, etaSeconds: left === null || rate <= 0 ? null : left / rate, inFlight}
}

export interface Hold {
  readonly holding: boolean
  whenWriting(signal?: AbortSignal): Promise<void>
}

export interface JobSpec {
  db: Firestore
  target: Target
  select: string[]
  filter?: (q: Query) => Query
  plan: (doc: DocumentSnapshot) => Plan
  dryRun: boolean
  /** For non-dry runs: where progress is checkpointed. */
  store?: ProgressStore
  range?: KeyRange
  writer?: GuardedWriter
  total: number | null
  chunkSize?: number
  checkpointIntervalMs?: number
  maxConflictRetries?: number
  signal?: AbortSignal
  /** The run's live control: while it holds (paused, outside its windows), no new item starts; writes in flight drain. */
  control?: Hold
  onProgress?: (p: JobProgress) => void
  onEvent?: (event: string, detail: Record<string, unknown>) => void
  errorSampleSize?: number
  /**
   * Asked as each item is first planned a write (in a dry run too), with how many items the run
   * has planned a write so far, its checkpoint's included: a reason stops the run before that
   * write is issued (an applied plan's drift limit, run.ts).
   */
  admitWrite?: (writes: number) => string | null
}

export interface JobResult {
  status: 'completed' | 'interrupted' | 'failed'
  counters: Counters
  unmapped: Unmapped
  /** Per-kind counts of items (e.g. rollback's restored / removed / foreign). */
  tags: Tags
  errorSamples: ErrorSample[]
  cursor: string | null
  error?: string
  /** Another worker took this job's partition over (its lease went stale): not a failure of the run. */
  leaseLost?: boolean
  /** Firestore rejected the credentials: recording the end would be rejected too. */
  credentialsRejected?: boolean
}

/**
 * Documents per query. Each query has a fixed cost (on the emulator about that of reading the
 * whole collection: count and query both walk it), so chunks are large; positions stay
 * resumable through the checkpoint, and the scan shortens later chunks to stay within
 * RunQuery's deadline at slow (throttled) rates.
 */
export const DEFAULT_CHUNK_SIZE = 100_000

type Outcome = {counter: 'updated' | 'skipped' | 'failed'; conflicts: number; unmapped?: string[]; tag?: string}

/**
 * The engine every writing command shares: scan in id order from the checkpoint, plan
 * each item, write it guarded by its read time (re-read and re-plan on conflict), and
 * checkpoint the low-water mark of acknowledged items with counters that match it.
 */
export async function runJob(spec: JobSpec): Promise<JobResult> {
  const {db, store, writer} = spec
  if (!spec.dryRun && (!store || !writer)) throw new Error('a non-dry job needs a progress store and a writer')
  const saved = store?.saved
  const startAfter = saved?.cursor ?? spec.range?.startAfter ?? null
  const committed: Counters = saved ? {...saved.counters} : zeroCounters()
  const committedUnmapped: Unmapped = saved ? {...saved.unmapped} : {}
  const committedTags: Tags = saved ? {...saved.tags} : {}
  const live: Counters = {...committed}
  let writes = committed.updated
  const errorSamples: ErrorSample[] = []
  const sampleSize = spec.errorSampleSize ?? 100
  const watermark = new Watermark<Outcome>(startAfter, (o) => {
    committed.scanned++
    committed[o.counter]++
    committed.conflicts += o.conflicts
    if (o.unmapped) for (const key of o.unmapped) committedUnmapped[key] = (committedUnmapped[key] ?? 0) + 1
    if (o.tag) committedTags[o.tag] = (committedTags[o.tag] ?? 0) + 1
  })
  // Items handed to `handle` and not yet settled (a counter: no per-item bookkeeping objects).
  let active = 0
  let onIdle: (() => void) | null = null
  let fatal: Error | null = null
  const startedAt = Date.now()
  const startScanned = live.scanned
  const emit = spec.onEvent ?? (() => {})

  const progress = (): JobProgress => measureProgress({...live}, spec.total, startedAt, startScanned, active)
  const progressTimer = spec.onProgress ? setInterval(() => spec.onProgress?.(progress()), 250) : undefined

  // Nothing to save until the mark moves: until then a checkpoint is a heartbeat.
  let lastSaved: string | null = startAfter
  let saving: Promise<void> = Promise.resolve()
  const checkpoint = (): Promise<void> => {
    if (!store) return Promise.resolve()
    saving = saving.then(async () => {
      const cursor = watermark.cursor
      if (cursor === lastSaved) return store.heartbeat()
      await store.save({cursor, counters: {...committed}, unmapped: {...committedUnmapped}, tags: {...committedTags}})
      lastSaved = cursor
    })
    return saving
  }
  const checkpointTimer = store
    ? setInterval(() => {
        checkpoint().catch((err) => {
          // Another worker owns this work now: stop reading; in-flight writes stay guarded.
          if (err instanceof LeaseLostError) fatal ??= err
          emit('checkpoint-failed', {error: errorMessage(err)})
        })
      }, spec.checkpointIntervalMs ?? 2000)
    : undefined

  const settle = (ticket: number, outcome: Outcome) => {
    live[outcome.counter]++
    live.conflicts += outcome.conflicts
    watermark.complete(ticket, outcome)
  }

  /** An error item: sampled, recorded under the run (unless dry), counted as failed; the run goes on. */
  const recordError = async (
    ref: DocumentReference,
    ticket: number,
    field: string | null,
    reason: string,
    conflicts: number,
  ): Promise<void> => {
    const key = refKey(ref, spec.target)
    if (errorSamples.length < sampleSize) errorSamples.push({id: key, field, reason})
    if (!spec.dryRun) await writer!.set(store!.errorRef(key), {itemId: key, field, reason, at: new Date()})
    settle(ticket, {counter: 'failed', conflicts})
  }

  /**
   * Executes a plan; on a precondition conflict reads the item again and re-plans. Returns a
   * promise only while a write is outstanding: skips settle at once, with no promise per item.
   * The write's callback keeps the reference only, so the snapshot read can be collected young.
   */
  const handle = (snapshot: DocumentSnapshot, ticket: number, conflicts: number): Promise<void> | void => {
    const plan = spec.plan(snapshot)
    // After a conflict, the run's own write means a retried write whose first attempt landed: an update.
    if (plan.action === 'skip' && plan.own && conflicts > 0)
      return settle(ticket, {counter: 'updated', conflicts: conflicts - 1, unmapped: plan.unmapped, tag: plan.tag})
    if (plan.action === 'skip') {
      // Written before a crash past the checkpoint: not an update of this process, but a write of the run all the same.
      if (plan.own) writes++
      return settle(ticket, {counter: 'skipped', conflicts, unmapped: plan.unmapped, tag: plan.tag})
    }
    const {ref} = snapshot
    if (plan.action === 'error') return recordError(ref, ticket, plan.field, plan.reason, conflicts)
    // Thrown, the item stays unsettled: the checkpoint ends before it, the scan stops, writes in flight drain.
    const refused = conflicts === 0 ? spec.admitWrite?.(++writes) : null
    if (refused) throw new Error(refused)
    const written: Outcome = {counter: 'updated', conflicts, unmapped: plan.unmapped, tag: plan.tag}
    if (spec.dryRun) return settle(ticket, written)
    return writer!.update(ref, plan.data, snapshot.updateTime!).then((result) => {
      if (result === 'written') return settle(ticket, written)
      // Deleted by the app since it was read: nothing to do.
      if (result === 'missing') return settle(ticket, {counter: 'skipped', conflicts})
      // Refused for its content (e.g. too deeply nested): this item only.
      if (typeof result === 'object') return recordError(ref, ticket, null, result.rejected, conflicts)
      return replan(ref, ticket, conflicts + 1, plan.data, written)
    })
  }

  const replan = async (
    ref: DocumentReference,
    ticket: number,
    conflicts: number,
    sent: UpdateData<DocumentData>,
    written: Outcome,
  ): Promise<void> => {
    // A writer that lost its lease (or gave up) re-reads nothing and writes nothing more.
    if (writer?.stopped) throw writer.stopped
    emit('conflict', {id: ref.id, attempt: conflicts})
    if (conflicts > (spec.maxConflictRetries ?? 20))
      return recordError(ref, ticket, null, `still changing after ${conflicts} re-reads; left for a re-run`, conflicts)
    const fresh = await reread(ref, spec.select)
    if (!fresh.exists) return settle(ticket, {counter: 'skipped', conflicts})
    // The item holds exactly what was sent: a retried write whose first attempt landed unseen. Planning
    // again would take the next step (a rollback would undo what it just restored).
    if (holds(fresh, sent)) return settle(ticket, {...written, conflicts: conflicts - 1})
    return handle(fresh, ticket, conflicts)
  }

  const settled = () => {
    if (--active === 0 && onIdle) {
      const idle = onIdle
      onIdle = null
      idle()
    }
  }
  const failed = (err: Error) => {
    fatal ??= err
    settled()
  }
  /** Hands one item to `handle`: active until it settles, at once for a skip or a dry run. */
  const start = (doc: DocumentSnapshot, ticket: number): void => {
    let pending: Promise<void> | void
    try {
      pending = handle(doc, ticket, 0)
    } catch (err) {
      return failed(err as Error)
    }
    if (pending) pending.then(settled, failed)
    else settled()
  }

  let status: JobResult['status'] = 'completed'
  const signal = writer?.until(spec.signal) ?? spec.signal
  try {
    scan: for await (const docs of scanBatches(db, spec.target, {
      select: spec.select,
      filter: spec.filter,
      startAfter,
      endAt: spec.range?.endAt ?? null,
      chunkSize: spec.chunkSize ?? DEFAULT_CHUNK_SIZE,
      signal,
      onRetry: (attempt, err) => {
        writer?.readFailed(err)
        emit('read-retry', {attempt, error: errorMessage(err)})
      },
    })) {
      writer?.answered()
      for (const doc of docs) {
        // Held, the checkpoint timer goes on: it saves what drains, then heartbeats keep the lease.
        if (spec.control?.holding) await spec.control.whenWriting(signal)
        if (fatal || signal?.aborted) break scan
        live.scanned++
        active++
        start(doc, watermark.add(itemKey(doc, spec.target)))
        if (writer?.full) await writer.ready()
        if (writer?.stopped) break scan
      }
    }
    if (spec.signal?.aborted) status = 'interrupted'
  } catch (err) {
    fatal ??= err as Error
  }
  // Drain: every write issued is acknowledged (or failed) before the final checkpoint. BulkWriter
  // sends a partial batch only when flushed, and a conflict's re-write may enqueue more. After an
  // outage the rest is abandoned: the checkpoint covers acknowledged items only.
  while (active > 0 && !writer?.stopped) {
    if (writer) await writer.drain().catch((err) => (fatal ??= err))
    if (active > 0) await new Promise<void>((r) => ((onIdle = r), setTimeout(r, 50)))
  }
  if (writer) await writer.drain().catch((err) => (fatal ??= err))
  clearInterval(progressTimer)
  clearInterval(checkpointTimer)
  await (writer?.unlessStopped(saving) ?? saving).catch(() => {})
  fatal ??= writer?.stopped ?? null
  if (fatal) status = 'failed'
  spec.onProgress?.(progress())
  return {
    status,
    counters: store ? {...committed} : {...live},
    unmapped: committedUnmapped,
    tags: committedTags,
    errorSamples,
    cursor: watermark.cursor,
    error: fatal ? errorMessage(fatal) : undefined,
    leaseLost: fatal instanceof LeaseLostError,
    credentialsRejected: fatal instanceof CredentialsError,
  }
}

/** Whether the document holds every field of `data` as written (a deleted field: absent). */
export function holds(doc: DocumentSnapshot, data: UpdateData<DocumentData>): boolean {
  return Object.entries(data).every(([field, value]) =>
    value instanceof FieldValue
      ? value.isEqual(FieldValue.delete()) && doc.get(field) === undefined
      : sameValue(doc.get(field), value),
  )
}

/** Firestore values compared as Firestore compares them: Timestamps, GeoPoints and references by value, maps by keys. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return Number.isNaN(a) && Number.isNaN(b)
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b)
  const eq = (a as {isEqual?: (o: unknown) => boolean}).isEqual
  if (typeof eq === 'function') return a.constructor === b.constructor && eq.call(a, b)
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.prototype.hasOwnProperty.call(b, k) &&
        sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  )
}

async function reread(ref: DocumentReference, select: string[]): Promise<DocumentSnapshot> {
  const [snap] = await withRetry(() => ref.firestore.getAll(ref, {fieldMask: select}))
  return snap
}
