/**
 * `wardrobe runs …`: schema (the reports and the control view), view (records as shown, also
 * monitor's control view) and actions (listRuns, showRun, changeRun). The names the commands,
 * the text renderer, monitor and the tests use.
 */
export {changeRun, listRuns, parseMaxRate, showRun} from './actions'
export type {ChangeRequest} from './actions'
export {ControlViewSchema, RunChangeReportSchema, RunListReportSchema, RunShowReportSchema} from './schema'
export type {
  ControlView,
  ProcessView,
  RunChangeReport,
  RunListReport,
  RunShowReport,
  RunSummary,
  RunsSettings,
} from './schema'
export {controlView} from './view'
