import path from 'node:path'
import {Flags} from '@oclif/core'
import {WardrobeCommand} from '../cli/base-command'
import {colorLevel, renderDashboard, renderWatchLine, screen} from '../cli/dashboard'
import {errorMessage, exitCodeForHealth, ExitCode, isRetryable, UsageError} from '../errors'
import {
  collectMonitorReport,
  FAIL_ON_LEVELS,
  FailOnLevel,
  healthAtOrPast,
  MonitorOptions,
  MonitorReport,
  MonitorReportSchema,
  targetArgsFor,
} from '../services/monitor'
import {writeReportFile} from '../services/reports'
import {OutageError} from '../firestore/retry'
import {loadVocabulary} from '../domain/vocabulary'

const REPORT_PREFIX = 'backfill_report'

export default class Monitor extends WardrobeCommand<MonitorReport | undefined> {
  static summary = 'Progress and health of the backfill: item counts, runs, error items, recommendations.'

  static description = `Counts come from count() aggregations, read with the latest normalized items, the run records and the latest error records in one read-only snapshot: monitor reads a bounded number of documents whatever the size of the collection.
"Normalized" means normalized.normalized_version is a non-empty string; "current" that it equals the version monitor judges by: --taxonomy's (or the config file's taxonomy), else the version of the latest completed backfill in the ledger (the shipped vocabulary's when it is newer, or when no backfill has completed); "not normalized" is everything else (no normalized field, or one without a version).
Monitor never recommends a backfill that would rewrite items at a newer version than it writes.
A run recorded as running whose process is gone or whose heartbeat is stale shows as stalled, with the command that resumes it.
--watch samples every --interval seconds until Ctrl-C (exit 0): a screen redrawn in place on a terminal, one line per sample otherwise, one JSON object per line with --json.`

