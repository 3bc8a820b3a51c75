import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {WardrobeCommand} from '../cli/base-command'
import {exitCodeForValidation, UsageError} from '../errors'
import {createProgress} from '../cli/progress'
import {writeReportFile} from '../services/reports'
import {
  DEFAULT_SAMPLE_SIZE,
  FAILURE_LIST_CAP,
  runValidation,
  ValidationReport,
  ValidationReportSchema,
} from '../services/validate'
import {loadVocabulary, NORMALIZED_FIELDS, Vocabulary} from '../domain/vocabulary'

export default class Validate extends WardrobeCommand<ValidationReport> {
  static summary = 'Check the quality and correctness of normalized items: a random sample, or every item.'

  static description = `Checks the items in scope (all but error items a backfill recorded in the ledger): an item without \`normalized\` fails as not-normalized; one with it is checked for required fields and types, canonical values (folded, no duplicates, known to the vocabulary of the item's version; unknown values are unmapped warnings), consistency (normalizing the originals again gives the stored arrays and source_hash: catches items edited after normalization), and semantic compatibility (an array-contains query on normalized.<field>, as the app's filter runs it, finds the item). Reports data-quality metrics.
Items at a version whose vocabulary is not loaded are checked for structure and staleness (source_hash) and reported as unverified-version: neither failed nor passed.
The sample is drawn at random over the whole key space, not the first items by id. Reads only; never writes. Exits 4 when the failure rate exceeds --max-failure-rate, or under --all when coverage (normalized / in scope) is below --min-coverage.`

  static examples = [
    {description: 'Validate 100 random items', command: '<%= config.bin %> <%= command.id %>'},
    {
      description: 'A larger sample, saving the report',
      command: '<%= config.bin %> <%= command.id %> --sample-size 500 --save-report',
    },
    {
      description: 'Every item, in CI: fail above 0.1% failures',
      command: '<%= config.bin %> <%= command.id %> --all --max-failure-rate 0.001 --json',
    },
  ]

  static flags = {
    'sample-size': Flags.integer({
      summary: 'Random items to check.',
      default: DEFAULT_SAMPLE_SIZE,
      min: 1,
      max: 100_000,
      exclusive: ['all'],
    }),
    all: Flags.boolean({
      default: false,
      summary: 'Check every item (streamed; semantic queries for a random 200).',
      exclusive: ['sample-size'],
    }),
    'save-report': Flags.boolean({
      default: false,
      summary: 'Write validation_report_YYYYMMDD_HHMMSS.json to --output-dir.',
    }),
    'max-failure-rate': Flags.string({
      default: '0',
      summary: 'Exit 4 when failing/checked exceeds this (0..1, or a percentage like 0.5%).',
    }),
    // No oclif default: a default would make it look given without --all.
    'min-coverage': Flags.string({
      summary: 'With --all: exit 4 when normalized/in-scope items is below this (0..1, or a percentage; default 1).',
    }),
    taxonomy: Flags.string({
      multiple: true,
      summary:
        'Vocabulary file replacing the shipped one, as for backfill; repeat it to add vocabularies of other versions items may carry.',
    }),
  }

