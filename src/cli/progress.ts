import cliProgress from 'cli-progress'
import {formatDuration} from '../format'

export interface ProgressSnapshot {
  done: number
  total: number | null
  rate: number
  etaSeconds: number | null
  /** Extra counts shown after the bar, e.g. {updated, skipped, failed}. */
  counts: Record<string, number>
  /** What limits the run now (e.g. `limit 200/s (cap)`, `paused by ops@laptop: incident`). */
  note?: string
}

export interface ProgressRenderer {
  update(p: ProgressSnapshot): void
  stop(): void
}

const countsText = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')

/**
 * Progress on stderr (stdout carries data only): a live cli-progress bar on a TTY,
 * otherwise one plain line every `intervalMs`.
 */
export function createProgress(
  label: string,
  options: {stream?: NodeJS.WriteStream; intervalMs?: number; enabled?: boolean} = {},
): ProgressRenderer {
  const stream = options.stream ?? process.stderr
  if (options.enabled === false) return {update() {}, stop() {}}
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {etaText} | {countsText}{noteText}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    )
    let started = false
    return {
      update(p) {
        const payload = {
          rate: Math.round(p.rate),
          etaText: formatDuration(p.etaSeconds),
          countsText: countsText(p.counts),
          noteText: p.note ? ` | ${p.note}` : '',
        }
        if (!started) {
          bar.start(p.total ?? p.done, p.done, payload)
          started = true
        }
        if (p.total !== null) bar.setTotal(Math.max(p.total, p.done))
        bar.update(p.done, payload)
      },
      stop() {
        if (started) bar.stop()
      },
    }
  }
  const intervalMs = options.intervalMs ?? Number(process.env.WARDROBE_PROGRESS_INTERVAL_MS ?? 10_000)
  let last = 0
  let latest: ProgressSnapshot | undefined
  let printed: ProgressSnapshot | undefined
  const line = (p: ProgressSnapshot) => {
    const pct = p.total ? ` (${Math.floor((100 * p.done) / Math.max(p.total, 1))}%)` : ''
    stream.write(
      `${label}: ${p.done}/${p.total ?? '?'}${pct}, ${Math.round(p.rate)}/s, ETA ${formatDuration(p.etaSeconds)}, ${countsText(p.counts)}${p.note ? `; ${p.note}` : ''}\n`,
    )
  }
  return {
    update(p) {
      latest = p
      const now = Date.now()
      // A new state (paused, resumed, another limit) is shown at once, not at the next interval.
      if (now - last >= intervalMs || p.note !== printed?.note) {
        last = now
        printed = p
        line(p)
      }
    },
    stop() {
      // The final state, unless that very line is already out.
      if (latest && latest !== printed) line(latest)
    },
  }
}
