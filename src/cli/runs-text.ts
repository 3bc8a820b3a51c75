import {ACK_TIMEOUT_MS} from '../engine/control'
import {formatDuration} from '../format'
import type {
  ControlView,
  ProcessView,
  RunChangeReport,
  RunListReport,
  RunShowReport,
  RunSummary,
} from '../services/runs'

/**
 * Plain-text rendering of `wardrobe runs …` reports, and the control lines monitor's
 * dashboard shows under an active run. No Firestore, no colour here.
 */

export interface ControlLine {
  text: string
  /** A change the live processes have not applied within the acknowledgement timeout. */
  alert: boolean
}

const num = (n: number) => n.toLocaleString('en-US')
const rate = (n: number | null) => (n === null ? 'off' : `${num(n)}/s`)
/** Every live process applies a change within this (issue 14; the governor reads the run every second). */
const WITHIN = '5 s'

function processLine(p: ProcessView): string {
  const parts = [
    p.reason ?? p.state ?? 'no report yet',
    `${num(p.rate ?? 0)}/s`,
    `heartbeat ${p.heartbeatAgeSeconds === null ? '-' : `${formatDuration(p.heartbeatAgeSeconds)} ago`}`,
    `change #${p.seenSeq} applied`,
  ]
  if (p.workers > 1) parts.push(`${p.workers} workers`)
  if (!p.live) parts.push(p.leftAt ? `left at ${p.leftAt}` : 'gone (heartbeat stale or process dead)')
  return `${p.name}: ${parts.join(', ')}`
}

/** The control of a run: state, limits, windows, the acknowledgement of the last change, and each live process's limit and why. */
export function controlLines(c: ControlView, options: {processes?: boolean} = {}): ControlLine[] {
  const settings = [c.state, c.maxRate === null ? 'no run-wide max rate' : `max rate ${rate(c.maxRate)} run-wide`]
  if (c.targetLatencyMs !== null) settings.push(`target p95 latency ${c.targetLatencyMs} ms`)
  settings.push(c.windows ? `windows ${c.windows}` : 'no windows')
  const out: ControlLine[] = [
    {
      text: `control: ${settings.join(', ')}${c.lastChange ? `; last change #${c.seq}: ${c.lastChange}` : ''}`,
      alert: false,
    },
  ]
  const a = c.ack
  if (a && a.status !== 'applied') {
    const who = a.waitingOn.length ? ` by ${a.waitingOn.join(', ')}` : ''
    const text =
      a.status === 'no live process'
        ? `change #${a.seq} waits: no process of the run is live`
        : a.status === 'pending'
          ? `change #${a.seq} pending: not yet applied${who}`
          : `change #${a.seq} not acknowledged${who} after ${ACK_TIMEOUT_MS / 1000} s (a frozen or cut-off process? it applies it once it reads the run again)`
    out.push({text, alert: a.status === 'not acknowledged'})
  }
  if (options.processes !== false) for (const p of c.processes) out.push({text: processLine(p), alert: false})
  return out
}

function progress(r: RunSummary): string {
  const pct = r.total ? ` (${Math.floor((1000 * Math.min(r.scanned, r.total)) / Math.max(r.total, 1)) / 10}%)` : ''
  return `${num(r.scanned)}/${r.total === null ? '?' : num(r.total)}${pct}, updated ${num(r.updated)}, skipped ${num(r.skipped)}, failed ${num(r.failed)}`
}

function runHeader(r: RunSummary, active: boolean): string {
  const owners =
    r.status === 'running'
      ? r.owners.length
        ? `${r.owners.length} live process${r.owners.length === 1 ? '' : 'es'}, ${num(r.rate)}/s`
        : 'no live process'
      : `finished ${r.finishedAt ?? '-'}`
  return `${r.runId}  ${r.kind}  ${r.status}${active ? ' (active)' : ''}  v${r.version ?? '*'}  ${progress(r)}  ${owners}${r.partitions ? `  ${r.partitions} partitions` : ''}`
}

export function renderRunList(report: RunListReport): string[] {
  const out = [
    `Runs of ${report.collectionGroup ? 'collection group ' : ''}${report.collection} in project ${report.projectId} (${report.environment}; ledger ${report.ledgerCollection}), newest first:`,
  ]
  if (report.runs.length === 0) out.push('  no runs recorded')
  for (const r of report.runs) {
    out.push(`  ${runHeader(r, r.runId === report.activeRunId)}`)
    // An ended run's control is history: `runs show` has it.
    if (r.status === 'running') for (const l of controlLines(r.control)) out.push(`    ${l.text}`)
    if (r.error) out.push(`    error: ${r.error}`)
  }
  return out
}

