import {Flags} from '@oclif/core'
import {z} from 'zod'
import {WardrobeCommand} from './base-command'
import {BATCH_SIZE, DEFAULT_OUTAGE_AFTER_SECONDS, MIN_WAIT_SECONDS, Settings} from '../config'
import {exitCodeForRun, UsageError} from '../errors'
import {
  buildPlan,
  checkPlan,
  DEFAULT_MAX_DRIFT_PERCENT,
  Plan,
  PlanContext,
  planWarnings,
  readPlan,
  writePlan,
} from '../services/plan'
import {createProgress} from './progress'
import {formatDuration} from '../format'
import {RunStatsBaseSchema, writeReportFile} from '../services/reports'
import type {AppliedPlan, RunContext, Sharding} from '../engine/run-context'
import {resumeCommandFromArgv} from '../engine/run-identity'

type RunStats = z.infer<typeof RunStatsBaseSchema>

/**
 * Commands that write to the collection (backfill, rollback): the same batching, dry run,
 * confirmation, resume, rate, progress, signals, stats file and exit codes.
 */
export abstract class RunCommand<T extends RunStats> extends WardrobeCommand<T> {
  static writeFlags = {
    'batch-size': Flags.integer({
      summary:
        'Writes in flight at once (the unacknowledged window; BulkWriter sends 20 per batch, at most 500 at a time), or batchSize in the config file.',
      defaultHelp: BATCH_SIZE.default,
      min: BATCH_SIZE.min,
      max: BATCH_SIZE.max,
    }),
    'dry-run': Flags.boolean({default: false, summary: 'Write nothing anywhere; report what would change.'}),
    'save-plan': Flags.string({
      summary: 'With --dry-run: also write what it found, with a hash, to this file for review.',
    }),
    plan: Flags.string({
      summary:
        'Apply this reviewed plan: refused unless it was made for this command, target, ledger, vocabulary and major version, unedited; the run stops before updating more items than it counted plus --max-drift. With --dry-run: the same checks, nothing written.',
    }),
    'max-drift': Flags.integer({
      summary:
        'With --plan: how many percent more items to update than the plan counted the run may reach before it stops (exit 2).',
      defaultHelp: DEFAULT_MAX_DRIFT_PERCENT,
      min: 0,
      max: 1000,
    }),
    yes: Flags.boolean({char: 'y', default: false, summary: 'Confirm a production run without the typed prompt.'}),
    'from-start': Flags.boolean({
      default: false,
      summary: 'Ignore the checkpoint of an unfinished run and start over.',
    }),
    'max-rate': Flags.integer({
      summary:
        'Cap writes per second for the whole run, shared by its processes by their workers (or maxRate in the config file); `wardrobe runs throttle` changes it live.',
      min: 1,
    }),
    'target-latency-ms': Flags.integer({
      summary:
        'Keep the p95 write latency under this: above it each process cuts its rate, below it raises it again (or targetLatencyMs).',
      min: 1,
    }),
    window: Flags.string({
      summary:
        'Maintenance window HH:MM-HH:MM (repeatable; 22:00-06:00 spans midnight): outside every window the run pauses itself (or windows).',
      multiple: true,
    }),
    timezone: Flags.string({
      summary: "IANA time zone of --window (default: this machine's zone, or timezone in the config file).",
    }),
    'outage-after': Flags.integer({
      summary: `Seconds with writes waiting and nothing answered by Firestore before the run ends as failed with its checkpoint (default ${DEFAULT_OUTAGE_AFTER_SECONDS}, or outageAfterSeconds).`,
      min: MIN_WAIT_SECONDS,
    }),
    workers: Flags.integer({
      summary: 'Partitions worked on at once in this process (a sharded run).',
      default: 1,
      min: 1,
      max: 64,
      helpGroup: 'SHARDING',
    }),
    partitions: Flags.integer({
      summary: 'Partitions of a new sharded run (default 4 per worker of all processes).',
      min: 1,
      max: 400,
      helpGroup: 'SHARDING',
    }),
    join: Flags.string({
      summary:
        'Join (or resume) this sharded run by id; by default a process joins the running sharded run of the same command.',
      helpGroup: 'SHARDING',
    }),
    'shard-index': Flags.integer({
      summary: 'This process among --shard-count (default $CLOUD_RUN_TASK_INDEX or $JOB_COMPLETION_INDEX).',
      min: 0,
      helpGroup: 'SHARDING',
    }),
    'shard-count': Flags.integer({
      summary: 'Processes taking part (default $CLOUD_RUN_TASK_COUNT or $WARDROBE_SHARD_COUNT).',
      min: 1,
      helpGroup: 'SHARDING',
    }),
  }

