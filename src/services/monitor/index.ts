/**
 * `wardrobe monitor`: schema (the report), versions (which vocabulary version items are judged
 * by), collect (collectMonitorReport: one read-only snapshot of counts, items, runs and error
 * records), run-view (a run as monitor shows it), health (thresholds and rules, pure) and
 * commands (the flags that point a recommended command at the monitor's target; the command lines
 * themselves are engine/run-identity's). The names the command, the dashboard, the library
 * entry and the tests use.
 */
export {collectMonitorReport} from './collect'
export type {MonitorOptions} from './collect'
export {targetArgsFor} from './commands'
export {assessHealth, DEFAULT_THRESHOLDS, healthAtOrPast} from './health'
export type {HealthFacts, HealthThresholds} from './health'
export {FAIL_ON_LEVELS, MonitorReportSchema} from './schema'
export type {Counts, FailOnLevel, HealthStatus, MonitorReport, MonitorSettings, RunView} from './schema'
export {compareVersions, judgeVersion} from './versions'
export type {VersionBasis} from './versions'
