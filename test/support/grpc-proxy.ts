import net from 'node:net'
import * as grpc from '@grpc/grpc-js'
import {Firestore} from 'firebase-admin/firestore'
import protobuf from 'protobufjs'

/**
 * A Firestore proxy at the protocol level, for tests: it sits between a client and the
 * emulator (plaintext HTTP/2) and passes every Firestore RPC through as raw bytes, except
 * where a rule scripts an answer the real service gives and the emulator never does: a
 * status for a share of calls or a time window, per-write statuses inside a BatchWrite,
 * latency, a RunQuery stream cut with UNAVAILABLE, wrong documents in a RunQuery, and
 * PartitionQuery answered with split points from a keys-only scan of the emulator.
 * Messages are decoded only where a fault needs it. HTTP/1 (the emulator's REST endpoints,
 * which the CLI probes before it connects) is forwarded byte for byte.
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = protobuf.Root.fromJSON(require('@google-cloud/firestore/build/protos/v1.json'))
const type = (name: string) => root.lookupType(`google.firestore.v1.${name}`)
const BatchWriteRequest = type('BatchWriteRequest')
const BatchWriteResponse = type('BatchWriteResponse')
const RunQueryRequest = type('RunQueryRequest')
const RunQueryResponse = type('RunQueryResponse')
const PartitionQueryRequest = type('PartitionQueryRequest')
const PartitionQueryResponse = type('PartitionQueryResponse')

const SERVICE = 'google.firestore.v1.Firestore'
type Kind = 'unary' | 'server' | 'bidi'
const METHODS = {
  GetDocument: 'unary',
  ListDocuments: 'unary',
  UpdateDocument: 'unary',
  DeleteDocument: 'unary',
  CreateDocument: 'unary',
  BatchGetDocuments: 'server',
  BeginTransaction: 'unary',
  Commit: 'unary',
  Rollback: 'unary',
  RunQuery: 'server',
  RunAggregationQuery: 'server',
  PartitionQuery: 'unary',
  Write: 'bidi',
  Listen: 'bidi',
  ListCollectionIds: 'unary',
  BatchWrite: 'unary',
} as const satisfies Record<string, Kind>
export type Method = keyof typeof METHODS
export const ALL_METHODS = Object.keys(METHODS) as Method[]

/** What the proxy does to the calls of a method while the rule is active. */
export interface Rule {
  /**
   * Answer this share of calls (default all) with `code`, unsent; `applied`: send them first, then
   * answer the error (a deadline the server met unseen); `details`: the service's own text for it.
   */
  fail?: {code: grpc.status; share?: number; applied?: boolean; details?: string}
  /** BatchWrite: this share of the writes in each call are answered `code` and not applied; the rest go through. */
  failWrites?: {code: grpc.status; share: number}
  /** Added before each call goes on. */
  latencyMs?: number
  /** RunQuery: end the stream with `cutCode` after this many documents; a list: the n-th call after the n-th count, later calls uncut. */
  cutAfter?: number | number[]
  /** The status a cut ends with (default UNAVAILABLE); a list: per cut, as cutAfter's. */
  cutCode?: grpc.status | grpc.status[]
  /** RunQuery: after `after` documents, add a document past the requested range, or the last one again. */
  bad?: {kind: 'out-of-range' | 'duplicate'; after: number}
  /** Calls a failure, a cut or a bad answer applies to (default: every one). */
  times?: number
  /** RunQuery: only queries on this collection id. */
  collection?: string
  /** Active until this time (ms since the epoch); absent: until cleared. */
  until?: number
}

export interface MethodStats {
  calls: number
  /** Calls answered with a status by a rule. */
  failed: number
  /** BatchWrite: writes answered with a status by a rule. */
  writesFailed: number
  /** RunQuery: documents passed to the client. */
  documents: number
  cuts: number
  badAnswers: number
  /** PartitionQuery: split points answered. */
  splitPoints: number
}

