import * as grpc from '@grpc/grpc-js'
import {Firestore} from 'firebase-admin/firestore'
import protobuf from 'protobufjs'
import {mulberry32} from '../../src/dev/seed-data'
import {emulatorHost, resetProject, testDb, uniqueProject} from '../support/harness'
import {GrpcFaultProxy, throughProxy} from '../support/grpc-proxy'

/**
 * The fault proxy the chaos suite rehearses the service's answers with: each fault does
 * what it says, seen by a client through it, against the real emulator.
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = protobuf.Root.fromJSON(require('@google-cloud/firestore/build/protos/v1.json'))
const RunQueryRequest = root.lookupType('google.firestore.v1.RunQueryRequest')
const RunQueryResponse = root.lookupType('google.firestore.v1.RunQueryResponse')

let proxy: GrpcFaultProxy
let via: string
let projectId: string
/** The test's own client, straight to the emulator: what really is in the database. */
let direct: Firestore
/** A client through the proxy. */
let db: Firestore
const COL = 'items'

/** A RunQuery through the proxy with a bare gRPC client: every document name it answers, and how it ended. */
async function rawRunQuery(collection = COL): Promise<{names: string[]; code: number}> {
  const client = new grpc.Client(via, grpc.credentials.createInsecure())
  const request = RunQueryRequest.fromObject({
    parent: `projects/${projectId}/databases/(default)/documents`,
    structuredQuery: {
      from: [{collectionId: collection}],
      orderBy: [{field: {fieldPath: '__name__'}, direction: 'ASCENDING'}],
    },
  })
  const metadata = new grpc.Metadata()
  metadata.set('authorization', 'Bearer owner')
  const names: string[] = []
  const stream = client.makeServerStreamRequest(
    '/google.firestore.v1.Firestore/RunQuery',
    (b: Buffer) => b,
    (b: Buffer) => b,
    Buffer.from(RunQueryRequest.encode(request).finish()),
    metadata,
  )
  const code = await new Promise<number>((resolve) => {
    stream.on('data', (m: Buffer) => {
      const doc = (RunQueryResponse.decode(m) as unknown as {document?: {name: string}}).document
      if (doc) names.push(doc.name.split('/').pop()!)
    })
    stream.on('error', (err: grpc.ServiceError) => resolve(err.code))
    stream.on('end', () => resolve(grpc.status.OK))
  })
  client.close()
  return {names, code}
}

const ids = Array.from({length: 30}, (_, i) => `item-${String(i).padStart(2, '0')}`)

beforeAll(async () => {
  projectId = uniqueProject('grpc-proxy')
  await resetProject(projectId)
  direct = testDb(projectId)
  proxy = new GrpcFaultProxy(emulatorHost(), mulberry32(7))
  via = await proxy.listen()
  db = throughProxy(via, projectId)
})

afterAll(async () => {
  await db.terminate()
  await direct.terminate()
  await proxy.close()
})

beforeEach(async () => {
  proxy.clear()
  proxy.answerPartitionQuery = false
  await resetProject(projectId)
  const batch = direct.batch()
  for (const id of ids) batch.set(direct.collection(COL).doc(id), {n: Number(id.slice(5))})
  await batch.commit()
})

test('passes every call through unchanged when nothing is scripted', async () => {
  await db.collection(COL).doc('new').set({a: 1})
  const got = await db.collection(COL).get()
  const counted = (await db.collection(COL).count().get()).data().count
  await db.runTransaction(async (tx) =>
    tx.update(db.collection(COL).doc('new'), {a: (await tx.get(db.collection(COL).doc('new'))).get('a') + 1}),
  )
  expect(got.size).toBe(31)
  expect(counted).toBe(31)
  expect((await direct.collection(COL).doc('new').get()).get('a')).toBe(2)
  expect(proxy.totals.failed).toBe(0)
  expect(proxy.stats.RunQuery.documents).toBeGreaterThanOrEqual(31)
})

test('fails a share of calls with the given status, and those calls never reach the emulator', async () => {
  proxy.set('Commit', {fail: {code: grpc.status.PERMISSION_DENIED, share: 0.5}})
  const results = await Promise.allSettled(ids.map((id) => db.collection(COL).doc(id).update({touched: true})))
  const refused = results.filter((r) => r.status === 'rejected')
  expect(refused.every((r) => (r as PromiseRejectedResult).reason.code === grpc.status.PERMISSION_DENIED)).toBe(true)
  expect(refused.length).toBe(proxy.stats.Commit.failed)
  expect(refused.length).toBeGreaterThan(5)
  expect(refused.length).toBeLessThan(25)
  const touched = (await direct.collection(COL).where('touched', '==', true).count().get()).data().count
  expect(touched).toBe(ids.length - refused.length)
})

test('fails every call for a time window only', async () => {
  proxy.set('Commit', {fail: {code: grpc.status.UNAUTHENTICATED}}, 1000)
  await expect(db.collection(COL).doc(ids[0]).update({touched: 1})).rejects.toMatchObject({
    code: grpc.status.UNAUTHENTICATED,
  })
  await new Promise((r) => setTimeout(r, 1100))
  await db.collection(COL).doc(ids[0]).update({touched: 2})
  expect((await direct.collection(COL).doc(ids[0]).get()).get('touched')).toBe(2)
})

