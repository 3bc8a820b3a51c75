import net from 'node:net'

/**
 * A TCP proxy between the CLI and the emulator that injects network faults: `drop` resets
 * every open connection and refuses new ones until it ends; `latency` delays every chunk
 * in both directions (order kept).
 */
export class FaultProxy {
  private server: net.Server | null = null
  private readonly sockets = new Set<net.Socket>()
  private readonly clients = new Set<net.Socket>()
  private dropping = false
  private admitting: number | null = null
  private latencyMs = 0
  /** Client connections reset, refused and accepted so far. */
  resets = 0
  refused = 0
  connections = 0

  constructor(private readonly target: {host: string; port: number}) {}

  static forHost(hostPort: string): FaultProxy {
    const [host, port] = hostPort.split(':')
    return new FaultProxy({host, port: Number(port)})
  }

  async listen(): Promise<string> {
    this.server = net.createServer((client) => this.accept(client))
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`
  }

  /** Resets every connection and refuses new ones until `restore()`. */
  startDrop(): void {
    this.dropping = true
    this.resets += this.clients.size
    for (const s of this.sockets) s.resetAndDestroy()
  }

  restore(): void {
    this.dropping = false
    this.admitting = null
  }

  /** Lets the next `n` connections through, then refuses every new one until `restore()`. */
  admitOnly(n: number): void {
    this.admitting = n
  }

  /** Drops everything for `ms`. */
  async drop(ms: number): Promise<void> {
    this.startDrop()
    await sleep(ms)
    this.restore()
  }

  setLatency(ms: number): void {
    this.latencyMs = ms
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }

  private accept(client: net.Socket): void {
    if (this.dropping || this.admitting === 0) {
      this.refused++
      client.resetAndDestroy()
      return
    }
    this.connections++
    if (this.admitting !== null) this.admitting--
    this.clients.add(client)
    client.on('close', () => this.clients.delete(client))
    const upstream = net.connect(this.target.port, this.target.host)
    for (const s of [client, upstream]) {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
      s.on('error', () => {})
    }
    this.pipe(client, upstream)
    this.pipe(upstream, client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }

  /** Forwards chunks; under latency each is released at max(now + latency, previous release). */
  private pipe(from: net.Socket, to: net.Socket): void {
    let lastRelease = 0
    from.on('data', (chunk) => {
      if (this.latencyMs <= 0 && lastRelease <= Date.now()) {
        if (!to.destroyed) to.write(chunk)
        return
      }
      const release = Math.max(Date.now() + this.latencyMs, lastRelease)
      lastRelease = release
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk)
      }, release - Date.now())
    })
    from.on('end', () => {
      const wait = Math.max(0, lastRelease - Date.now())
      setTimeout(() => to.end(), wait)
    })
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
