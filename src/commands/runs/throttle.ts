import {Flags} from '@oclif/core'
import {parseMaxRate, RunChangeReport} from '../../services/runs'
import {RunChangeCommand, runFlag} from '../../cli/runs-command'

export default class RunsThrottle extends RunChangeCommand {
  static summary = 'Set the run-wide write rate of a run (or lift it): every process takes its share within 5 s.'

  static description = `The limit is for the whole run: each live process takes the share that matches its workers. Below it, each process still adapts to Firestore's pushback and to write latency.`

  static examples = [
    {
      description: 'Slow the active run down to 200 writes per second',
      command: '<%= config.bin %> <%= command.id %> --max-rate 200 --reason "app latency"',
    },
    {description: 'Lift the limit', command: '<%= config.bin %> <%= command.id %> --max-rate off'},
  ]

  static flags = {
    run: runFlag,
    'max-rate': Flags.string({
      required: true,
      summary: 'Writes per second for the whole run (an integer of at least 1), or off.',
    }),
    reason: Flags.string({summary: 'Why: recorded with the change.'}),
  }

  async run(): Promise<RunChangeReport> {
    const {flags} = await this.parse(RunsThrottle)
    return this.change(flags, {action: 'throttle', maxRate: parseMaxRate(flags['max-rate']), reason: flags.reason})
  }
}
