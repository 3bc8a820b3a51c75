import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import {performance} from 'node:perf_hooks'
import {z} from 'zod'

/**
 * Who holds a run, and for how long it may act on that belief.
 *
 * Two clocks, two jobs (as in Chubby and etcd leases): Firestore's clock alone judges
 * whether a holder is stale (heartbeats are server timestamps, compared with a
 * transaction's read time), so no two machines' clocks are ever compared; and each
 * holder fences itself on its own clocks, trusting its lease only until its last
 * confirmed heartbeat plus the stale limit minus a margin.
 */

export const OwnerSchema = z.object({
  user: z.string(),
  host: z.string(),
  pid: z.number().int(),
  /** Random per process: "me" is this id, never host + pid (containers repeat both). */
  processId: z.string().default(''),
  /** Boot id and pid namespace: a pid says whether a process lives only inside the same one. */
  pidSpace: z.string().nullable().default(null),
})
export type Owner = z.infer<typeof OwnerSchema>

const PROCESS_ID = crypto.randomBytes(8).toString('hex')

function readPidSpace(): string | null {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    return `${boot}/${fs.readlinkSync('/proc/self/ns/pid')}`
  } catch {
    // Not Linux (or no /proc): pids are never compared, staleness alone decides.
    return null
  }
}
const PID_SPACE = readPidSpace()

export function currentOwner(): Owner {
  let user = 'unknown'
  try {
    user = os.userInfo().username
  } catch {
    /* no passwd entry in some containers */
  }
  return {user, host: os.hostname(), pid: process.pid, processId: PROCESS_ID, pidSpace: PID_SPACE}
}

export function describeOwner(owner: Owner): string {
  return `${owner.user}@${owner.host} pid ${owner.pid}`
}

export const isMe = (owner: Owner, me: Owner = currentOwner()): boolean =>
  owner.processId !== '' && owner.processId === me.processId

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Why a running holder (a run, a partition's lease, a process of a sharded run) may be
 * taken over, or null when it counts as alive. `serverNow` is Firestore's time of the read
 * that saw `heartbeatAt` (itself a server timestamp): never this machine's clock.
 */
export function holderGone(
  holder: {owner: Owner | null; heartbeatAt: Date | null; staleAfterMs?: number | null},
  staleAfterMs: number,
  serverNow: number,
  me: Owner = currentOwner(),
): string | null {
  const {owner} = holder
  if (!owner || !holder.heartbeatAt) return 'it has no owner'
  if (isMe(owner, me)) return null
  // A pid means something only in the pid namespace it was read in (same boot, same namespace).
  if (owner.pidSpace !== null && owner.pidSpace === me.pidSpace && !pidAlive(owner.pid))
    return `its process ${owner.pid} on ${owner.host} is gone`
  const age = serverNow - holder.heartbeatAt.getTime()
  // The holder fences itself by its own limit: a reader configured with a shorter one must not cut in early.
  if (age > Math.max(staleAfterMs, holder.staleAfterMs ?? 0))
    return `its last heartbeat is ${Math.round(age / 1000)}s old by Firestore's clock`
  return null
}

export class LeaseLostError extends Error {
  constructor(what: string, why = 'taken over by another process') {
    super(`lease lost: ${what} was ${why}; this process stops without writing further`)
    this.name = 'LeaseLostError'
  }
}

/** How long a lease is trusted after its last confirmed heartbeat: the stale limit less a margin for clock rates and transit. */
export function trustMs(staleAfterMs: number): number {
  return staleAfterMs - Math.max(1000, Math.round(staleAfterMs / 4))
}

/**
 * A holder's own view of its lease. Valid until the send time of its last confirmed
 * heartbeat plus `trustMs`, measured on the monotonic clock and on the wall clock: the
 * monotonic one ignores wall-clock jumps, the wall clock counts a laptop's sleep (Linux's
 * monotonic clock stops while suspended). Either running out invalidates the lease, which
 * is the safe direction. Past it, no item write leaves the process until `renew` confirms
 * the lease again (a conditional heartbeat) or finds it lost.
 */
export class Fence {
  private monoUntil: number
  private wallUntil: number
  private renewing: Promise<void> | null = null
  lost: LeaseLostError | null = null

  constructor(
    readonly ttlMs: number,
    /** A conditional heartbeat of the lease: resolves once confirmed (it calls `confirm`), throws LeaseLostError when lost. */
    private readonly heartbeat: () => Promise<void>,
    granted = Fence.now(),
  ) {
    this.monoUntil = granted.mono + ttlMs
    this.wallUntil = granted.wall + ttlMs
  }

  /** Read before a heartbeat is sent: the server stamps it later, so the lease counts from here. */
  static now(): {mono: number; wall: number} {
    return {mono: performance.now(), wall: Date.now()}
  }

  valid(): boolean {
    return this.lost === null && performance.now() < this.monoUntil && Date.now() < this.wallUntil
  }

  /** A heartbeat sent at `sentAt` was acknowledged while the lease was still ours. */
  confirm(sentAt: {mono: number; wall: number}): void {
    this.monoUntil = Math.max(this.monoUntil, sentAt.mono + this.ttlMs)
    this.wallUntil = Math.max(this.wallUntil, sentAt.wall + this.ttlMs)
  }

  revoke(err: LeaseLostError): void {
    this.lost ??= err
  }

  /** One renewal at a time; a lost lease stays lost. */
  renew(): Promise<void> {
    if (this.lost) return Promise.reject(this.lost)
    this.renewing ??= this.heartbeat()
      .catch((err) => {
        if (err instanceof LeaseLostError) this.revoke(err)
        throw err
      })
      .finally(() => (this.renewing = null))
    return this.renewing
  }
}
