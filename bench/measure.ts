/** Timing, peak memory of child processes, and the machine's description. */
import {execFileSync, spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const ROOT = path.resolve(__dirname, '..')
export const BIN = path.join(ROOT, 'bin', 'run.js')
const GNU_TIME = '/usr/bin/time'

export async function timed<T>(fn: () => Promise<T>): Promise<{value: T; seconds: number}> {
  const start = process.hrtime.bigint()
  const value = await fn()
  return {value, seconds: Number(process.hrtime.bigint() - start) / 1e9}
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export interface ProcessRun {
  code: number | null
  stdout: string
  stderr: string
  /** Wall time from spawn to exit, start-up included. */
  seconds: number
  /** Peak resident set size of the CLI process (VmHWM), in KiB. */
  peakRssKiB: number | null
  /** CPU seconds (user + system) of the CLI process. */
  cpuSeconds: number | null
  rssMethod: 'gnu-time' | 'proc-poll'
}

/**
 * Runs `node bin/run.js ...args` (or another script) and reads its peak RSS: through GNU time's %M where it
 * exists, else by polling /proc/<pid>/status VmHWM (a high-water mark, so polling only
 * misses growth in the last interval before exit).
 */
export async function runCli(
  args: string[],
  options: {cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; script?: string},
): Promise<ProcessRun> {
  const useTime = fs.existsSync(GNU_TIME)
  const rssFile = path.join(options.cwd, `.rss-${process.pid}-${Date.now()}`)
  const script = options.script ?? BIN
  const [cmd, argv] = useTime
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, process.execPath, script, ...args]]
    : [process.execPath, [script, ...args]]
  const start = process.hrtime.bigint()
  const child = spawn(cmd, argv, {
    cwd: options.cwd,
    env: {...process.env, NO_COLOR: '1', ...options.env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  let polled = 0
  let polledCpu: number | null = null
  const poll = useTime
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))
          if (m) polled = Math.max(polled, Number(m[1]))
          polledCpu = processCpuSeconds(child.pid ?? null) ?? polledCpu
        } catch {
          /* exited */
        }
      }, 50)
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000)
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  clearTimeout(timer)
  if (poll) clearInterval(poll)
  let peakRssKiB: number | null = polled || null
  let cpuSeconds: number | null = polledCpu
  if (useTime) {
    try {
      // GNU time writes "Command exited with non-zero status N" first when it did.
      const [rss, user, sys] = fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
      peakRssKiB = Number.isFinite(rss) && rss > 0 ? rss : null
      cpuSeconds = Number.isFinite(user + sys) ? user + sys : null
    } catch {
      peakRssKiB = null
    }
    fs.rmSync(rssFile, {force: true})
  }
  return {code, stdout, stderr, seconds, peakRssKiB, cpuSeconds, rssMethod: useTime ? 'gnu-time' : 'proc-poll'}
}

export interface Machine {
  nproc: number
  cpuModel: string
  memoryGiB: number
  node: string
  platform: string
  emulator: string
  loadAverage: number[]
}

export function describeMachine(): Machine {
  let emulator = 'Cloud SDK Firestore emulator (version unknown)'
  try {
    const out = execFileSync('gcloud', ['version'], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const sdk = /Google Cloud SDK (\S+)/.exec(out)?.[1]
    const emu = /cloud-firestore-emulator (\S+)/.exec(out)?.[1]
    if (emu) emulator = `cloud-firestore-emulator ${emu}${sdk ? ` (Google Cloud SDK ${sdk})` : ''}`
  } catch {
    /* gcloud missing or slow: keep the generic name */
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    emulator,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  }
}

/** The emulator's JVM (found by its port), to read the CPU time it spends. */
export function findEmulatorPid(host: string): number | null {
  const port = host.split(':').pop()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmd.includes('java') && cmd.includes('firestore') && cmd.includes(`--port=${port}`)) return Number(entry)
    } catch {
      /* gone */
    }
  }
  return null
}

/** CPU seconds (user + system) a process has used so far, from /proc (null where unavailable). */
export function processCpuSeconds(pid: number | null): number | null {
  if (pid === null) return null
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ')
    // utime and stime are fields 14 and 15 of stat; here counted after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

/** CPU seconds spent by this process (the client, for in-process runs) and by the emulator. */
export interface CpuUse {
  clientSeconds: number | null
  emulatorSeconds: number | null
}

/** Measures CPU across a section: on a shared machine, CPU per item varies less than wall time. */
export class CpuMeter {
  private client0 = process.cpuUsage()
  private emulator0: number | null = null

  constructor(private readonly emulatorPid: number | null) {}

  begin(): void {
    this.client0 = process.cpuUsage()
    this.emulator0 = processCpuSeconds(this.emulatorPid)
  }

  /** `clientSeconds` overrides this process's CPU (a child process's, from GNU time). */
  end(clientSeconds?: number | null): CpuUse {
    const used = process.cpuUsage(this.client0)
    const emulator = processCpuSeconds(this.emulatorPid)
    return {
      clientSeconds: clientSeconds !== undefined ? clientSeconds : (used.user + used.system) / 1e6,
      emulatorSeconds: emulator === null || this.emulator0 === null ? null : emulator - this.emulator0,
    }
  }
}

/** The emulator JVM's old generation and full collections (jstat), to show a phase ran on a healthy heap. */
export interface JvmHeap {
  oldPercent: number
  fullCollections: number
  fullCollectionSeconds: number
}

export function jvmHeap(pid: number | null): JvmHeap | null {
  if (pid === null) return null
  try {
    const [header, values] = execFileSync('jstat', ['-gcutil', String(pid)], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
    const get = (name: string) => Number(values[header.indexOf(name)])
    const heap = {oldPercent: get('O'), fullCollections: get('FGC'), fullCollectionSeconds: get('FGCT')}
    return Object.values(heap).every(Number.isFinite) ? heap : null
  } catch {
    return null // no jstat (a JRE without the JDK tools)
  }
}
