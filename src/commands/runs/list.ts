import {Flags} from '@oclif/core'
import {WardrobeCommand} from '../../cli/base-command'
import {listRuns, RunListReport} from '../../services/runs'
import {renderRunList} from '../../cli/runs-text'

export default class RunsList extends WardrobeCommand<RunListReport> {
  static summary =
    "Runs of the target in the ledger: status, progress, live processes, rate, and each running one's control and limits."

  static examples = [
    {description: 'Runs of the local emulator', command: '<%= config.bin %> <%= command.id %>'},
    {
      description: 'Production, as JSON',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --json',
    },
  ]

  static flags = {
    limit: Flags.integer({default: 20, min: 1, summary: 'Newest runs listed.'}),
  }

  async run(): Promise<RunListReport> {
    const {flags} = await this.parse(RunsList)
    const settings = this.settingsFrom(flags)
    const {db} = await this.open(settings, flags['log-level'])
    const report = await listRuns(db, settings, {limit: flags.limit})
    if (!this.jsonEnabled()) this.log(renderRunList(report).join('\n'))
    return report
  }
}
