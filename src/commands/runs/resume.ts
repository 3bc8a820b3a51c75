import {Flags} from '@oclif/core'
import {RunChangeReport} from '../../services/runs'
import {RunChangeCommand, runFlag} from '../../cli/runs-command'

export default class RunsResume extends RunChangeCommand {
  static summary = 'Resume a paused run: within 5 s every process of it writes again from its checkpoints.'

  static description = `A run with no live process (interrupted, failed, or its processes gone) is not started by this: the command says so and prints the command line that resumes it.`

  static examples = [
    {
      description: 'Resume the active run on the target',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app',
    },
  ]

  static flags = {
    run: runFlag,
    reason: Flags.string({summary: 'Why: recorded with the change.'}),
  }

  async run(): Promise<RunChangeReport> {
    const {flags} = await this.parse(RunsResume)
    return this.change(flags, {action: 'resume', reason: flags.reason})
  }
}
