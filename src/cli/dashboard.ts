import type chalkModule from 'chalk'
import type {HealthStatus, MonitorReport, RunView, VersionBasis} from '../services/monitor'
import {formatDuration} from '../format'
import {controlLines} from './runs-text'

/**
 * Terminal rendering of a monitor report: the full dashboard (one-shot output, and the
 * screen redrawn in place by `--watch` on a TTY) and the one-line form of `--watch`
 * without a TTY. No Firestore here; colours only through chalk, loaded only for colour
 * (about 8 ms of CPU: output into a pipe or a file never needs it).
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadChalk = (): typeof chalkModule => require('chalk')

/**
 * Colours only for a colour-capable stream and without NO_COLOR (https://no-color.org:
 * present and not empty). chalk 4's supports-color honours FORCE_COLOR and --no-color
 * but not NO_COLOR, hence the explicit check.
 */
export function colorLevel(
  stream: {isTTY?: boolean} = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0
  if (!stream.isTTY && env.FORCE_COLOR === undefined) return 0
  const {supportsColor} = loadChalk()
  return supportsColor ? supportsColor.level : 0
}

/** The styles the dashboard uses: chalk's, or none at all (plain text). */
interface Paint {
  (text: string): string
  bold: Paint
  underline: Paint
  cyan: Paint
  gray: Paint
  green: Paint
  red: Paint
  yellow: Paint
}

/** What chalk prints at colour level 0: the text as it is. */
const PLAIN = ((text: string) => text) as Paint
for (const style of ['bold', 'underline', 'cyan', 'gray', 'green', 'red', 'yellow'] as const) PLAIN[style] = PLAIN

function basisLabel(b: VersionBasis): string {
  switch (b.source) {
    case 'flag':
      return '--taxonomy'
    case 'config':
      return "the config file's taxonomy"
    case 'ledger':
      return `latest completed backfill ${b.runId}`
    default:
      return b.runId ? `shipped, newer than the latest completed backfill ${b.runId}` : 'shipped'
  }
}

// Integers grouped by hand, as toLocaleString('en-US') groups them: its first call sets up
// ICU number formatting, about 15 ms of a one-shot monitor's CPU.
const num = (n: number) =>
  Number.isSafeInteger(n) && !Object.is(n, -0)
    ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
    : n.toLocaleString('en-US')
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))
const padLeft = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s)
const clip = (s: string, n: number) => (s.length <= n ? s : s.slice(0, n - 1) + '…')