  /**
   * Confirms (unless dry), connects, wires progress and Ctrl-C into the service, writes
   * the stats file and sets the exit code from the outcome.
   */
  protected async execute(
    settings: Settings,
    flags: {
      'dry-run': boolean
      'save-plan'?: string
      plan?: string
      'max-drift'?: number
      yes: boolean
      'log-level': 'error' | 'warn' | 'info' | 'debug'
      workers: number
      partitions?: number
      join?: string
      'shard-index'?: number
      'shard-count'?: number
    },
    what: {label: string; action: string; reportPrefix: string; schema: z.ZodType<T>; plan: PlanContext},
    service: (ctx: RunContext) => Promise<T>,
  ): Promise<T> {
    const [{shardFromEnvironment}, {describeTarget}] = await Promise.all([
      import('../engine/workers'),
      import('../firestore/target'),
    ])
    const sharding: Sharding = {
      workers: flags.workers,
      partitions: flags.partitions,
      join: flags.join,
      ...shardFromEnvironment({index: flags['shard-index'], count: flags['shard-count']}),
    }
    if (flags['save-plan'] && !flags['dry-run'])
      throw new UsageError(
        '--save-plan saves what a dry run found',
        `add --dry-run: ${this.config.bin} ${this.id} --dry-run --save-plan ${flags['save-plan']}`,
      )
    if (flags['max-drift'] !== undefined && !flags.plan)
      throw new UsageError(
        '--max-drift limits a run applying a plan',
        `add --plan FILE, made with ${this.config.bin} ${this.id} --dry-run --save-plan FILE`,
      )
    // Before the prompt and any connection: a refused plan writes nothing and creates no run record.
    const plan = flags.plan ? await this.appliedPlan(flags.plan, flags['max-drift'], settings, what) : undefined
    if (!flags['dry-run']) await this.confirm(settings, what.action, flags.yes)
    const {db, emulator} = await this.open(settings, flags['log-level'])
    const progress = createProgress(flags['dry-run'] ? `${what.label} (dry run)` : what.label)
    let held = false
    const signal = this.interruptSignal(() =>
      process.stderr.write(
        '\nInterrupt: stopping reads, draining in-flight writes, then checkpointing (Ctrl-C again to exit now)\n',
      ),
    )
    const stats = await service({
      db,
      emulator,
      settings,
      sharding,
      logger: this.logger,
      signal,
      command: this.resumeCommand(),
      plan,
      // Also under --json: whoever watches the process sees who paused or stopped it.
      onControl: (limit, text) => {
        const holding = limit.reason === 'paused' || limit.reason === 'window' || limit.reason === 'stopping'
        const hint = limit.reason === 'paused' ? ` (\`${this.config.bin} runs resume\` goes on)` : ''
        if (holding || held)
          process.stderr.write(`${what.label}: ${holding ? text + hint : `writing again (${text})`}\n`)
        held = holding
      },
      onStart: (info) => {
        if (info.tookOverFrom)
          this.warning(
            `took over run ${info.tookOverFrom.runId} of ${info.tookOverFrom.owner.host} pid ${info.tookOverFrom.owner.pid}: ${info.tookOverFrom.reason}`,
          )
        if (info.shardingNote) this.warning(info.shardingNote)
        if (info.controlNote) this.warning(info.controlNote)
        const shards = info.partitions
          ? ` (${info.partitions} partitions; ${info.workers} worker${info.workers === 1 ? '' : 's'} here)`
          : ''
        if (info.joined) this.note(`Joining run ${info.runId}${shards}`)
        else if (info.resumed)
          this.note(`Resuming run ${info.runId}${info.partitions ? shards : ` after ${info.cursor ?? 'the start'}`}`)
        else if (info.runId)
          this.note(`Run ${info.runId}: ${info.total} items in scope in ${describeTarget(settings)}${shards}`)
      },
      onProgress: (p) =>
        progress.update({
          done: p.counters.updated + p.counters.skipped + p.counters.failed,
          total: p.total,
          rate: p.rate,
          etaSeconds: p.etaSeconds,
          counts: {updated: p.counters.updated, skipped: p.counters.skipped, failed: p.counters.failed},
          note: p.limitText,
        }),
    })
    progress.stop()
    if (stats.status !== 'completed') stats.resumeCommand = this.resumeCommand()
    if (stats.plan) stats.plan.warnings = planWarnings(stats)
    const file = writeReportFile(settings.outputDir, what.reportPrefix, what.schema, stats)
    process.exitCode = exitCodeForRun(stats)
    let saved: Plan | undefined
    if (flags['save-plan'] && stats.status === 'completed') {
      saved = buildPlan(stats, {
        command: what.label as Plan['command'],
        toolVersion: this.config.version,
        ledgerCollection: settings.ledgerCollection,
        ...what.plan,
      })
      writePlan(flags['save-plan'], saved)
    }
    if (!this.jsonEnabled()) {
      this.log(
        `${stats.dryRun ? 'Dry run' : stats.runId ? `Run ${stats.runId}` : 'No run needed,'} ${stats.status}: scanned ${stats.scanned}, ${stats.dryRun ? 'would update' : 'updated'} ${stats.updated}, skipped ${stats.skipped}, failed ${stats.failed}, conflicts ${stats.conflicts} (${formatDuration(stats.durationSeconds)}, ${stats.rate}/s)`,
      )
      this.renderDetails(stats)
      if (stats.errorSamples.length > 0) {
        this.log(
          `Error items (${stats.failed}; left untouched${stats.dryRun ? '' : `, recorded under ${settings.ledgerCollection}/${stats.runId}/errors`}):`,
        )
        for (const e of stats.errorSamples.slice(0, 10)) this.log(`  ${e.id}: ${e.reason}`)
      }
      this.log(`Stats: ${file}`)
      if (saved) this.log(`Plan: ${flags['save-plan']} (plan hash ${saved.planHash.slice(0, 16)})`)
      if (stats.plan)
        this.log(
          `Applied plan ${flags.plan} (plan hash ${stats.plan.hash.slice(0, 16)}; planned: update ${stats.plan.planned.update}, error items ${stats.plan.planned.error}; max drift ${stats.plan.maxDriftPercent}%)`,
        )
    }
    for (const w of stats.plan?.warnings ?? []) this.warning(w)
    // On stderr, also under --json: whoever pressed Ctrl-C, or watches a failed run, needs to see why and how to go on.
    if (stats.error) process.stderr.write(`Error: ${stats.error}\n`)
    if (stats.plan?.exceeded)
      process.stderr.write(
        `Items changed since the plan was made: review a new plan (--dry-run --save-plan FILE), or accept the drift with a higher --max-drift${stats.dryRun ? '' : ' (the run resumes from its checkpoint)'}\n`,
      )
    else if (stats.resumeCommand) process.stderr.write(`Resume with: ${stats.resumeCommand}\n`)
    return stats
  }

  /** The plan file, checked against this run (exit 2 on any difference), as the run applies it. */
  private async appliedPlan(
    file: string,
    maxDrift: number | undefined,
    settings: Settings,
    what: {label: string; plan: PlanContext},
  ): Promise<AppliedPlan> {
    const plan = readPlan(file)
    checkPlan(file, plan, {
      command: what.label as Plan['command'],
      toolVersion: this.config.version,
      environment: settings.environment,
      projectId: settings.projectId,
      collection: settings.collection,
      collectionGroup: settings.group,
      ledgerCollection: settings.ledgerCollection,
      ...what.plan,
    })
    return {
      hash: plan.planHash,
      update: plan.counts.update,
      error: plan.counts.error,
      maxDriftPercent: maxDrift ?? DEFAULT_MAX_DRIFT_PERCENT,
    }
  }

  /** Command-specific lines of the human summary. */
  protected abstract renderDetails(stats: T): void

  /** The same command line, minus --from-start: re-running it resumes from the checkpoint. */
  protected resumeCommand(): string {
    return resumeCommandFromArgv(this.config.bin, this.id ?? '', this.argv)
  }
}
