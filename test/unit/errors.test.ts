/**
 * Exit-code policy: every outcome → exit code decision of src/errors.ts against the table of
 * SPEC and README "Exit codes" (0 ok, 1 failure, 2 usage, 3 items failed, 4 check failed, 130 interrupted).
 */
import fs from 'node:fs'
import path from 'node:path'
import {
  CredentialsError,
  exitCodeForChecks,
  exitCodeForError,
  exitCodeForHealth,
  exitCodeForRun,
  exitCodeForValidation,
  ExitCode,
  UsageError,
  WardrobeError,
} from '../../src/errors'

/** The codes of README's "Exit codes" table (the README states SPEC's table for users). */
function readmeCodes(): number[] {
  const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8')
  const section = readme.split('## Exit codes')[1].split('\n## ')[0]
  return [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]))
}

describe('exit codes', () => {
  it('are the codes of the documented table', () => {
    expect(Object.values(ExitCode).sort((a, b) => a - b)).toEqual(readmeCodes())
    expect(ExitCode).toEqual({OK: 0, FAILURE: 1, USAGE: 2, ITEMS_FAILED: 3, CHECK_FAILED: 4, INTERRUPTED: 130})
  })

  it.each([
    ['completed', 0, 0],
    ['completed', 7, 3],
    ['failed', 0, 1],
    ['failed', 7, 1],
    ['interrupted', 0, 130],
    ['interrupted', 7, 130],
  ])('a run %s with %i error items exits %i', (status, failed, code) => {
    expect(exitCodeForRun({status, failed})).toBe(code)
  })

  it("a run stopped at its plan's drift limit exits 2 (a safety refusal), whatever its status", () => {
    const exceeded = 'plan drift: 211 items to update so far, the plan counted 200'
    expect(exitCodeForRun({status: 'failed', failed: 3, plan: {exceeded}})).toBe(2)
    expect(exitCodeForRun({status: 'completed', failed: 3, plan: {exceeded}})).toBe(2)
    expect(exitCodeForRun({status: 'failed', failed: 0, plan: {exceeded: null}})).toBe(1)
  })

  it.each([
    ['passed', 0],
    ['failed', 4],
    ['no-data', 4],
    ['error', 1],
    ['interrupted', 130],
  ])('a validation %s exits %i', (status, code) => {
    expect(exitCodeForValidation({status})).toBe(code)
  })

  it('monitor exits 4 only when health is at or past --fail-on', () => {
    expect(exitCodeForHealth(true)).toBe(4)
    expect(exitCodeForHealth(false)).toBe(0)
  })

  it('doctor exits 4 when a check failed', () => {
    expect(exitCodeForChecks({ok: false})).toBe(4)
    expect(exitCodeForChecks({ok: true})).toBe(0)
  })

  it.each<[string, Error, number]>([
    ['a usage, config or safety refusal', new UsageError('no emulator'), 2],
    ['an error the operator can act on', new WardrobeError('outage'), 1],
    ['rejected credentials', new CredentialsError('expired'), 1],
    ['a bad flag (oclif)', Object.assign(new Error('Unexpected argument'), {oclif: {exit: 2}}), 2],
    ['an unexpected error', new Error('boom'), 1],
  ])('%s exits %i', (_, err, code) => {
    expect(exitCodeForError(err)).toBe(code)
  })
})
