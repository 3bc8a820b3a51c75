/** What a writing run gets from its caller (database, target, settings, sharding, where to report) and what it reports back as it goes. */
import type {Firestore} from 'firebase-admin/firestore'
import type {Settings} from '../config'
import type {Limit} from './control'
import type {JobProgress} from './job'
import type {Acquired} from './ledger'

/** Where services and the engine log: the CLI's JSON-lines file (a winston logger fits). */
export interface Logger {
  error(message: string, meta?: object): unknown
  warn(message: string, meta?: object): unknown
  info(message: string, meta?: object): unknown
  debug(message: string, meta?: object): unknown
}

/** What a writing run needs from its caller: the database, the target, and where to report. */
export interface RunContext {
  db: Firestore
  /** The target is an emulator: unthrottled writes. */
  emulator: boolean
  settings: Pick<Settings, 'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'> &
    Partial<Pick<Settings, 'group' | 'outageAfterMs' | 'maxRate' | 'targetLatencyMs' | 'windows' | 'timezone'>>
  /** Workers, partitions, shard index/count, a run to join; absent = one worker. */
  sharding?: Sharding
  logger?: Logger
  signal?: AbortSignal
  onProgress?: (p: RunProgress) => void
  /** Called once the run is known: new, resumed, or taken over from a dead holder. */
  onStart?: (info: StartInfo) => void
  /** What limits this process changed: paused (by whom), resumed, stopping, a new limit and its reason. */
  onControl?: (limit: Limit, text: string) => void
  /** The command line that resumes the run, recorded on a new run (`wardrobe runs resume` prints it). */
  command?: string
  /** Tuning for tests and benchmarks; defaults suit production. */
  chunkSize?: number
  checkpointIntervalMs?: number
  /** How often the run's control is read (default 1 s); 0: never (the bench's cost-of-control baseline). */
  controlPollMs?: number
  /** A reviewed plan being applied (`--plan`): recorded on the run, and its drift limit stops the run. */
  plan?: AppliedPlan
}

/** What a run applying a plan needs of it (the file's checks are services/plan.ts's). */
export interface AppliedPlan {
  hash: string
  /** Items the plan counted to update and in error. */
  update: number
  error: number
  /** How far above the plan's count of items to update the run may go, in percent. */
  maxDriftPercent: number
}

/** Progress, with what limits the process (a tracked run only). */
export interface RunProgress extends JobProgress {
  limit?: Limit
  /** The limit as shown (e.g. `limit 200/s (cap)`, `paused by ops@laptop: incident`). */
  limitText?: string
}

export interface StartInfo {
  runId: string | null
  resumed: boolean
  /** Joined a sharded run other workers hold. */
  joined?: boolean
  cursor: string | null
  total: number | null
  /** Partitions of a sharded run (0: one worker). */
  partitions?: number
  workers?: number
  tookOverFrom?: Acquired['tookOverFrom']
  /** Why the requested sharding was not applied (e.g. resuming a one-worker run). */
  shardingNote?: string
  /** Why the command's own control settings are not applied (joining a live run keeps the run's). */
  controlNote?: string
}

/** How one process takes part in a run: its workers, and its place among the processes. */
export interface Sharding {
  /** Partitions this process works on at once. */
  workers: number
  /** Partitions of a new sharded run (default 4 per worker of all processes). */
  partitions?: number
  /** This process among `shardCount` (a Cloud Run task, a Kubernetes Indexed Job pod): where its workers start claiming. */
  shardIndex: number
  shardCount: number
  /** A run to join (or resume) by id. */
  join?: string
  /** How often an idle worker looks for a partition to take over. */
  pollMs?: number
}
