import {Flags} from '@oclif/core'
import {RunChangeReport} from '../../services/runs'
import {RunChangeCommand, runFlag} from '../../cli/runs-command'

export default class RunsPause extends RunChangeCommand {
  static summary =
    'Pause a run: within 5 s every process of it stops writing, drains, checkpoints and waits, holding its leases.'

  static description = `Recorded on the run record (who, when, why) and applied by every process of the run, on every machine. Paused processes stay alive: their heartbeats go on, so nobody takes the run over. \`wardrobe runs resume\` lets them go on from their checkpoints. A run resumed by its command while paused stays paused.`

  static examples = [
    {
      description: 'Pause the active run on the target',
      command:
        '<%= config.bin %> <%= command.id %> --environment production --project my-app --reason "p95 latency alert"',
    },
    {
      description: 'Pause a given run',
      command: '<%= config.bin %> <%= command.id %> --run backfill-20261201T091200-a1b2c3',
    },
  ]

  static flags = {
    run: runFlag,
    reason: Flags.string({summary: 'Why: recorded with the change and shown by every paused process.'}),
  }

  async run(): Promise<RunChangeReport> {
    const {flags} = await this.parse(RunsPause)
    return this.change(flags, {action: 'pause', reason: flags.reason})
  }
}
