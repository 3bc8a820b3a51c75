import {Flags} from '@oclif/core'
import {RollbackStats, RollbackStatsSchema} from '../services/reports'
import {RunCommand} from '../cli/run-command'

export default class Rollback extends RunCommand<RollbackStats> {
  static summary = 'Undo a backfill exactly: remove the normalized field, or put back the one it replaced.'

  static description = `Deletes the \`normalized\` field (a field-level delete, guarded by each item's last update time) from items whose value this tool wrote; no other field is touched. Where a backfill replaced an earlier \`normalized\`, that earlier value is restored instead.
Without a scope every write of this tool is undone, back to the state before the first backfill. --version or --run undo one step for the items in that scope, once: a run that a completed rollback undid is not undone again. A normalized whose run_id names no backfill run in the ledger is not the tool's and is left as it is (counted as foreign). Resumable and locked like backfill.`

  static examples = [
    {description: 'See what would be removed or restored', command: '<%= config.bin %> <%= command.id %> --dry-run'},
    {description: 'Undo one run', command: '<%= config.bin %> <%= command.id %> --run backfill-20261128T101500-a1b2c3'},
    {
      description: 'Production, from a runbook',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --version 1.0 --yes',
    },
  ]

  static flags = {
    ...RunCommand.writeFlags,
    version: Flags.string({summary: 'Only items whose normalized_version is this.', exclusive: ['run']}),
    run: Flags.string({summary: 'Only items the given backfill run wrote.', exclusive: ['version']}),
  }

  async run(): Promise<RollbackStats> {
    const {flags} = await this.parse(Rollback)
    const settings = this.settingsFrom(flags)
    const options = {
      version: flags.version,
      run: flags.run,
      batchSize: settings.batchSize,
      dryRun: flags['dry-run'],
      fromStart: flags['from-start'],
      maxRate: settings.maxRate,
    }
    const {runRollback} = await import('../services/rollback')
    const scope = flags.run ? `run ${flags.run}` : flags.version ? `version ${flags.version}` : 'every backfill'
    return this.execute(
      settings,
      flags,
      {
        label: 'rollback',
        action: `roll back ${scope} on ${settings.collection}`,
        reportPrefix: 'rollback_stats',
        schema: RollbackStatsSchema,
        plan: {vocabulary: null, rollbackScope: {version: flags.version ?? null, run: flags.run ?? null}},
      },
      (ctx) => runRollback(ctx, options),
    )
  }

  protected renderDetails(s: RollbackStats): void {
    if (s.scope.targets?.length === 0) {
      this.log('Nothing to roll back: every backfill run in this scope was undone by a completed rollback already.')
      return
    }
    const verb = s.dryRun ? 'would be' : 'were'
    this.log(
      `${s.removed} items ${verb} left without normalized, ${s.restored} ${verb} given back their earlier normalized.`,
    )
    if (s.foreign > 0)
      this.log(
        `${s.foreign} items hold a normalized this tool did not write (no backfill run of the ledger): left as they are.`,
      )
  }
}