const zero = (): MethodStats => ({
  calls: 0,
  failed: 0,
  writesFailed: 0,
  documents: 0,
  cuts: 0,
  badAnswers: 0,
  splitPoints: 0,
})
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const identity = (b: Buffer) => b
/** Headers grpc-js sets itself on the upstream call. */
const OWN_HEADERS = new Set([
  'content-type',
  'te',
  'user-agent',
  'grpc-accept-encoding',
  'grpc-encoding',
  'grpc-timeout',
  'accept-encoding',
])

type Status = {code: grpc.status; details: string; metadata?: grpc.Metadata}

export class GrpcFaultProxy {
  private readonly server = new grpc.Server()
  private readonly front: net.Server
  private client!: grpc.Client
  private readonly rules = new Map<Method, Rule>()
  private readonly sockets = new Set<net.Socket>()
  private grpcPort = 0
  readonly stats: Record<Method, MethodStats> = Object.fromEntries(ALL_METHODS.map((m) => [m, zero()])) as Record<
    Method,
    MethodStats
  >
  /** When a rule first answered an error (ms since the epoch), and its code. */
  firstFault: {at: number; method: Method; code: grpc.status} | null = null
  /** Answer PartitionQuery (the emulator does not implement it) the way the service does. */
  answerPartitionQuery = false
  /** Split points the proxy answered, per PartitionQuery call (document names). */
  readonly partitionAnswers: string[][] = []

  constructor(
    private readonly upstream: string,
    private readonly random: () => number = Math.random,
  ) {
    this.front = net.createServer((socket) => this.accept(socket))
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {}
    const implementation: grpc.UntypedServiceImplementation = {}
    for (const [name, kind] of Object.entries(METHODS) as [Method, Kind][]) {
      definition[name] = {
        path: `/${SERVICE}/${name}`,
        requestStream: kind === 'bidi',
        responseStream: kind !== 'unary',
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      }
      implementation[name] =
        kind === 'unary' ? this.unary(name) : kind === 'server' ? this.serverStream(name) : this.bidi(name)
    }
    this.server.addService(definition, implementation)
  }

