import {z} from 'zod'
import type {RunRecord} from '../../engine/ledger'

/** Vocabulary versions: how two compare, and which one monitor judges items by. */

/**
 * Dotted numeric versions compared part by part ("1.10" > "1.9", "1.0" = "1"); null when
 * either is not numeric and they differ: such versions are only ever equal or unrelated.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  if (a === b) return 0
  const numeric = /^\d+(\.\d+)*$/
  if (!numeric.test(a) || !numeric.test(b)) return null
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d > 0 ? 1 : -1
  }
  return 0
}

export const VERSION_RELATIONS = ['current', 'older', 'newer', 'incomparable'] as const
export type VersionRelation = (typeof VERSION_RELATIONS)[number]

/** How `version` stands to the judged one. */
export function versionRelation(version: string, judged: string): VersionRelation {
  const c = compareVersions(version, judged)
  return c === 0 ? 'current' : c === null ? 'incomparable' : c > 0 ? 'newer' : 'older'
}

export const VERSION_SOURCES = ['flag', 'config', 'ledger', 'shipped'] as const

/** The version monitor measures items against, and where it came from. */
export const VersionBasisSchema = z.object({
  version: z.string(),
  /** --taxonomy, the config file's taxonomy, the latest completed backfill (ledger), or the vocabulary shipped with the package. */
  source: z.enum(VERSION_SOURCES),
  /** The latest completed backfill run, when the ledger has one. */
  runId: z.string().nullable(),
  /** The content hash of that vocabulary (`normalized.taxonomy_hash`), when known: an edited file of the same version is another vocabulary. */
  hash: z.string().nullable().default(null),
  note: z.string(),
})
export type VersionBasis = z.infer<typeof VersionBasisSchema>

/**
 * Without --taxonomy (or a config taxonomy), "current" is what the ledger's latest completed
 * backfill wrote, so a backfill at a custom 1.1 vocabulary is not measured (and re-run)
 * against the shipped 1.0. The shipped version wins only when it is newer: a backfill
 * without --taxonomy then moves items forward, never back.
 */
export function judgeVersion(
  explicit: {version: string; source: 'flag' | 'config'; hash?: string} | undefined,
  runs: readonly RunRecord[],
  shippedVersion: string,
  shippedHash: string | null = null,
): VersionBasis {
  // Newest first: the runs as monitor sorts them.
  const latest =
    runs.find(
      (r) => r.kind === 'backfill' && r.status === 'completed' && typeof r.version === 'string' && r.version !== '',
    ) ?? null
  const runId = latest?.runId ?? null
  if (explicit) {
    const from = explicit.source === 'flag' ? 'from --taxonomy' : "from the config file's taxonomy"
    return {
      version: explicit.version,
      source: explicit.source,
      hash: explicit.hash ?? null,
      runId,
      note: from + (latest ? `; the latest completed backfill (${latest.runId}) wrote ${latest.version}` : ''),
    }
  }
  const shipped = {version: shippedVersion, source: 'shipped' as const, hash: shippedHash, runId}
  if (!latest) return {...shipped, note: 'the vocabulary shipped with the package: no completed backfill in the ledger'}
  const ledgerVersion = latest.version!
  if (compareVersions(shippedVersion, ledgerVersion) === 1) {
    return {
      ...shipped,
      note: `the vocabulary shipped with the package, newer than ${ledgerVersion} that the latest completed backfill (${latest.runId}) wrote`,
    }
  }
  // A run from before content hashes were recorded: its version alone.
  const hash = typeof latest.options.taxonomyHash === 'string' ? latest.options.taxonomyHash : null
  return {
    version: ledgerVersion,
    source: 'ledger',
    hash,
    runId,
    note: `the version the latest completed backfill (${latest.runId}) wrote`,
  }
}
