import {Flags} from '@oclif/core'
import {RunChangeReport} from '../../services/runs'
import {RunChangeCommand, runFlag} from '../../cli/runs-command'

export default class RunsStop extends RunChangeCommand {
  static summary =
    'Stop a run: what Ctrl-C does, in every process of it on every machine (drain, checkpoint, exit 130).'

  static description = `The run ends interrupted; re-running the command that started it resumes it from its checkpoints. Production asks for the project id to be typed (or --yes).`

  static examples = [
    {
      description: 'Stop the active run on the target',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --reason "incident 4711"',
    },
    {
      description: 'From a runbook',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app --yes --json',
    },
  ]

  static flags = {
    run: runFlag,
    reason: Flags.string({summary: 'Why: recorded with the change and shown by every process as it stops.'}),
    yes: Flags.boolean({char: 'y', default: false, summary: 'Confirm a production stop without the typed prompt.'}),
  }

  async run(): Promise<RunChangeReport> {
    const {flags} = await this.parse(RunsStop)
    return this.change(flags, {action: 'stop', reason: flags.reason}, true)
  }
}