  /** Starts listening; returns host:port to give clients as the emulator host. */
  async listen(): Promise<string> {
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    )
    this.client = new grpc.Client(this.upstream, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    })
    await new Promise<void>((resolve) => this.front.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(this.front.address() as net.AddressInfo).port}`
  }

  /** Scripts `methods` (replacing their rules); `forMs`: for that long from now. */
  set(methods: Method | Method[], rule: Rule, forMs?: number): void {
    for (const m of Array.isArray(methods) ? methods : [methods]) {
      const lists = {
        ...(Array.isArray(rule.cutAfter) ? {cutAfter: [...rule.cutAfter]} : {}),
        ...(Array.isArray(rule.cutCode) ? {cutCode: [...rule.cutCode]} : {}),
      }
      this.rules.set(m, {...rule, ...lists, ...(forMs === undefined ? {} : {until: Date.now() + forMs})})
    }
  }

  clear(methods: Method | Method[] = ALL_METHODS): void {
    for (const m of Array.isArray(methods) ? methods : [methods]) this.rules.delete(m)
  }

  /** Totals over every method. */
  get totals(): MethodStats {
    const t = zero()
    for (const s of Object.values(this.stats)) for (const k of Object.keys(t) as (keyof MethodStats)[]) t[k] += s[k]
    return t
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.front.close(() => resolve()))
    this.server.forceShutdown()
    this.client?.close()
  }

  /** HTTP/2 (gRPC) to the proxy's server, anything else (HTTP/1: REST) straight to the emulator. */
  private accept(socket: net.Socket): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    socket.once('data', (first) => {
      socket.pause()
      const [host, port] = this.upstream.split(':')
      const to =
        first.subarray(0, 3).toString('latin1') === 'PRI'
          ? net.connect(this.grpcPort, '127.0.0.1')
          : net.connect(Number(port), host)
      this.sockets.add(to)
      to.on('close', () => (this.sockets.delete(to), socket.destroy()))
      to.on('error', () => {})
      socket.on('close', () => to.destroy())
      to.write(first)
      socket.pipe(to)
      to.pipe(socket)
    })
  }

  /** The method's rule, if active (and, for queries scoped to a collection, if this is one of its queries). */
  private rule(method: Method, request?: Buffer): Rule | undefined {
    const rule = this.rules.get(method)
    if (!rule) return undefined
    if (rule.until !== undefined && Date.now() >= rule.until) return undefined
    if (rule.collection !== undefined && request) {
      const from =
        (RunQueryRequest.decode(request) as unknown as {structuredQuery?: {from?: {collectionId: string}[]}})
          .structuredQuery?.from ?? []
      if (!from.some((f) => f.collectionId === rule.collection)) return undefined
    }
    return rule
  }

  /** Whether this call is to be failed, counted as such. */
  private failing(method: Method, rule: Rule | undefined): Status | null {
    if (!rule?.fail || this.random() >= (rule.fail.share ?? 1) || !this.use(rule)) return null
    this.stats[method].failed++
    this.firstFault ??= {at: Date.now(), method, code: rule.fail.code}
    return {
      code: rule.fail.code,
      details: rule.fail.details ?? `${grpc.status[rule.fail.code]} injected by the fault proxy`,
    }
  }

  /** Takes one of a rule's limited uses (`times`); false once spent. */
  private use(rule: Rule): boolean {
    if (rule.times === undefined) return true
    if (rule.times <= 0) return false
    rule.times--
    return true
  }

  private forwarded(metadata: grpc.Metadata): grpc.Metadata {
    const out = new grpc.Metadata()
    for (const [k, v] of Object.entries(metadata.getMap())) if (!OWN_HEADERS.has(k) && !k.startsWith(':')) out.set(k, v)
    return out
  }

  private callOptions(call: {getDeadline(): grpc.Deadline}): grpc.CallOptions {
    const deadline = call.getDeadline()
    return deadline instanceof Date || (typeof deadline === 'number' && Number.isFinite(deadline)) ? {deadline} : {}
  }

  private unary(method: Method): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      void (async () => {
        this.stats[method].calls++
        const rule = this.rule(method)
        if (rule?.latencyMs) await sleep(rule.latencyMs)
        const failure = this.failing(method, rule)
        if (failure && !rule!.fail!.applied) return callback(failure)
        if (method === 'PartitionQuery' && this.answerPartitionQuery)
          return callback(null, await this.partitions(call.request, call.metadata))
        const {request, merge} =
          method === 'BatchWrite'
            ? this.dropWrites(call.request, rule)
            : {request: call.request, merge: (r: Buffer) => r}
        const upstream = this.client.makeUnaryRequest(
          `/${SERVICE}/${method}`,
          identity,
          identity,
          request,
          this.forwarded(call.metadata),
          this.callOptions(call),
          (err, response) => {
            if (err) return callback(err)
            callback(failure, failure ? undefined : merge(response!))
          },
        )
        call.on('cancelled', () => upstream.cancel())
      })().catch((err: Error) => callback({code: grpc.status.INTERNAL, details: `fault proxy: ${err.message}`}))
    }
  }

  /**
   * BatchWrite with `failWrites`: the chosen writes are taken out of the request (a refused
   * write is not applied) and answered with the status; the rest go to the emulator.
   */
  private dropWrites(request: Buffer, rule: Rule | undefined): {request: Buffer; merge: (response: Buffer) => Buffer} {
    const spec = rule?.failWrites
    if (!spec) return {request, merge: (r) => r}
    const req = BatchWriteRequest.decode(request) as unknown as {writes: unknown[]}
    const failed = req.writes.map(() => this.random() < spec.share)
    const n = failed.filter(Boolean).length
    if (n === 0) return {request, merge: (r) => r}
    this.stats.BatchWrite.writesFailed += n
    this.firstFault ??= {at: Date.now(), method: 'BatchWrite', code: spec.code}
    const kept = req.writes.filter((_, i) => !failed[i])
    const sent = Buffer.from(BatchWriteRequest.encode({...req, writes: kept}).finish())
    return {
      request: sent,
      merge: (response) => {
        const res = BatchWriteResponse.decode(response) as unknown as {writeResults: unknown[]; status: unknown[]}
        let k = 0
        const writeResults: unknown[] = []
        const status: unknown[] = []
        for (const f of failed) {
          writeResults.push(f ? {} : res.writeResults[k])
          status.push(
            f ? {code: spec.code, message: `${grpc.status[spec.code]} injected by the fault proxy`} : res.status[k],
          )
          if (!f) k++
        }
        return Buffer.from(BatchWriteResponse.encode(BatchWriteResponse.fromObject({writeResults, status})).finish())
      },
    }
  }

  private serverStream(method: Method): grpc.handleServerStreamingCall<Buffer, Buffer> {
    return (call) => {
      void (async () => {
        this.stats[method].calls++
        const rule = this.rule(method, method === 'RunQuery' ? call.request : undefined)
        if (rule?.latencyMs) await sleep(rule.latencyMs)
        const failure = this.failing(method, rule)
        if (failure && !rule!.fail!.applied) return call.emit('error', failure)
        const cutAfter =
          method === 'RunQuery' && rule?.cutAfter !== undefined
            ? Array.isArray(rule.cutAfter)
              ? rule.cutAfter.shift()
              : this.use(rule)
                ? rule.cutAfter
                : undefined
            : undefined
        const cutCode = (Array.isArray(rule?.cutCode) ? rule.cutCode.shift() : rule?.cutCode) ?? grpc.status.UNAVAILABLE
        const bad = rule?.bad && method === 'RunQuery' && this.use(rule) ? rule.bad : undefined
        const upstream = this.client.makeServerStreamRequest(
          `/${SERVICE}/${method}`,
          identity,
          identity,
          call.request,
          this.forwarded(call.metadata),
          this.callOptions(call),
        )
        let ended = false
        const end = (status?: Status) => {
          if (ended) return
          ended = true
          if (status) call.emit('error', status)
          else call.end()
        }
        const send = (message: Buffer) => {
          if (!call.write(message)) upstream.pause()
        }
        call.on('drain', () => upstream.resume())
        call.on('cancelled', () => ((ended = true), upstream.cancel()))
        let docs = 0
        upstream.on('data', (message: Buffer) => {
          if (ended) return
          const counted =
            method === 'RunQuery' &&
            (RunQueryResponse.decode(message) as unknown as {document?: unknown}).document != null
          // Cut where the next document would have gone: after exactly `cutAfter` of them.
          if (counted && cutAfter !== undefined && docs >= cutAfter) {
            this.stats.RunQuery.cuts++
            this.firstFault ??= {at: Date.now(), method, code: cutCode}
            upstream.cancel()
            return end({code: cutCode, details: `stream cut by the fault proxy after ${docs} documents`})
          }
          send(message)
          if (!counted) return
          docs++
          this.stats.RunQuery.documents++
          if (bad && docs === bad.after) {
            this.stats.RunQuery.badAnswers++
            send(bad.kind === 'duplicate' ? message : pastTheRange(message))
          }
        })
        upstream.on('error', (err: grpc.ServiceError) => end(err.code === grpc.status.CANCELLED ? undefined : err))
        upstream.on('end', () => end(failure ?? undefined))
      })().catch((err: Error) =>
        call.emit('error', {code: grpc.status.INTERNAL, details: `fault proxy: ${err.message}`}),
      )
    }
  }

  private bidi(method: Method): grpc.handleBidiStreamingCall<Buffer, Buffer> {
    return (call) => {
      void (async () => {
        this.stats[method].calls++
        const rule = this.rule(method)
        if (rule?.latencyMs) await sleep(rule.latencyMs)
        const failure = this.failing(method, rule)
        if (failure) return call.emit('error', failure)
        const upstream = this.client.makeBidiStreamRequest(
          `/${SERVICE}/${method}`,
          identity,
          identity,
          this.forwarded(call.metadata),
          this.callOptions(call),
        )
        call.on('data', (m: Buffer) => upstream.write(m))
        call.on('end', () => upstream.end())
        call.on('cancelled', () => upstream.cancel())
        upstream.on('data', (m: Buffer) => call.write(m))
        upstream.on('error', (err: grpc.ServiceError) => err.code !== grpc.status.CANCELLED && call.emit('error', err))
        upstream.on('end', () => call.end())
      })().catch((err: Error) =>
        call.emit('error', {code: grpc.status.INTERNAL, details: `fault proxy: ${err.message}`}),
      )
    }
  }

  /**
   * PartitionQuery as the service answers it: at most `partitionCount` cursors, each a
   * document name, from one keys-only scan of the query's scope on the emulator, evenly
   * spaced in key order.
   */
  private async partitions(request: Buffer, metadata: grpc.Metadata): Promise<Buffer> {
    const req = PartitionQueryRequest.toObject(PartitionQueryRequest.decode(request), {defaults: false}) as {
      parent: string
      structuredQuery: Record<string, unknown>
      partitionCount: number | string
    }
    const scan = RunQueryRequest.fromObject({
      parent: req.parent,
      structuredQuery: {
        ...req.structuredQuery,
        select: {fields: [{fieldPath: '__name__'}]},
        orderBy: [{field: {fieldPath: '__name__'}, direction: 'ASCENDING'}],
      },
    })
    const names: string[] = []
    await new Promise<void>((resolve, reject) => {
      const stream = this.client.makeServerStreamRequest(
        `/${SERVICE}/RunQuery`,
        identity,
        identity,
        Buffer.from(RunQueryRequest.encode(scan).finish()),
        this.forwarded(metadata),
      )
      stream.on('data', (m: Buffer) => {
        const doc = (RunQueryResponse.decode(m) as unknown as {document?: {name: string}}).document
        if (doc) names.push(doc.name)
      })
      stream.on('error', reject)
      stream.on('end', resolve)
    })
    const wanted = Number(req.partitionCount)
    const points = [
      ...new Set(
        Array.from({length: wanted}, (_, i) => names[Math.floor(((i + 1) * names.length) / (wanted + 1))]).filter(
          (n) => n !== undefined,
        ),
      ),
    ]
    this.stats.PartitionQuery.splitPoints += points.length
    this.partitionAnswers.push(points)
    return Buffer.from(
      PartitionQueryResponse.encode(
        PartitionQueryResponse.fromObject({partitions: points.map((name) => ({values: [{referenceValue: name}]}))}),
      ).finish(),
    )
  }
}

/** The same answer for a document after every id of its collection ('~' sorts after the auto-id alphabet). */
function pastTheRange(message: Buffer): Buffer {
  const res = RunQueryResponse.decode(message) as unknown as {document: {name: string}}
  res.document.name = `${res.document.name.slice(0, res.document.name.lastIndexOf('/'))}/~~out-of-range~~`
  return Buffer.from(RunQueryResponse.encode(res).finish())
}

/** A client of `projectId` whose emulator host is the proxy at `via` (the client takes the host from the environment when it is built). */
export function throughProxy(via: string, projectId: string): Firestore {
  const saved = process.env.FIRESTORE_EMULATOR_HOST
  process.env.FIRESTORE_EMULATOR_HOST = via
  try {
    return new Firestore({projectId})
  } finally {
    process.env.FIRESTORE_EMULATOR_HOST = saved
  }
}
