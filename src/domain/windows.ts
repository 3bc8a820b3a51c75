/**
 * Maintenance windows: parsed from flags and config (usage errors name the fix), and what a
 * window says at an instant in a time zone. Pure: time is a parameter.
 */
import {z} from 'zod'
import {UsageError} from '../errors'

/** `HH:MM` (or `HH:MM:SS`) to `HH:MM`, in the run's time zone; an end before the start spans midnight. */
export const WindowSchema = z.object({start: z.string(), end: z.string()})
export type Window = z.infer<typeof WindowSchema>

const TIME = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/

function secondsOfDay(text: string): number | null {
  const m = TIME.exec(text)
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0) : null
}

/** `--window 22:00-06:00`: a maintenance window, checked as a usage error. */
export function parseWindow(text: string): Window {
  const [start, end, extra] = text.split('-')
  if (extra !== undefined || secondsOfDay(start ?? '') === null || secondsOfDay(end ?? '') === null || start === end) {
    throw new UsageError(
      `--window ${text} is not a window`,
      'pass --window HH:MM-HH:MM (24-hour, in --timezone; e.g. 22:00-06:00 spans midnight), once per window',
    )
  }
  return {start, end}
}

/** A valid IANA zone (checked as a usage error), or the local one. */
export function resolveTimezone(zone?: string): string {
  if (zone === undefined) return Intl.DateTimeFormat().resolvedOptions().timeZone
  try {
    new Intl.DateTimeFormat('en-US', {timeZone: zone})
  } catch {
    throw new UsageError(
      `--timezone ${zone} is not a time zone`,
      'pass an IANA zone name, e.g. Europe/Paris, America/New_York or UTC',
    )
  }
  return zone
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Seconds since midnight at `now` in `zone`. */
function zoneSecondsOfDay(now: number, zone: string): number {
  let f = formatters.get(zone)
  if (!f)
    formatters.set(
      zone,
      (f = new Intl.DateTimeFormat('en-GB', {
        timeZone: zone,
        hour12: false,
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      })),
    )
  const parts = Object.fromEntries(f.formatToParts(new Date(now)).map((p) => [p.type, p.value]))
  return (Number(parts.hour) % 24) * 3600 + Number(parts.minute) * 60 + Number(parts.second)
}

export interface WindowState {
  open: boolean
  /** When it next opens (closed) or closes (open), in ms since the epoch; null: never (no windows). */
  changesAt: number | null
}

/** Whether `now` (Firestore's time) falls in one of the windows, and when that changes. No windows: always open. */
export function windowState(windows: Window[], zone: string, now: number): WindowState {
  if (windows.length === 0) return {open: true, changesAt: null}
  const day = 86_400
  const t = zoneSecondsOfDay(now, zone)
  const since = (s: number) => (t - s + day) % day
  const until = (s: number) => (s - t + day) % day || day
  let closesIn = 0
  let opensIn = Infinity
  for (const w of windows) {
    const start = secondsOfDay(w.start)!
    const end = secondsOfDay(w.end)!
    const length = (end - start + day) % day
    if (since(start) < length) closesIn = Math.max(closesIn, length - since(start))
    else opensIn = Math.min(opensIn, until(start))
  }
  // Sub-second precision: the instant itself, not the second it falls in.
  const ms = now % 1000
  if (closesIn > 0) return {open: true, changesAt: now - ms + closesIn * 1000}
  return {open: false, changesAt: now - ms + opensIn * 1000}
}