export function renderRunShow(report: RunShowReport): string[] {
  const r = report.run
  const out = [
    `Run ${r.runId}: ${r.kind} of ${report.collectionGroup ? 'collection group ' : ''}${report.collection} in project ${report.projectId} (${r.environment}), ${r.status}${report.active ? ', active' : ''}`,
  ]
  out.push(`  version ${r.version ?? '*'}, started ${r.startedAt}${r.finishedAt ? `, finished ${r.finishedAt}` : ''}`)
  out.push(
    `  progress: ${progress(r)}, conflicts ${num(r.conflicts)}${r.status === 'running' ? `; ${num(r.rate)}/s now` : ''}`,
  )
  if (report.partitions)
    out.push(
      `  partitions: ${Object.entries(report.partitions)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${n} ${s}`)
        .join(', ')}`,
    )
  for (const l of controlLines(r.control, {processes: false})) out.push(`  ${l.text}`)
  out.push(`  processes (${r.owners.length} live):`)
  if (report.processes.length === 0) out.push('    none recorded')
  for (const p of report.processes) out.push(`    ${processLine(p)}`)
  out.push('  changes:')
  for (const c of report.changes) out.push(`    #${c.seq} ${c.text}`)
  if (r.error) out.push(`  error: ${r.error}`)
  if (report.planHash) out.push(`  plan: ${report.planHash} (applied with --plan)`)
  if (report.command)
    out.push(`  ${r.status === 'interrupted' || r.status === 'failed' ? 'resume with' : 'command'}: ${report.command}`)
  return out
}

const plural = (n: number, word: string) => `${n} live ${word}${n === 1 ? '' : 'es'}`

/** What `runs pause|resume|stop|throttle` did, in a sentence or two. */
export function renderChange(r: RunChangeReport): string[] {
  const live = plural(r.live.length, 'process')
  const why = r.reason ? `: ${r.reason}` : ''
  const out: string[] = []
  // No process to apply it: that comes first, with the command that resumes the run.
  if (r.live.length === 0) out.push(noProcess(r))
  if (!r.changed) {
    if (r.status === 'running' || r.action === 'throttle')
      out.push(
        `Run ${r.runId} ${r.action === 'throttle' ? `already has max rate ${rate(r.maxRate)}` : `is already ${r.state === 'running' ? 'running (not paused)' : r.state}`}: nothing changed.`,
      )
    return out
  }
  const each = r.live.length === 0 ? 'it applies once resumed' : ''
  if (r.action === 'pause')
    out.push(
      `Paused run ${r.runId} (${r.live.length ? `${live}; each stops writing within ${WITHIN}, drains, checkpoints and waits holding its leases` : `${each}: it stays paused until \`wardrobe runs resume\``})${why}`,
    )
  if (r.action === 'resume')
    out.push(
      `Resumed run ${r.runId} (${r.live.length ? `${live}; each writes again within ${WITHIN}` : 'its pause is lifted'})${why}`,
    )
  if (r.action === 'stop')
    out.push(
      r.live.length
        ? `Stopping run ${r.runId} (${live}; each drains, checkpoints and exits 130 within ${WITHIN}; the run ends interrupted)${why}`
        : `Run ${r.runId} marked stopping: no process applies it, and a re-run of its command resumes the run${why}`,
    )
  if (r.action === 'throttle')
    out.push(
      `Run ${r.runId}: max rate ${rate(r.maxRate)} run-wide (was ${rate(r.before.maxRate)}; ${r.live.length ? `${live}, each takes its share within ${WITHIN}` : each})${why}`,
    )
  if (r.live.length > 0)
    out.push(
      r.action === 'stop' && r.command
        ? `Re-running its command resumes it: ${r.command}`
        : `Check it took: wardrobe runs show ${r.runId}`,
    )
  return out
}

function noProcess(r: RunChangeReport): string {
  const how = r.command ? `resume it with: ${r.command}` : 'resume it by running the command that started it again'
  return `No process of run ${r.runId} is running (${r.status}${r.status === 'running' ? ', its processes are gone' : ''}); ${how}`
}
