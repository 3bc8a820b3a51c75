import {FieldPath} from 'firebase-admin/firestore'
import {compareKeys} from '../../src/firestore/target'
import {resetProject, testDb, uniqueProject} from '../support/harness'

/**
 * The scan stops on any answer out of key order (a duplicate, a stray document), so its
 * order must be Firestore's exactly: a difference would fail sound runs. Checked against
 * the emulator's own order for ids and paths where UTF-16 and UTF-8 order differ.
 */
const IDS = ['a', 'B', 'a-b', 'a0', 'é', 'ÿ', '\uFFFD', '\u{1F600}', '\uE000', 'z~', '~', ' ', 'A b']

test('compareKeys orders ids and collection-group paths as Firestore does', async () => {
  const projectId = uniqueProject('scan-order')
  await resetProject(projectId)
  const db = testDb(projectId)
  try {
    const batch = db.batch()
    for (const id of IDS) {
      batch.set(db.collection('things').doc(id), {n: 1})
      batch.set(db.collection('users').doc(id).collection('things').doc('x'), {n: 1})
    }
    await batch.commit()
    const ids = (await db.collection('things').orderBy(FieldPath.documentId()).get()).docs.map((d) => d.id)
    const paths = (await db.collectionGroup('things').orderBy(FieldPath.documentId()).get()).docs.map((d) => d.ref.path)
    expect([...IDS].sort(compareKeys)).toEqual(ids)
    expect([...paths].reverse().sort(compareKeys)).toEqual(paths)
    // JavaScript's own order differs for these: the check would fail sound runs with it.
    expect([...IDS].sort()).not.toEqual(ids)
  } finally {
    await db.terminate()
  }
})
