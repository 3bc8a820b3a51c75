import {Flags} from '@oclif/core'
import {WardrobeCommand} from '../base-command'
import {runBackfill} from '../lib/backfill'
import {ExitCode} from '../lib/errors'
import {createProgress, formatDuration} from '../lib/progress'
import {BackfillStats, BackfillStatsSchema, writeReportFile} from '../lib/reports'
import {loadVocabulary} from '../lib/vocabulary'

export default class Backfill extends WardrobeCommand<BackfillStats> {
  static summary = 'Add the normalized field to every wardrobe item: batched, guarded, resumable.'

  static description = `Normalizes style, occasion, mood and season of every item into a \`normalized\` map (a field-level update; original fields are never touched).
Each write is guarded by the item's last update time; items edited meanwhile are re-read and recomputed. Progress is checkpointed in the run ledger: re-running the same command resumes an interrupted run. Items already current are skipped, so re-runs are idempotent.`

  static examples = [
    {description: 'See what would change, without writing anything', command: '<%= config.bin %> <%= command.id %> --dry-run'},
    {description: 'Backfill the local emulator', command: '<%= config.bin %> <%= command.id %> --environment development'},
    {description: 'Production from a runbook', command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --yes --json'},
  ]

  static flags = {
    'batch-size': Flags.integer({summary: 'Writes in flight at once (the unacknowledged window).', default: 500, min: 1, max: 10_000}),
    'dry-run': Flags.boolean({default: false, summary: 'Write nothing anywhere; report what would change and an estimate.'}),
    yes: Flags.boolean({char: 'y', default: false, summary: 'Confirm a production run without the typed prompt.'}),
    'from-start': Flags.boolean({default: false, summary: 'Ignore the checkpoint of an unfinished run and start over.'}),
    force: Flags.boolean({default: false, summary: 'Re-normalize items that are already current.'}),
    'max-rate': Flags.integer({summary: 'Cap writes per second.', min: 1}),
    taxonomy: Flags.string({summary: 'Vocabulary file replacing the shipped one (its version becomes normalized_version).'}),
  }

  async run(): Promise<BackfillStats> {
    const {flags} = await this.parse(Backfill)
    const settings = this.settingsFrom(flags)
    const vocabulary = loadVocabulary(flags.taxonomy ?? settings.taxonomy)
    if (!flags['dry-run']) await this.confirm(settings, `backfill ${settings.collection}`, flags.yes)
    const {db, emulator} = await this.open(settings, flags['log-level'])

    const progress = createProgress(flags['dry-run'] ? 'dry run' : 'backfill', {enabled: true})
    const signal = this.interruptSignal(() => process.stderr.write('\nInterrupt: stopping reads, draining in-flight writes, then checkpointing (Ctrl-C again to exit now)\n'))
    const stats = await runBackfill(
      {
        db,
        emulator,
        settings,
        logger: this.logger,
        signal,
        onStart: (info) => {
          if (info.tookOverFrom) this.warn(`took over run ${info.tookOverFrom.runId} of ${info.tookOverFrom.owner.host} pid ${info.tookOverFrom.owner.pid}: ${info.tookOverFrom.reason}`)
          if (info.resumed) this.note(`Resuming run ${info.runId} after ${info.cursor ?? 'the start'}`)
          else if (info.runId) this.note(`Run ${info.runId}: ${info.total} items in ${settings.collection}`)
        },
        onProgress: (p) => progress.update({done: p.counters.scanned, total: p.total, rate: p.rate, etaSeconds: p.etaSeconds, counts: {updated: p.counters.updated, skipped: p.counters.skipped, failed: p.counters.failed}}),
      },
      {vocabulary, batchSize: flags['batch-size'], dryRun: flags['dry-run'], force: flags.force, fromStart: flags['from-start'], maxRate: flags['max-rate'] ?? settings.maxRate},
    )
    progress.stop()
    if (stats.status !== 'completed') stats.resumeCommand = this.resumeCommand()
    const file = writeReportFile(settings.outputDir, 'backfill_stats', BackfillStatsSchema, stats)
    this.render(stats, file)
    process.exitCode = exitCodeFor(stats)
    return stats
  }

  private resumeCommand(): string {
    const args = this.argv.filter((a) => a !== '--from-start')
    return [this.config.bin, this.id ?? 'backfill', ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
  }

  private render(s: BackfillStats, file: string): void {
    if (this.jsonEnabled()) return
    const verb = s.dryRun ? 'would update' : 'updated'
    this.log(`${s.dryRun ? 'Dry run' : `Run ${s.runId}`} ${s.status}: scanned ${s.scanned}, ${verb} ${s.updated}, skipped ${s.skipped}, failed ${s.failed}, conflicts ${s.conflicts} (${formatDuration(s.durationSeconds)}, ${s.rate}/s)`)
    if (s.unmapped.length > 0) {
      this.log(`Unmapped values (${s.unmappedDistinct} distinct; extend the vocabulary with --taxonomy):`)
      for (const u of s.unmapped.slice(0, 10)) this.log(`  ${u.field}: "${u.value}" × ${u.count}`)
    }
    if (s.errorSamples.length > 0) {
      this.log(`Error items (${s.failed}; left untouched${s.dryRun ? '' : `, recorded under ${s.runId}`}):`)
      for (const e of s.errorSamples.slice(0, 10)) this.log(`  ${e.id}: ${e.reason}`)
    }
    if (s.estimate) this.log(`Estimate for the real run: ${s.estimate.writes} writes, ${s.estimate.reads} reads, about ${formatDuration(s.estimate.seconds)} (${s.estimate.rateAssumption})`)
    if (s.error) this.log(`Error: ${s.error}`)
    if (s.resumeCommand) this.log(`Resume with: ${s.resumeCommand}`)
    this.log(`Stats: ${file}`)
  }
}

export function exitCodeFor(s: {status: string; failed: number}): number {
  if (s.status === 'interrupted') return ExitCode.INTERRUPTED
  if (s.status === 'failed') return ExitCode.FAILURE
  return s.failed > 0 ? ExitCode.ITEMS_FAILED : ExitCode.OK
}
