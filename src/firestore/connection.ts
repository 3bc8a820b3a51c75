import {CallProperties, InterceptingCall, Interceptor, Metadata, status} from '@grpc/grpc-js'
import {App, deleteApp, initializeApp} from 'firebase-admin/app'
import {Firestore, getFirestore} from 'firebase-admin/firestore'
import type {Settings} from '../config'
import {keyFileCredential} from './credentials'
import {isEmulatorReachable} from './emulator-probe'
import {GrpcCode, UsageError} from '../errors'

export interface Connection {
  db: Firestore
  /** True when the target is an emulator (no throttling, no ramp). */
  emulator: boolean
  close(): Promise<void>
}

let appCounter = 0

/**
 * Per-RPC deadlines the client takes from `clientConfig`: a document lookup by id (rereads, the
 * ledger's transactions) gets 60 s per attempt instead of 300 s, so a dead connection is noticed
 * sooner. RunQuery and RunAggregationQuery keep 300 s: a scan chunk and an emulator count() are
 * long by nature. BatchWrite and Commit ignore these settings (the client passes its shipped
 * retry settings, 60 s per attempt and 600 s in all, with every call), so writes are bounded by
 * the writer's outage budget and the run's deadlines instead.
 */
const CLIENT_CONFIG = {
  interfaces: {
    'google.firestore.v1.Firestore': {
      methods: {BatchGetDocuments: {timeout_millis: 60_000}},
    },
  },
}

/**
 * The last line of a run's fence, at the gRPC call itself. The writer checks its lease
 * before it hands writes to the client, but the client may still send them later: a
 * process frozen (SIGSTOP, a suspended laptop) between that check and the socket sends on
 * waking, and the client retries a failed BatchWrite on its own for up to 10 minutes. Each
 * writer of a leased run registers a gate (its lease trusted, the writer not stopped);
 * every BatchWrite attempt that starts while a gate is shut is held back unsent, failing
 * with HELD_BACK, and the writer queues it again behind its own lease check.
 */
export const HELD_BACK = 'held back unsent: a writer of this process is past its lease or stopped'
const gates = new Set<() => boolean>()

/** Registers a writer's gate; returns the function that removes it. */
export function registerSendGate(open: () => boolean): () => void {
  gates.add(open)
  return () => void gates.delete(open)
}

/** A call that never starts: it ends at once, CANCELLED with HELD_BACK, and nothing is sent. */
const heldBack: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start: (_metadata, listener) =>
      process.nextTick(() =>
        listener.onReceiveStatus({code: status.CANCELLED, details: HELD_BACK, metadata: new Metadata()}),
      ),
    sendMessage: () => {},
    halfClose: () => {},
  })

/**
 * grpc-js calls this synchronously as each call attempt starts (the option passes through
 * the client to its channel). A shut gate adds the interceptor that ends the call unsent:
 * throwing here would escape from the client's retry timer and crash the process.
 */
function holdBack(call: CallProperties<unknown, unknown>): CallProperties<unknown, unknown> {
  if (gates.size === 0 || !call.methodDefinition.path.endsWith('/BatchWrite')) return call
  for (const open of gates)
    if (!open())
      return {
        ...call,
        callOptions: {...call.callOptions, interceptors: [...(call.callOptions.interceptors ?? []), heldBack]},
      }
  return call
}

export const isHeldBack = (err: unknown): boolean =>
  (err as {code?: unknown})?.code === GrpcCode.CANCELLED && String((err as Error)?.message).includes(HELD_BACK)

const clientSettings = () => ({clientConfig: CLIENT_CONFIG, 'grpc.callInvocationTransformer': holdBack})

const START_EMULATOR_HINT =
  'start one with `gcloud emulators firestore start --host-port=127.0.0.1:8080` and `export FIRESTORE_EMULATOR_HOST=127.0.0.1:8080` (or set environments.development.emulatorHost in wardrobe.config.json)'

/**
 * Opens Firestore for the resolved settings. Development only ever reaches an emulator;
 * staging and production reach the real project unless an emulator is named for them explicitly.
 */
export async function connect(settings: Settings, warn: (message: string) => void = () => {}): Promise<Connection> {
  const {environment, emulatorHost, projectId} = settings
  if (environment === 'development' && !emulatorHost) {
    throw new UsageError('development talks only to a Firestore emulator, and none is configured', START_EMULATOR_HINT)
  }
  if (emulatorHost) {
    if (!(await isEmulatorReachable(emulatorHost))) {
      throw new UsageError(`no Firestore emulator answers at ${emulatorHost}`, START_EMULATOR_HINT)
    }
    // The client library lets this variable override every other setting, so it is the one switch.
    process.env.FIRESTORE_EMULATOR_HOST = emulatorHost
  } else if (process.env.FIRESTORE_EMULATOR_HOST) {
    warn(`ignoring FIRESTORE_EMULATOR_HOST for ${environment}: connecting to project ${projectId}`)
    delete process.env.FIRESTORE_EMULATOR_HOST
  }
  if (emulatorHost) {
    // No app and no credentials: an emulator needs none, and the auth library would otherwise
    // probe the GCE metadata server (a 403 warning and seconds lost on laptops).
    process.env.METADATA_SERVER_DETECTION ??= 'none'
    const db = new Firestore({projectId, ...clientSettings()})
    return {db, emulator: true, close: () => db.terminate()}
  }
  const credential = settings.credentials ? await keyFileCredential(settings.credentials) : undefined
  const app: App = initializeApp(
    credential ? {projectId, credential} : {projectId},
    `wardrobe-${process.pid}-${++appCounter}`,
  )
  const db = getFirestore(app)
  // firebase-admin passes no client settings through; they may still be added before first use.
  db.settings(clientSettings())
  return {db, emulator: false, close: () => deleteApp(app)}
}
