/** Whole-collection checks the tests share: originals untouched, every item normalized from its current originals by a run. */
import {DocumentSnapshot} from 'firebase-admin/firestore'
import {normalizeItem} from '../../src/domain/normalization'
import {loadVocabulary} from '../../src/domain/vocabulary'
import {canonical} from './harness'

const vocab = loadVocabulary()

export const wellFormed = (doc: DocumentSnapshot) => {
  const data = {...doc.data()}
  delete data.normalized
  return normalizeItem(data, vocab).ok
}

/** key → canonical JSON of the original fields (everything but `normalized`). */
export function originals(docs: DocumentSnapshot[], key: (d: DocumentSnapshot) => string): Map<string, string> {
  return new Map(
    docs.map((d) => {
      const data = {...d.data()}
      delete data.normalized
      return [key(d), JSON.stringify(canonical(data))]
    }),
  )
}

/** Every well-formed item holds `normalized` computed from its current originals by `runId`; malformed ones none. */
export function expectNormalizedBy(
  docs: DocumentSnapshot[],
  runId: string,
  key: (d: DocumentSnapshot) => string,
): void {
  const wrong: string[] = []
  for (const d of docs) {
    const data = {...d.data()}
    const normalized = data.normalized
    delete data.normalized
    const outcome = normalizeItem(data, vocab)
    if (!outcome.ok) {
      if (normalized !== undefined) wrong.push(`${key(d)}: malformed but written`)
      continue
    }
    if (normalized?.run_id !== runId || normalized.source_hash !== outcome.sourceHash)
      wrong.push(`${key(d)}: not normalized by ${runId}`)
    else if (
      JSON.stringify(['style', 'occasion', 'mood', 'season'].map((f) => normalized[f])) !==
      JSON.stringify(['style', 'occasion', 'mood', 'season'].map((f) => (outcome.values as any)[f]))
    )
      wrong.push(`${key(d)}: values differ`)
  }
  expect(wrong.slice(0, 10)).toEqual([])
}
