import {Flags} from '@oclif/core'
import {formatDuration} from '../format'
import {BackfillStats, BackfillStatsSchema} from '../services/reports'
import {loadVocabulary} from '../domain/vocabulary'
import {RunCommand} from '../cli/run-command'

export default class Backfill extends RunCommand<BackfillStats> {
  static summary = 'Add the normalized field to every wardrobe item: batched, guarded, resumable.'

  static description = `Normalizes style, occasion, mood and season of every item into a \`normalized\` map (a field-level update; original fields are never touched).
Each write is guarded by the item's last update time; items edited meanwhile are re-read and recomputed. Progress is checkpointed in the run ledger: re-running the same command resumes an interrupted run. Items already current are skipped, so re-runs are idempotent.`

  static examples = [
    {
      description: 'See what would change, without writing anything',
      command: '<%= config.bin %> <%= command.id %> --dry-run',
    },
    {
      description: 'Backfill the local emulator',
      command: '<%= config.bin %> <%= command.id %> --environment development',
    },
    {
      description: 'Production from a runbook',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --yes --json',
    },
  ]

  static flags = {
    ...RunCommand.writeFlags,
    force: Flags.boolean({default: false, summary: 'Re-normalize items that are already current.'}),
    taxonomy: Flags.string({
      summary:
        'Vocabulary file replacing the shipped one (its version becomes normalized_version), or taxonomy in the config file.',
    }),
  }

  async run(): Promise<BackfillStats> {
    const {flags} = await this.parse(Backfill)
    const settings = this.settingsFrom(flags)
    const vocabulary = loadVocabulary(flags.taxonomy ?? settings.taxonomy)
    const {runBackfill} = await import('../services/backfill')
    const options = {
      vocabulary,
      batchSize: settings.batchSize,
      dryRun: flags['dry-run'],
      force: flags.force,
      fromStart: flags['from-start'],
      maxRate: settings.maxRate,
    }
    return this.execute(
      settings,
      flags,
      {
        label: 'backfill',
        action: `backfill ${settings.collection}`,
        reportPrefix: 'backfill_stats',
        schema: BackfillStatsSchema,
        plan: {vocabulary: {version: vocabulary.version, hash: vocabulary.hash}},
      },
      (ctx) => runBackfill(ctx, options),
    )
  }

  protected renderDetails(s: BackfillStats): void {
    if (s.unmapped.length > 0) {
      this.log(
        `Unmapped values (${s.unmappedDistinct} distinct; kept as written, folded; extend the vocabulary with --taxonomy):`,
      )
      for (const u of s.unmapped.slice(0, 10)) this.log(`  ${u.field}: "${u.value}" × ${u.count}`)
    }
    if (s.placeholder > 0)
      this.log(
        `Placeholders: ${s.placeholder} items held values meaning "nothing" (NA, none, null, -, unknown), treated as missing`,
      )
    if (s.estimate)
      this.log(
        `Estimate for the real run: ${s.estimate.writes} writes, ${s.estimate.reads} reads, about ${formatDuration(s.estimate.seconds)} (${s.estimate.rateAssumption})`,
      )
  }
}
