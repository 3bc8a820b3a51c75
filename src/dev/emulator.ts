import {ChildProcess, spawn, execFileSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {isEmulatorReachable} from '../firestore/emulator-probe'

/** A Firestore emulator this process started (tests, demo, benchmarks). */
export interface RunningEmulator {
  host: string
  stop(): Promise<void>
}

/** Deletes every document of a project on the emulator (its REST reset endpoint). */
export async function clearEmulator(host: string, projectId: string): Promise<void> {
  const res = await fetch(`http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`, {
    method: 'DELETE',
  })
  if (!res.ok) throw new Error(`could not clear emulator project ${projectId}: HTTP ${res.status}`)
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** The emulator launcher of the Cloud SDK; a missing one is an error, never a skip. */
export function emulatorLauncher(): string {
  if (process.env.FIRESTORE_EMULATOR_BIN) return process.env.FIRESTORE_EMULATOR_BIN
  let gcloud: string
  try {
    gcloud = execFileSync('sh', ['-c', 'readlink -f "$(command -v gcloud)"'], {encoding: 'utf8'}).trim()
  } catch {
    gcloud = ''
  }
  const launcher =
    gcloud && path.join(path.dirname(gcloud), '..', 'platform', 'cloud-firestore-emulator', 'cloud_firestore_emulator')
  if (!launcher || !fs.existsSync(launcher)) {
    throw new Error(
      'Firestore emulator not found: install google-cloud-cli-firestore-emulator (and Java 17+), or set FIRESTORE_EMULATOR_BIN to its cloud_firestore_emulator launcher',
    )
  }
  return launcher
}

/** Starts the Cloud SDK Firestore emulator on a free port and waits until it answers. */
export async function startEmulator(options: {port?: number; timeoutMs?: number} = {}): Promise<RunningEmulator> {
  const port = options.port ?? (await freePort())
  const host = `127.0.0.1:${port}`
  const child: ChildProcess = spawn(emulatorLauncher(), ['start', '--host=127.0.0.1', `--port=${port}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (!(await isEmulatorReachable(host, 500))) {
    if (child.exitCode !== null) throw new Error(`Firestore emulator exited with ${child.exitCode}:\n${output}`)
    if (Date.now() > deadline) {
      killGroup(child)
      throw new Error(`Firestore emulator did not answer on ${host}:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  child.stdout?.removeAllListeners('data')
  child.stderr?.removeAllListeners('data')
  child.stdout?.resume()
  child.stderr?.resume()
  child.unref()
  return {
    host,
    async stop() {
      killGroup(child)
    },
  }
}

function killGroup(child: ChildProcess): void {
  // The launcher forks java; killing the process group stops both.
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* already gone */
  }
}