  async run(): Promise<ValidationReport> {
    const {flags} = await this.parse(Validate)
    const settings = this.settingsFrom(flags)
    const maxFailureRate = parseRate(flags['max-failure-rate'], '--max-failure-rate')
    const minCoverage =
      flags['min-coverage'] === undefined ? 1 : parseRate(flags['min-coverage'], '--min-coverage', '0.99 (or 99%)')
    if (flags['min-coverage'] !== undefined && !flags.all)
      throw new UsageError(
        '--min-coverage applies to --all only',
        'add --all, or drop --min-coverage (a sample reports its coverage without a threshold)',
      )
    const files = flags.taxonomy ?? (settings.taxonomy ? [settings.taxonomy] : [])
    const vocabulary = loadVocabulary(files[0])
    // The shipped vocabulary stays loaded for items it normalized, unless a file replaces its version.
    const others: Vocabulary[] = [
      ...(files.length > 0 ? [loadVocabulary()] : []),
      ...files.slice(1).map((f) => loadVocabulary(f)),
    ]
    const {db} = await this.open(settings, flags['log-level'])

    // One progress line per phase: sampling (or scanning), then the semantic queries.
    const labels = {sampling: 'sampling', checking: 'scanning', semantic: 'semantic queries'} as const
    let phase: keyof typeof labels | undefined
    let progress = createProgress('validate', {enabled: false})
    let started = Date.now()
    const signal = this.interruptSignal(() =>
      process.stderr.write('\nInterrupt: stopping; the report covers the items checked so far\n'),
    )
    const report = await runValidation(db, settings, {
      vocabulary,
      otherVocabularies: others,
      all: flags.all,
      sampleSize: flags['sample-size'],
      maxFailureRate,
      minCoverage,
      signal,
      logger: this.logger,
      onProgress: (p) => {
        if (p.phase === 'checking' && !flags.all) return // instant for a sample: nothing to watch
        if (p.phase !== phase) {
          progress.stop()
          phase = p.phase
          progress = createProgress(labels[p.phase])
          started = Date.now()
        }
        const seconds = (Date.now() - started) / 1000
        const rate = seconds >= 0.5 ? p.done / seconds : 0
        progress.update({
          done: p.done,
          total: p.total,
          rate,
          etaSeconds: p.total && rate > 0 ? (p.total - p.done) / rate : null,
          counts: {failed: p.failed},
        })
      },
    })
    progress.stop()
    const file = flags['save-report']
      ? writeReportFile(settings.outputDir, 'validation_report', ValidationReportSchema, report)
      : null
    this.render(report, file)
    process.exitCode = exitCodeForValidation(report)
    return report
  }

