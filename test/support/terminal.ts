import {spawn} from 'node:child_process'
import {BIN, tmpDir} from './harness'

/**
 * Runs the CLI in a pseudo-terminal (util-linux `script`), as a person at a terminal does: what
 * only happens there (prompts, the update check) happens. Answers `reply.answer` once the output
 * contains `reply.prompt`. The output is stdout and stderr together, as the terminal shows them.
 */
export function inTerminal(
  args: string[],
  env: NodeJS.ProcessEnv,
  reply?: {prompt: string; answer: string},
): Promise<{code: number | null; output: string}> {
  const child = spawn('script', ['-qec', [process.execPath, BIN, ...args].join(' '), '/dev/null'], {
    cwd: tmpDir(),
    env: {...process.env, NODE_ENV: undefined, NO_COLOR: '1', ...env},
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  let answered = false
  child.stdout.on('data', (d) => {
    output += d
    if (reply && !answered && output.includes(reply.prompt)) {
      answered = true
      child.stdin.write(reply.answer)
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, output})
    }),
  )
}
