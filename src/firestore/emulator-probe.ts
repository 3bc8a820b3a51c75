import http from 'node:http'

/**
 * True when something answers HTTP at host the way the Firestore emulator does. node:http, not
 * fetch: fetch's first use costs ~30 ms of start-up, paid by every command against an emulator.
 */
export function isEmulatorReachable(host: string, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${host}/`, {timeout: timeoutMs}, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}