  static examples = [
    {description: 'One report of the local emulator', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Follow a running backfill', command: '<%= config.bin %> <%= command.id %> --watch --interval 10'},
    {
      description: 'Runbook gate: save the report and exit 4 on critical health',
      command:
        '<%= config.bin %> <%= command.id %> --environment production --project my-app --save-report --fail-on critical --json',
    },
  ]

  static flags = {
    watch: Flags.boolean({default: false, summary: 'Keep sampling every --interval seconds until Ctrl-C.'}),
    interval: Flags.integer({default: 30, min: 1, summary: 'Seconds between samples with --watch.'}),
    'save-report': Flags.boolean({
      default: false,
      summary:
        'Write backfill_report_YYYYMMDD_HHMMSS.json into --output-dir (with --watch: the last sample, when watching stops).',
    }),
    'fail-on': Flags.option({
      options: FAIL_ON_LEVELS,
      summary: 'Exit 4 when health is at or past this level (with --watch: at the first such sample).',
    })(),
    taxonomy: Flags.string({
      summary:
        "Vocabulary whose version counts as current (default: the config file's taxonomy, else the latest completed backfill's version, else the shipped one).",
    }),
    'max-error-rate': Flags.string({
      default: '0.05',
      summary: 'Error items per processed item above which health is warning (0..1); critical above 0.25.',
    }),
  }

  async run(): Promise<MonitorReport | undefined> {
    const {flags} = await this.parse(Monitor)
    const settings = this.settingsFrom(flags)
    const maxErrorRate = Number(flags['max-error-rate'])
    if (!(maxErrorRate >= 0 && maxErrorRate <= 1))
      throw new UsageError(
        `--max-error-rate ${flags['max-error-rate']} is not between 0 and 1`,
        'e.g. --max-error-rate 0.05 for 5%',
      )
    const taxonomyFile = flags.taxonomy ?? settings.taxonomy
    const shipped = loadVocabulary()
    const measured = taxonomyFile ? loadVocabulary(taxonomyFile) : undefined
    const {db} = await this.open(settings, flags['log-level'])
    const options: MonitorOptions = {
      // Without a taxonomy file, the version is judged from the ledger (collectMonitorReport).
      vocabularyVersion: measured?.version,
      vocabularyHash: measured?.hash,
      versionSource: flags.taxonomy ? 'flag' : 'config',
      commands: {
        bin: this.config.bin,
        targetArgs: targetArgsFor(settings),
        taxonomyFile: taxonomyFile ? path.resolve(taxonomyFile) : undefined,
        shippedVersion: shipped.version,
        shippedHash: shipped.hash,
      },
      thresholds: {errorRateWarning: maxErrorRate},
    }
    const signal = this.interruptSignal(() => {})
    const collect = (previous?: MonitorReport) => collectMonitorReport(db, settings, {...options, previous, signal})
    const failOn = flags['fail-on']

    if (!flags.watch) {
      const report = await collect()
      const file = flags['save-report']
        ? writeReportFile(settings.outputDir, REPORT_PREFIX, MonitorReportSchema, report)
        : undefined
      if (!this.jsonEnabled()) {
        this.log(
          renderDashboard(report, {colorLevel: colorLevel(process.stdout), width: process.stdout.columns}).join('\n'),
        )
        if (file) this.log(`\nReport: ${file}`)
      }
      this.exitFor(report, failOn)
      // A read-only view: its result is on stdout (and in the report file); the log keeps it at debug only.
      this.logger?.debug('monitor', {health: report.health.status, counts: report.counts, file})
      return report
    }

    const last = await this.watch(collect, {intervalMs: flags.interval * 1000, failOn, signal})
    if (last && flags['save-report']) {
      const file = writeReportFile(settings.outputDir, REPORT_PREFIX, MonitorReportSchema, last)
      this.note(`Report: ${file}`)
    }
    if (last) this.exitFor(last, failOn)
    // Watch output is already on stdout (a line or a screen per sample): nothing more to print.
    return undefined
  }

  /** Samples until Ctrl-C/SIGTERM (or a sample at --fail-on); returns the last report. */
  private async watch(
    collect: (previous?: MonitorReport) => Promise<MonitorReport>,
    o: {intervalMs: number; failOn?: FailOnLevel; signal: AbortSignal},
  ): Promise<MonitorReport | undefined> {
    const json = this.jsonEnabled()
    const tty = !json && Boolean(process.stdout.isTTY)
    let last: MonitorReport | undefined
    if (tty) process.stdout.write(screen.enter)
    try {
      while (!o.signal.aborted) {
        const started = Date.now()
        try {
          const report = await untilAborted(collect(last), o.signal)
          if (!report) break
          last = report
          if (json) process.stdout.write(JSON.stringify(report) + '\n')
          else if (tty) {
            const lines = renderDashboard(report, {
              colorLevel: colorLevel(process.stdout),
              width: process.stdout.columns,
              height: process.stdout.rows ? process.stdout.rows - 1 : undefined,
              intervalSeconds: o.intervalMs / 1000,
            })
            process.stdout.write(screen.frame(lines))
          } else process.stdout.write(renderWatchLine(report) + '\n')
          if (o.failOn && healthAtOrPast(report.health.status, o.failOn)) break
        } catch (err) {
          if (o.signal.aborted) break
          // Transient outages (already retried) skip a sample; anything else ends the watch.
          if (!(err instanceof OutageError || isRetryable(err))) throw err
          process.stderr.write(
            `monitor: sample failed at ${new Date().toISOString()}: ${errorMessage(err)}; next try in ${o.intervalMs / 1000}s\n`,
          )
          this.logger?.warn('monitor sample failed', {error: errorMessage(err)})
        }
        await sleep(started + o.intervalMs - Date.now(), o.signal)
      }
    } finally {
      if (tty) process.stdout.write(screen.leave)
    }
    if (o.signal.aborted) this.note('Stopped watching.')
    return last
  }

  private exitFor(report: MonitorReport, failOn?: FailOnLevel): void {
    const code = exitCodeForHealth(failOn !== undefined && healthAtOrPast(report.health.status, failOn))
    if (code === ExitCode.OK) return
    this.note(`Health ${report.health.status} is at or past --fail-on ${failOn}: exit ${code}`)
    process.exitCode = code
  }
}

/** Resolves with the value, or with undefined as soon as the signal aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined)
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, {once: true})
  })
}
