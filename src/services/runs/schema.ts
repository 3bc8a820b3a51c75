import {z} from 'zod'
import type {Settings} from '../../config'
import {AckStatus, CONTROL_ACTIONS, CONTROL_STATES, ControlAction} from '../../engine/control'
import {CountersSchema, PARTITION_STATUSES, RUN_KINDS, RUN_STATUSES} from '../../engine/ledger'

/** The reports of `wardrobe runs …` and the control view monitor shows too. */

export type RunsSettings = Pick<
  Settings,
  'environment' | 'projectId' | 'collection' | 'ledgerCollection' | 'staleAfterMs'
> &
  Partial<Pick<Settings, 'group'>>

const iso = z.string()

/** A process of a run, from its process record. */
export const ProcessViewSchema = z.object({
  /** user@host pid N */
  name: z.string(),
  /** Not left, heartbeat fresh (by Firestore's time). */
  live: z.boolean(),
  workers: z.number().int(),
  /** The last control change it has applied. */
  seenSeq: z.number().int(),
  state: z.enum(['writing', 'paused', 'stopping']).nullable(),
  /** Its writes per second limit (null: none) and why, as it last reported them. */
  limit: z.number().nullable(),
  reason: z.string().nullable(),
  /** Acknowledged writes per second lately. */
  rate: z.number().nullable(),
  heartbeatAgeSeconds: z.number().nullable(),
  leftAt: iso.nullable(),
})
export type ProcessView = z.infer<typeof ProcessViewSchema>

const ACK_STATUSES = [
  'applied',
  'pending',
  'not acknowledged',
  'no live process',
] as const satisfies readonly AckStatus['status'][]

/** A run's live control: its state, limits, windows, and whether the live processes have applied the last change. */
export const ControlViewSchema = z.object({
  state: z.enum(CONTROL_STATES),
  /** Run-wide writes per second; null: no cap. */
  maxRate: z.number().nullable(),
  targetLatencyMs: z.number().nullable(),
  /** e.g. `22:00-06:00 Europe/Paris`; null: none (always open). */
  windows: z.string().nullable(),
  seq: z.number().int(),
  lastChange: z.string().nullable(),
  /** The last change (other than the start): applied by every live process, pending (within 30 s), `not acknowledged` (past it), or `no live process`. */
  ack: z
    .object({
      seq: z.number().int(),
      change: z.string(),
      status: z.enum(ACK_STATUSES),
      /** Live processes that have not applied it. */
      waitingOn: z.array(z.string()),
    })
    .nullable(),
  /** The live processes. */
  processes: z.array(ProcessViewSchema),
})
export type ControlView = z.infer<typeof ControlViewSchema>

export const RunSummarySchema = z.object({
  runId: z.string(),
  kind: z.enum(RUN_KINDS),
  status: z.enum(RUN_STATUSES),
  environment: z.string(),
  version: z.string().nullable(),
  startedAt: iso,
  finishedAt: iso.nullable(),
  total: z.number().int().nullable(),
  ...CountersSchema.shape,
  /** 0: one worker. */
  partitions: z.number().int(),
  /** The live processes (user@host pid N); none for an ended run, or one whose processes are gone. */
  owners: z.array(z.string()),
  /** Acknowledged writes per second of the live processes together, as they last reported. */
  rate: z.number(),
  control: ControlViewSchema,
  error: z.string().nullable(),
})
export type RunSummary = z.infer<typeof RunSummarySchema>

const TargetFieldsSchema = z.object({
  environment: z.string(),
  projectId: z.string(),
  collection: z.string(),
  collectionGroup: z.boolean(),
  ledgerCollection: z.string(),
})

/** `wardrobe runs list --json`. */
export const RunListReportSchema = TargetFieldsSchema.extend({
  kind: z.literal('runs'),
  /** The run holding the target's lock. */
  activeRunId: z.string().nullable(),
  /** Newest first. */
  runs: z.array(RunSummarySchema),
})
export type RunListReport = z.infer<typeof RunListReportSchema>

/** `wardrobe runs show --json`. */
export const RunShowReportSchema = TargetFieldsSchema.extend({
  kind: z.literal('run'),
  active: z.boolean(),
  run: RunSummarySchema,
  /** Every process that took part, live or not. */
  processes: z.array(ProcessViewSchema),
  /** A sharded run's partitions by status. */
  partitions: z.record(z.enum(PARTITION_STATUSES), z.number().int()).nullable(),
  /** The recorded changes (bounded), oldest first. */
  changes: z.array(
    z.object({
      seq: z.number().int(),
      action: z.enum(CONTROL_ACTIONS),
      by: z.string(),
      at: iso,
      reason: z.string().nullable(),
      maxRate: z.number().nullable().optional(),
      text: z.string(),
    }),
  ),
  /** The command line that resumes the run. */
  command: z.string().nullable(),
  /** The reviewed plan (`--plan`) the run applies: its planHash (null: none). */
  planHash: z.string().nullable(),
})
export type RunShowReport = z.infer<typeof RunShowReportSchema>

export const CHANGE_ACTIONS = ['pause', 'resume', 'stop', 'throttle'] as const satisfies readonly Exclude<
  ControlAction,
  'start'
>[]
export type ChangeAction = (typeof CHANGE_ACTIONS)[number]

/** `wardrobe runs pause|resume|stop|throttle --json`. */
export const RunChangeReportSchema = z.object({
  kind: z.literal('run-change'),
  runId: z.string(),
  status: z.enum(RUN_STATUSES),
  action: z.enum(CHANGE_ACTIONS),
  /** False: the run already was so; nothing was recorded. */
  changed: z.boolean(),
  state: z.enum(CONTROL_STATES),
  maxRate: z.number().nullable(),
  before: z.object({state: z.enum(CONTROL_STATES), maxRate: z.number().nullable()}),
  /** The recorded change, as `runs show` lists it. */
  change: z.string().nullable(),
  reason: z.string().nullable(),
  /** Live processes: each applies the change within seconds. */
  live: z.array(z.string()),
  /** The command line that resumes the run once no process of it runs (null if the run did not record it). */
  command: z.string().nullable(),
})
export type RunChangeReport = z.infer<typeof RunChangeReportSchema>