const ANSI = /\x1b\[[0-9;]*m/y

/** Visible length of a line (colour codes take no room). */
export function visibleLength(line: string): number {
  return line.replace(/\x1b\[[0-9;]*m/g, '').length
}

/** Cuts a coloured line to `n` visible characters, keeping its colour codes balanced. */
function clipAnsi(line: string, n: number): string {
  if (visibleLength(line) <= n) return line
  let out = ''
  let shown = 0
  for (let i = 0; i < line.length;) {
    ANSI.lastIndex = i
    const m = ANSI.exec(line)
    if (m) {
      out += m[0]
      i += m[0].length
    } else {
      if (shown === n - 1) return out + (out.includes('\x1b[') ? '…\x1b[0m' : '…')
      out += line[i++]
      shown++
    }
  }
  return out
}

function localTime(isoText: string): string {
  const d = new Date(isoText)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

function ago(isoText: string | null, nowIso: string): string {
  if (!isoText) return '-'
  return `${formatDuration(Math.max(0, (Date.parse(nowIso) - Date.parse(isoText)) / 1000))} ago`
}

function healthColor(c: Paint, status: HealthStatus | RunView['status'] | 'info'): Paint {
  switch (status) {
    case 'critical':
    case 'stalled':
    case 'failed':
      return c.red.bold
    case 'warning':
    case 'interrupted':
      return c.yellow.bold
    case 'healthy':
    case 'completed':
    case 'running':
      return c.green.bold
    default:
      return c.cyan
  }
}

function bar(c: Paint, percent: number, width: number): string {
  const full = Math.max(0, Math.min(width, Math.round((percent / 100) * width)))
  return c.green('█'.repeat(full)) + c.gray('░'.repeat(width - full))
}

function runLine(c: Paint, r: RunView, nowIso: string): string {
  const progress =
    r.total !== null
      ? `${padLeft(`${r.percent ?? 0}%`, 6)} ${num(r.scanned)}/${num(r.total)}`
      : `${num(r.scanned)} scanned`
  const parts = [c.bold(r.runId), r.kind, healthColor(c, r.status)(pad(r.status, 11)), progress, `${num(r.rate)}/s`]
  if (r.status === 'running')
    parts.push(`ETA ${formatDuration(r.etaSeconds)}`, `heartbeat ${r.heartbeatAgeSeconds}s ago`)
  else if (r.status === 'stalled') parts.push(`heartbeat ${formatDuration(r.heartbeatAgeSeconds)} ago`)
  else parts.push(`finished ${ago(r.finishedAt, nowIso)}`)
  parts.push(`upd ${num(r.updated)} skip ${num(r.skipped)} fail ${num(r.failed)}`, `v${r.version ?? '*'}`)
  const p = r.partitions
  if (p && (r.status === 'running' || r.status === 'stalled')) {
    const states = [
      `${p.done}/${p.total} partitions done`,
      `${p.running} running on ${p.workers} worker${p.workers === 1 ? '' : 's'}`,
    ]
    if (p.stalled) states.push(c.red(`${p.stalled} stalled`))
    if (p.pending + p.interrupted) states.push(`${p.pending + p.interrupted} waiting`)
    if (p.failed) states.push(c.red(`${p.failed} failed`))
    parts.push(states.join(', '))
  } else parts.push(c.gray(r.owner))
  return parts.join('  ')
}

export interface DashboardOptions {
  /** chalk colour level (see colorLevel); 0 or absent = plain text. */
  colorLevel?: 0 | 1 | 2 | 3
  /** Terminal columns: lines are cut to fit, except commands (never cut without a width). */
  width?: number
  /** Terminal rows: the screen is cut to fit (watch mode). */
  height?: number
  /** Watch mode: the interval shown in the header. */
  intervalSeconds?: number
}

/** The full dashboard as lines of text (coloured when asked). */
export function renderDashboard(report: MonitorReport, options: DashboardOptions = {}): string[] {
  const level = options.colorLevel ?? 0
  const c: Paint = level === 0 ? PLAIN : new (loadChalk().Instance)({level})
  const width = options.width
  const now = report.generatedAt
  const {counts, health} = report
  const out: string[] = []
  const commands = new Set<string>()
  const heading = (t: string, extra = '') => out.push('', c.bold.underline(t) + (extra ? '  ' + extra : ''))

  const watch = options.intervalSeconds ? c.gray(`  every ${options.intervalSeconds}s · Ctrl-C to stop`) : ''
  out.push(
    `${c.bold('wardrobe monitor')}  ${report.projectId}/${report.collectionGroup ? `**/${report.collection}` : report.collection}  ${report.environment}  vocabulary ${report.version} ${c.gray(`(${basisLabel(report.versionBasis)})`)}`,
  )
  out.push(c.gray(`as of ${localTime(report.readTime)}`) + watch)

  heading('HEALTH', healthColor(c, health.status)(health.status.toUpperCase()))
  if (health.issues.length === 0) out.push(c.gray('  no issues'))
  for (const issue of health.issues) {
    const mark = issue.level === 'critical' ? '✖' : issue.level === 'warning' ? '!' : '·'
    out.push(`  ${healthColor(c, issue.level)(mark)} ${issue.message}`)
    // Commands are never clipped: they must stay copyable.
    if (issue.recommendation) {
      out.push(`    ${c.cyan('→')} ${issue.recommendation}`)
      commands.add(out[out.length - 1])
    }
  }

  heading('ITEMS')
  const row = (label: string, n: number, rest = '') =>
    out.push(`  ${pad(label, 22)}${padLeft(num(n), 12)}${rest ? '  ' + rest : ''}`)
  row('total', counts.total)
  row(
    `normalized (${report.version})`,
    counts.normalizedCurrent,
    `${padLeft(counts.completionPercent.toFixed(1), 5)}%  ${bar(c, counts.completionPercent, 30)}`,
  )
  const listed = (vs: typeof counts.versions) => vs.map((v) => `${v.version}: ${num(v.count)}`)
  const others = listed(counts.versions.filter((v) => v.relation === 'older'))
  if (counts.outdatedUnknownVersions > 0) others.push(`unrecorded versions: ${num(counts.outdatedUnknownVersions)}`)
  row('outdated versions', counts.normalizedOutdated, counts.normalizedOutdated > 0 ? c.yellow(others.join(', ')) : '')
  if (counts.normalizedNewer > 0)
    row(
      'newer versions',
      counts.normalizedNewer,
      c.yellow(
        listed(counts.versions.filter((v) => v.relation === 'newer' || v.relation === 'incomparable')).join(', '),
      ),
    )
  row(
    'not normalized',
    counts.notNormalized,
    counts.notNormalized > 0 && report.errors.total > 0
      ? c.gray(`incl. up to ${num(report.errors.total)} error items`)
      : '',
  )

  heading('RUNS')
  const runs = [...report.runs.active, ...report.runs.recent]
  if (runs.length === 0) out.push(c.gray('  no runs recorded'))
  for (const r of runs) {
    out.push('  ' + runLine(c, r, now))
    if (r.error) out.push(`    ${c.red(r.error)}`)
    for (const l of r.control ? controlLines(r.control) : [])
      out.push(`    ${l.alert ? c.yellow.bold(l.text) : c.gray(l.text)}`)
  }
  if (report.runs.unreadable > 0) out.push(c.yellow(`  ${report.runs.unreadable} run records could not be read`))

  const e = report.errors
  heading(
    'ERROR ITEMS',
    e.runId
      ? `${num(e.total)} in run ${e.runId}${e.rate !== null ? ` (${(e.rate * 100).toFixed(1)}% of the ${num(e.processed ?? 0)} items it processed)` : ''}`
      : c.gray('no backfill run yet'),
  )
  for (const item of e.latest) {
    out.push(
      `  ${pad(item.itemId, 22)} ${pad(item.field ?? '-', 9)} ${c.gray(pad(ago(item.at, now), 9))} ${item.reason}`,
    )
  }
  if (e.total > e.latest.length)
    out.push(c.gray(`  … ${num(e.total - e.latest.length)} more under ${report.ledgerCollection}/${e.runId}/errors`))

  const u = report.unmapped
  if (u.distinct > 0) {
    heading('UNMAPPED VALUES', `${num(u.distinct)} distinct, ${num(u.occurrences)} occurrences in run ${u.runId}`)
    out.push('  ' + u.top.map((x) => `${x.field}:"${x.value}" ×${num(x.count)}`).join(', '))
  }

  heading('RECENT NORMALIZATIONS')
  if (report.recent.length === 0) out.push(c.gray('  none'))
  for (const item of report.recent) {
    out.push(
      `  ${pad(item.id, 22)} ${pad(clip(item.name ?? '-', 32), 32)} ${pad(item.normalizedAt ? localTime(item.normalizedAt) : '-', 19)}  ${c.gray(`v${item.version ?? '?'}`)}`,
    )
  }

  if (width === undefined) return out
  // On a terminal: lines fit its width (commands wrap instead: they must stay copyable) and the screen its height.
  const fitted = out.map((l) => (commands.has(l) ? l : clipAnsi(l, width)))
  if (!options.height) return fitted
  const kept: string[] = []
  let rows = 0
  for (const [i, l] of fitted.entries()) {
    const need = Math.max(1, Math.ceil(visibleLength(l) / width))
    if (rows + need > options.height - 1 && i < fitted.length - 1) {
      kept.push(c.gray(`… ${fitted.length - i} more lines (enlarge the terminal, or use --json)`))
      return kept
    }
    kept.push(l)
    rows += need
  }
  return kept
}

/** One plain line per sample: `--watch` without a TTY. */
export function renderWatchLine(report: MonitorReport): string {
  const {counts: k, health} = report
  const parts = [
    report.readTime,
    health.status,
    `current ${k.normalizedCurrent}/${k.total} (${k.completionPercent.toFixed(1)}%)`,
    `outdated ${k.normalizedOutdated}`,
    ...(k.normalizedNewer > 0 ? [`newer ${k.normalizedNewer}`] : []),
    `not normalized ${k.notNormalized}`,
    `errors ${report.errors.total}`,
  ]
  for (const r of report.runs.active) {
    const control = r.control && r.control.state !== 'running' ? ` ${r.control.state}` : ''
    const ack =
      r.control?.ack?.status === 'not acknowledged'
        ? ` change #${r.control.ack.seq} not acknowledged by ${r.control.ack.waitingOn.join(', ')}`
        : ''
    parts.push(
      `${r.kind} ${r.runId} ${r.status}${control} ${r.scanned}/${r.total ?? '?'} ${r.rate}/s ETA ${formatDuration(r.etaSeconds)}${ack}`,
    )
  }
  return parts.join(' | ')
}

/** Escape sequences for the in-place screen of `--watch` on a TTY. */
export const screen = {
  /** Hide the cursor and start from a clear screen. */
  enter: '\x1b[?25l\x1b[2J\x1b[H',
  /** Redraw from the top: each line clears its rest, then everything below goes. */
  frame: (lines: string[]) => '\x1b[H' + lines.map((l) => l + '\x1b[K').join('\n') + '\n\x1b[J',
  /** Show the cursor again. */
  leave: '\x1b[?25h',
}