  private render(r: ValidationReport, file: string | null): void {
    if (this.jsonEnabled()) return
    const pct = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 2)}%`
    const scope =
      r.mode === 'all'
        ? `all items (${r.sampling.collectionTotal} read)`
        : `random sample of ${r.sampleSize} (${r.sampling.method}: ${r.sampling.note})`
    this.log(`Validation of ${r.collection} (${r.projectId}, ${r.environment}): ${scope}`)
    this.log(
      `Vocabulary ${r.currentVersion}${r.vocabularyVersions.length > 1 ? ` (also loaded: ${r.vocabularyVersions.filter((v) => v !== r.currentVersion).join(', ')})` : ''}`,
    )
    const k = r.coverage
    const excluded =
      r.mode === 'all' ? `${k.errorItems} error items excluded` : `${k.errorItems} error items recorded, excluded`
    this.log(
      `Coverage${r.mode === 'all' ? '' : ' (sample)'}: ${k.normalized} of ${k.inScope} items in scope carry normalized (${pct(k.ratio)}; ${excluded}); ${k.enforced ? `--min-coverage ${pct(k.minCoverage)}` : '--min-coverage applies with --all'}`,
    )
    this.log('')
    const rows: [string, string, string][] = [
      [
        'structure',
        String(r.checks.structure.failed),
        'four arrays of strings, normalized_at Timestamp, normalized_version string',
      ],
      ['canonical', String(r.checks.canonical.failed), canonicalNote(r)],
      [
        'consistency',
        String(r.checks.consistency.failed),
        r.checks.consistency.notCompared > 0
          ? `${r.checks.consistency.notCompared} items not re-normalized (vocabulary of their version not loaded)`
          : 'originals re-normalized and compared',
      ],
      ['semantic', String(r.checks.semantic.failed), r.checks.semantic.note],
      [
        'not-normalized',
        String(r.checks.notNormalized.failed),
        'items in scope without normalized (error items excluded)',
      ],
    ]
    this.log(table(['check', 'failed', 'notes'], rows, [false, true, false]))
    this.log('')
    const fieldRows = NORMALIZED_FIELDS.map((f): [string, string, string, string, string] => {
      const m = r.metrics.fields[f]
      return [f, pct(m.emptyShare), String(m.valuesPerItem), String(m.maxValues), String(m.invalidItems)]
    })
    this.log(table(['field', 'empty', 'values/item', 'max', 'invalid'], fieldRows, [false, true, true, true, true]))
    this.log('')
    this.log(`Items with all four fields empty: ${r.metrics.allEmptyItems}`)
    this.log(
      `Unmapped: ${r.metrics.unmapped.items} items (${pct(r.metrics.unmapped.share)}), ${r.metrics.unmapped.values} values, ${r.metrics.unmapped.distinct} distinct${
        r.metrics.unmapped.top.length > 0
          ? '; top: ' +
            r.metrics.unmapped.top
              .slice(0, 5)
              .map((u) => `${u.field} "${u.value}" × ${u.count}`)
              .join(', ')
          : ''
      }`,
    )
    this.log(`Versions: ${r.metrics.versions.map((v) => `${v.version} × ${v.count}`).join(', ') || 'none'}`)
    if (r.failures.length > 0) {
      this.log('')
      this.log(
        `Failing items (${Math.min(20, r.failures.length)} of ${r.failuresTotal}${r.failuresTotal > 20 ? `; --save-report lists up to ${FAILURE_LIST_CAP.toLocaleString('en-US')}` : ''}):`,
      )
      for (const f of r.failures.slice(0, 20)) {
        for (const reason of f.reasons) this.log(`  ${f.id}  ${reason.check}: ${reason.reason}`)
      }
    }
    if (r.error) this.log(`Error: ${r.error}`)
    this.log('')
    const verdict: Record<ValidationReport['status'], string> = {
      passed: chalk.green('PASSED'),
      failed: chalk.red('FAILED'),
      'no-data': chalk.red('NO DATA'),
      interrupted: chalk.yellow('INTERRUPTED'),
      error: chalk.red('ERROR'),
    }
    const unloaded = unloadedVersions(r)
    const short =
      k.enforced && k.ratio < k.minCoverage
        ? `coverage ${pct(k.ratio)} is below --min-coverage ${pct(k.minCoverage)} (${k.inScope - k.normalized} items in scope carry no normalized: run \`wardrobe backfill\`); `
        : ''
    const unverified =
      r.unverifiedTotal > 0
        ? `, ${r.unverifiedTotal} unverified (version ${unloaded.map((v) => v.version).join(', ')}: pass --taxonomy with its vocabulary)`
        : ''
    const detail =
      r.status === 'no-data'
        ? 'no items in scope: the collection is empty, or holds error items only'
        : `${short}${r.failed} of ${r.checked} items fail (${pct(r.failureRate)}; max ${pct(r.maxFailureRate)}), ${r.warningsTotal} with warnings${unverified}`
    this.log(`${verdict[r.status]}: ${detail}`)
    if (file) this.log(`Report: ${file}`)
  }
}

/** Versions items carry whose vocabulary is not loaded. */
function unloadedVersions(r: ValidationReport): ValidationReport['metrics']['versions'] {
  return r.metrics.versions.filter((v) => !r.vocabularyVersions.includes(v.version) && !v.version.startsWith('('))
}

function canonicalNote(r: ValidationReport): string {
  const unloaded = unloadedVersions(r)
  const parts = [`${r.metrics.unmapped.items} items with unmapped values (warning)`]
  if (unloaded.length > 0)
    parts.push(
      `${unloaded.reduce((n, v) => n + v.count, 0)} items of version ${unloaded.map((v) => v.version).join(', ')} not checked for membership: pass --taxonomy`,
    )
  return parts.join('; ')
}

/** A rate in [0, 1] given to `flag`: `0.05` or `5%`. Anything else is a usage error. */
export function parseRate(text: string, flag = '--max-failure-rate', example = '0.01 (or 1%)'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$/.exec(text)
  const value = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN
  if (!(value >= 0 && value <= 1)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not a rate between 0 and 1`, `e.g. ${flag} ${example}`)
  }
  return value
}

function table(head: string[], rows: string[][], right: boolean[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 && !right[i] ? c : right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}
