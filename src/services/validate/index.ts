/**
 * `wardrobe validate`: schema (the report), checks (pure, per item), sampling (random samples
 * over the key space), tally (bounded running totals) and run (runValidation: reads, checks,
 * semantic queries). The names the command, the library entry and the tests use.
 */
export {checkItem} from './checks'
export {DEFAULT_SAMPLE_SIZE, runValidation} from './run'
export type {ValidationOptions, ValidationProgress} from './run'
export {ValidationReportSchema} from './schema'
export type {ValidationReport} from './schema'
export {FAILURE_LIST_CAP} from './tally'
