import {WardrobeCommand} from '../cli/base-command'
import type {DoctorReport} from '../services/doctor'
import {exitCodeForChecks} from '../errors'
import {formatDuration} from '../format'

const MARK = {pass: '✓', fail: '✗', warn: '!', skipped: '-'} as const

export default class Doctor extends WardrobeCommand<DoctorReport> {
  static summary =
    'Preflight an environment: config, credentials, reachability, read and ledger write access, clock, indexes, Node, and what a backfill would take and cost.'

  static description = `Each check is one line, ✓ passed, ✗ failed (with the fix), ! a warning, - skipped (it needs a check that failed, or does not apply). Reads one item and a count() of the target; writes only a probe document under the ledger collection (<ledger>/_doctor/probes/…), deleted at once. The clock check compares this machine's clock with the probe's server timestamp (a warning above 5 s). Index exemptions on normalized.* are read from the Firestore Admin API (not checked on the emulator).
The summary assumes every item in scope needs its write: reads, writes and time under the 500/50/5 ramp (or --max-rate / maxRate), and the cost at list prices (the config file's prices, else the defaults in the README).
Exits 0 when no check fails (warnings included), 4 when one does.`

  static examples = [
    {
      description: 'Before a production run',
      command: '<%= config.bin %> <%= command.id %> --environment production --project my-app',
    },
    {description: 'In a runbook', command: '<%= config.bin %> <%= command.id %> --environment production --json'},
  ]

  async run(): Promise<DoctorReport> {
    const {flags} = await this.parse(Doctor)
    const {runDoctor} = await import('../services/doctor')
    const report = await runDoctor({resolve: () => this.settingsFrom(flags), environment: flags.environment})
    if (!this.jsonEnabled()) this.log(render(report).join('\n'))
    process.exitCode = exitCodeForChecks(report)
    return report
  }
}

function render(r: DoctorReport): string[] {
  const width = Math.max(...r.checks.map((c) => c.check.length))
  const lines = [
    `wardrobe doctor: ${r.environment}${r.projectId ? `, project ${r.projectId}` : ''}${r.target ? `, ${r.target}` : ''}`,
  ]
  for (const c of r.checks)
    lines.push(
      `${MARK[c.status]} ${c.check.padEnd(width)}  ${c.detail}${c.fix ? `\n  ${' '.repeat(width)}  fix: ${c.fix}` : ''}`,
    )
  if (r.summary) {
    const {items, estimate, costUsd} = r.summary
    lines.push(
      '',
      `Summary: ${items} items in scope. A backfill writing every one: ${estimate.reads} reads, ${estimate.writes} writes, about ${formatDuration(estimate.seconds)} (${estimate.rateAssumption}); about $${costUsd.total.toFixed(2)} at list prices of ${costUsd.pricesTakenOn} (reads $${costUsd.reads.toFixed(2)}, writes $${costUsd.writes.toFixed(2)}).`,
    )
  }
  lines.push('', r.ok ? 'All checks passed.' : `${r.checks.filter((c) => c.status === 'fail').length} check(s) failed.`)
  return lines
}
