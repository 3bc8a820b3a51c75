/**
 * The library entry point (`main` in package.json): the services the CLI runs, for scripts and
 * other tools. Each takes a Firestore handle and settings, never prints, and returns a typed report.
 */
export {runBackfill} from './services/backfill'
export type {BackfillOptions} from './services/backfill'
export {runRollback} from './services/rollback'
export type {RollbackOptions} from './services/rollback'
export {collectMonitorReport} from './services/monitor'
export type {MonitorOptions, MonitorReport} from './services/monitor'
export {runValidation} from './services/validate'
export type {ValidationOptions, ValidationReport} from './services/validate'
export type {Logger, RunContext, RunProgress} from './engine/run-context'
export type {BackfillStats, RollbackStats} from './services/reports'
export {loadVocabulary, Vocabulary, DEFAULT_TAXONOMY_FILE} from './domain/vocabulary'
export {normalizeItem} from './domain/normalization'
export type {NormalizeOutcome, NormalizedValues} from './domain/normalization'
export {ExitCode, WardrobeError} from './errors'
