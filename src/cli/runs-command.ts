import {Flags} from '@oclif/core'
import {BaseFlags, WardrobeCommand} from './base-command'
import {changeRun, ChangeRequest, RunChangeReport} from '../services/runs'
import {renderChange} from './runs-text'

/** `--run ID` of every `wardrobe runs` command. */
export const runFlag = Flags.string({
  summary: 'The run (default: the run active on the target, i.e. holding its lock).',
})

/** `wardrobe runs pause|resume|stop|throttle`: one change to a run's live control, printed as what it changed. */
export abstract class RunChangeCommand extends WardrobeCommand<RunChangeReport> {
  static enableJsonFlag = true

  /** `confirm`: ask the production confirmation (or take --yes) once the run is known. */
  protected async change(
    flags: BaseFlags<typeof WardrobeCommand> & {run?: string; yes?: boolean},
    req: Omit<ChangeRequest, 'runId'>,
    confirm = false,
  ): Promise<RunChangeReport> {
    const settings = this.settingsFrom(flags)
    const {db} = await this.open(settings, flags['log-level'])
    const report = await changeRun(
      db,
      settings,
      {...req, runId: flags.run},
      {confirm: confirm ? (what) => this.confirm(settings, what, flags.yes ?? false) : undefined},
    )
    this.logger?.info('run control', report)
    if (!this.jsonEnabled()) this.log(renderChange(report).join('\n'))
    return report
  }
}
