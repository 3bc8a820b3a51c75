import {Args} from '@oclif/core'
import {WardrobeCommand} from '../../cli/base-command'
import {UsageError} from '../../errors'
import {RunShowReport, showRun} from '../../services/runs'
import {renderRunShow} from '../../cli/runs-text'
import {runFlag} from '../../cli/runs-command'

export default class RunsShow extends WardrobeCommand<RunShowReport> {
  static summary =
    'One run in full: progress, control, each process (the change it applied, its limit and why, heartbeat age), partitions, the history of changes.'

  static description = `Without an id: the run active on the target, else its newest run. A change that live processes have not applied within 30 s shows as not acknowledged, with those processes.`

  static examples = [
    {description: 'The active (or newest) run', command: '<%= config.bin %> <%= command.id %>'},
    {
      description: 'A given run, as JSON',
      command: '<%= config.bin %> <%= command.id %> backfill-20261201T091200-a1b2c3 --json',
    },
  ]

  static args = {id: Args.string({description: 'Run id (or --run).'})}

  static flags = {run: runFlag}

  async run(): Promise<RunShowReport> {
    const {args, flags} = await this.parse(RunsShow)
    if (args.id && flags.run && args.id !== flags.run)
      throw new UsageError(
        `two runs given: ${args.id} and --run ${flags.run}`,
        'give the run once, as the argument or as --run',
      )
    const settings = this.settingsFrom(flags)
    const {db} = await this.open(settings, flags['log-level'])
    const report = await showRun(db, settings, {runId: args.id ?? flags.run})
    if (!this.jsonEnabled()) this.log(renderRunShow(report).join('\n'))
    return report
  }
}
