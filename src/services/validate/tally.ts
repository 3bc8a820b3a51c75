import {NORMALIZED_FIELDS, NormalizedField} from '../../domain/vocabulary'
import {ItemResult, NOT_NORMALIZED, SemanticProbe, semanticFailure} from './checks'
import type {Finding, ItemFindings} from './schema'

/** Failing items listed in a report (the total is always counted). */
export const FAILURE_LIST_CAP = 1000
export const WARNING_LIST_CAP = 100
const UNMAPPED_TRACK_LIMIT = 10_000
const VERSION_TRACK_LIMIT = 50

/** Running totals that stay bounded however many items are checked. */
export class Tally {
  /** Items in scope: carrying normalized, or not (failing). */
  checked = 0
  /** Those carrying normalized: what the per-item checks and the metrics cover. */
  normalized = 0
  failed = 0
  failuresTotal = 0
  warningsTotal = 0
  unverifiedTotal = 0
  readonly unverified: ItemFindings[] = []
  readonly failures: ItemFindings[] = []
  readonly failureIndex = new Map<string, ItemFindings>()
  readonly warnings: ItemFindings[] = []
  readonly byCheck = {structure: 0, canonical: 0, canonicalWarned: 0, consistency: 0, notCompared: 0, notNormalized: 0}
  readonly fields = Object.fromEntries(
    NORMALIZED_FIELDS.map((f) => [f, {emptyItems: 0, invalidItems: 0, values: 0, maxValues: 0, items: 0}]),
  ) as Record<
    NormalizedField,
    {emptyItems: number; invalidItems: number; values: number; maxValues: number; items: number}
  >
  allEmptyItems = 0
  unmappedItems = 0
  unmappedValues = 0
  /** `field:value` → count; new keys stop being tracked past UNMAPPED_TRACK_LIMIT. */
  readonly unmapped = new Map<string, number>()
  readonly versions = new Map<string, number>()

  add(r: ItemResult): void {
    this.checked++
    this.normalized++
    const failedChecks = new Set(r.failures.map((f) => f.check))
    if (failedChecks.has('structure')) this.byCheck.structure++
    if (failedChecks.has('canonical')) this.byCheck.canonical++
    if (failedChecks.has('consistency')) this.byCheck.consistency++
    if (r.canonical.warnings.length > 0) this.byCheck.canonicalWarned++
    if (r.structure.version !== null && !r.consistency.compared) this.byCheck.notCompared++
    if (r.failures.length > 0) this.fail(r.id, r.failures)
    if (r.warnings.length > 0) {
      this.warningsTotal++
      if (this.warnings.length < WARNING_LIST_CAP) this.warnings.push({id: r.id, reasons: r.warnings})
    }
    if (r.unverified) {
      this.unverifiedTotal++
      if (this.unverified.length < FAILURE_LIST_CAP) this.unverified.push({id: r.id, reasons: [r.unverified]})
    }
    let allEmpty = true
    for (const field of NORMALIZED_FIELDS) {
      const m = this.fields[field]
      const values = r.structure.arrays[field]
      if (!values) {
        m.invalidItems++
        allEmpty = false
        continue
      }
      m.items++
      m.values += values.length
      m.maxValues = Math.max(m.maxValues, values.length)
      if (values.length === 0) m.emptyItems++
      else allEmpty = false
    }
    if (allEmpty) this.allEmptyItems++
    if (r.canonical.unmapped.length > 0) this.unmappedItems++
    this.unmappedValues += r.canonical.unmapped.length
    for (const u of r.canonical.unmapped) {
      const key = `${u.field}:${u.value}`
      const n = this.unmapped.get(key)
      if (n !== undefined || this.unmapped.size < UNMAPPED_TRACK_LIMIT) this.unmapped.set(key, (n ?? 0) + 1)
    }
    const version = r.structure.version ?? '(missing or invalid)'
    if (this.versions.has(version) || this.versions.size < VERSION_TRACK_LIMIT)
      this.versions.set(version, (this.versions.get(version) ?? 0) + 1)
    else this.versions.set('(other)', (this.versions.get('(other)') ?? 0) + 1)
  }

  /** An item in scope without `normalized`: checked, and failing. */
  notNormalized(id: string): void {
    this.checked++
    this.byCheck.notNormalized++
    this.fail(id, [NOT_NORMALIZED])
  }

  private fail(id: string, reasons: Finding[]): void {
    this.failed++
    this.failuresTotal++
    if (this.failures.length < FAILURE_LIST_CAP) {
      const entry = {id, reasons}
      this.failures.push(entry)
      this.failureIndex.set(id, entry)
    }
  }

  /** A semantic miss: adds the reason to the item, counting the item as failing if nothing else failed it. */
  semanticMiss(p: SemanticProbe, alreadyFailed: boolean): void {
    const finding = semanticFailure(p)
    const listed = this.failureIndex.get(p.id)
    if (listed) listed.reasons.push(finding)
    else if (!alreadyFailed) this.fail(p.id, [finding])
  }
}