test('fails as many calls as scripted, with the service’s own text', async () => {
  const details = 'Transaction is invalid or closed.'
  const before = proxy.stats.Commit.failed
  proxy.set('Commit', {fail: {code: grpc.status.INVALID_ARGUMENT, details}, times: 1})
  await expect(db.collection(COL).doc(ids[0]).update({touched: 1})).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details,
  })
  await db.collection(COL).doc(ids[0]).update({touched: 2})
  expect((await direct.collection(COL).doc(ids[0]).get()).get('touched')).toBe(2)
  expect(proxy.stats.Commit.failed - before).toBe(1)
})

test('"applied" failures reach the emulator first, then answer the error', async () => {
  proxy.set('Commit', {fail: {code: grpc.status.PERMISSION_DENIED, applied: true}})
  await expect(db.collection(COL).doc(ids[0]).update({touched: true})).rejects.toMatchObject({
    code: grpc.status.PERMISSION_DENIED,
  })
  expect((await direct.collection(COL).doc(ids[0]).get()).get('touched')).toBe(true)
})

test('fails single writes inside a BatchWrite with their own status; the others are applied', async () => {
  proxy.set('BatchWrite', {failWrites: {code: grpc.status.PERMISSION_DENIED, share: 0.3}})
  const bulk = db.bulkWriter()
  bulk.onWriteError(() => false)
  const writes = Promise.allSettled(ids.map((id) => bulk.update(db.collection(COL).doc(id), {touched: true})))
  await bulk.close()
  const results = await writes
  const refused = ids.filter((_, i) => results[i].status === 'rejected')
  expect(refused.length).toBe(proxy.stats.BatchWrite.writesFailed)
  expect(refused.length).toBeGreaterThan(2)
  expect(refused.length).toBeLessThan(ids.length)
  expect(
    results
      .filter((r) => r.status === 'rejected')
      .every((r) => (r as PromiseRejectedResult).reason.code === grpc.status.PERMISSION_DENIED),
  ).toBe(true)
  const touched = new Set((await direct.collection(COL).where('touched', '==', true).get()).docs.map((d) => d.id))
  expect(ids.filter((id) => !touched.has(id))).toEqual(refused)
})

test('adds latency to each call', async () => {
  proxy.set('BatchGetDocuments', {latencyMs: 400})
  const started = Date.now()
  await db.collection(COL).doc(ids[0]).get()
  expect(Date.now() - started).toBeGreaterThanOrEqual(400)
})

test('cuts a RunQuery stream with UNAVAILABLE after N documents, as many times as scripted', async () => {
  proxy.set('RunQuery', {cutAfter: 7, times: 1, collection: COL})
  const cut = await rawRunQuery()
  expect(cut).toEqual({names: ids.slice(0, 7), code: grpc.status.UNAVAILABLE})
  const whole = await rawRunQuery()
  expect(whole).toEqual({names: ids, code: grpc.status.OK})
  expect(proxy.stats.RunQuery.cuts).toBe(1)
  proxy.set('RunQuery', {cutAfter: [3, 0], cutCode: [grpc.status.UNKNOWN, grpc.status.UNAVAILABLE]})
  expect(await rawRunQuery()).toEqual({names: ids.slice(0, 3), code: grpc.status.UNKNOWN})
  expect(await rawRunQuery()).toEqual({names: [], code: grpc.status.UNAVAILABLE})
  expect(await rawRunQuery()).toEqual({names: ids, code: grpc.status.OK})
})

test("scoped to a collection, a rule leaves other collections' queries alone", async () => {
  await direct.collection('other').doc('x').set({a: 1})
  proxy.set('RunQuery', {cutAfter: 0, collection: COL})
  expect(await rawRunQuery('other')).toEqual({names: ['x'], code: grpc.status.OK})
  expect((await rawRunQuery()).code).toBe(grpc.status.UNAVAILABLE)
})

test('answers a RunQuery with the last document again, or with one past the requested range', async () => {
  proxy.set('RunQuery', {bad: {kind: 'duplicate', after: 3}, times: 1})
  expect((await rawRunQuery()).names).toEqual([...ids.slice(0, 3), ids[2], ...ids.slice(3)])
  proxy.set('RunQuery', {bad: {kind: 'out-of-range', after: 3}, times: 1})
  expect((await rawRunQuery()).names).toEqual([...ids.slice(0, 3), '~~out-of-range~~', ...ids.slice(3)])
})

test('answers PartitionQuery with split points from the emulator that partition the scope exactly', async () => {
  // The emulator itself does not implement it.
  await expect(db.collectionGroup(COL).getPartitions(4)[Symbol.asyncIterator]().next()).rejects.toMatchObject({
    code: grpc.status.UNIMPLEMENTED,
  })
  proxy.answerPartitionQuery = true
  const covered: string[] = []
  let partitions = 0
  for await (const p of db.collectionGroup(COL).getPartitions(4)) {
    partitions++
    covered.push(...(await p.toQuery().get()).docs.map((d) => d.id))
  }
  expect(partitions).toBe(4)
  expect(proxy.partitionAnswers[0].map((n) => n.split('/').pop())).toEqual([ids[7], ids[15], ids[22]])
  expect(covered).toEqual(ids)
})
