import {Command, Flags, Interfaces} from '@oclif/core'
import {DEFAULT_COLLECTION, DEFAULT_LEDGER, ENVIRONMENTS, resolveSettings, Settings, SettingsFlags} from '../config'
import {confirmTarget} from './confirmation'
import {exitCodeForError, ExitCode, WardrobeError} from '../errors'
import type {Connection} from '../firestore/connection'
import {LOG_LEVELS, LogFile} from './logger'

const CLOSE_DEADLINE_MS = 5000

/** Node's default for an unhandled rejection (a crash), except for a call the closed client refused. */
function rethrowUnlessTerminated(reason: unknown): void {
  if (!(reason instanceof Error && reason.message === 'The client has already been terminated')) throw reason
}

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof WardrobeCommand)['baseFlags'] & T['flags']
>

/**
 * Help is rendered from oclif.manifest.json without loading a command, as long as no flag has a
 * function for defaultHelp: keep defaults as values. Modules beyond oclif, config and errors load
 * inside run() (`await import`), so that only the commands that need firebase-admin pay for it.
 *
 * Shared by every command: common flags, settings, the Firestore connection, the log
 * file, Ctrl-C handling, production confirmation and exit codes (also under --json).
 */
export abstract class WardrobeCommand<T> extends Command {
  static enableJsonFlag = true

  static baseFlags = {
    environment: Flags.option({
      options: ENVIRONMENTS,
      default: 'development' as const,
      summary: 'Target environment; development only ever talks to an emulator.',
      helpGroup: 'TARGET',
    })(),
    project: Flags.string({
      summary: 'Firebase project id (default from wardrobe.config.json; demo-wardrobe in development).',
      helpGroup: 'TARGET',
    }),
    collection: Flags.string({
      summary: 'Collection of wardrobe items (or collection in the config file).',
      helpGroup: 'TARGET',
      defaultHelp: DEFAULT_COLLECTION,
      exclusive: ['collection-group'],
    }),
    'collection-group': Flags.string({
      summary:
        'Every collection of this name at any depth (e.g. wardrobe for users/{uid}/wardrobe), instead of --collection.',
      helpGroup: 'TARGET',
    }),
    config: Flags.string({
      summary: 'Config file (default ./wardrobe.config.json or $WARDROBE_CONFIG).',
      helpGroup: 'TARGET',
    }),
    'emulator-host': Flags.string({
      summary: 'Firestore emulator host:port (default $FIRESTORE_EMULATOR_HOST in development).',
      helpGroup: 'TARGET',
    }),
    'ledger-collection': Flags.string({
      summary: 'Collection holding run records (or ledgerCollection); never the items collection.',
      helpGroup: 'TARGET',
      defaultHelp: DEFAULT_LEDGER,
    }),
    'output-dir': Flags.string({
      summary: 'Where log, stats and report files go (or outputDir in the config file).',
      defaultHelp: '.',
      helpGroup: 'OUTPUT',
    }),
    'log-level': Flags.option({
      options: LOG_LEVELS,
      default: 'info' as const,
      summary: 'Level of backfill_normalize.log.',
      helpGroup: 'OUTPUT',
    })(),
  }

  protected logger?: LogFile
  private credentialsChecked = false
  protected connection?: Connection
  private readonly abort = new AbortController()
  private signalHandlers: [NodeJS.Signals, () => void][] = []

  abstract run(): Promise<T>

  /**
   * Flags that the config file can also set have no oclif default (a default would hide whether
   * the flag was given): resolveSettings applies flag, config file, default in that order.
   */
  protected settingsFrom(flags: BaseFlags<typeof WardrobeCommand> & Partial<SettingsFlags>): Settings {
    return resolveSettings(flags)
  }

  /** Sets up the log file (opened at its first line) and opens the Firestore connection for the resolved settings. */
  protected async open(settings: Settings, logLevel: (typeof LOG_LEVELS)[number]): Promise<Connection> {
    await this.checkCredentials(settings)
    const {connect} = await import('../firestore/connection')
    this.logger = new LogFile(settings.outputDir, logLevel, this.id ?? 'wardrobe')
    this.connection = await connect(settings, (m) => this.warning(m))
    return this.connection
  }

  /** Credentials the real service needs, checked once, before anything is asked or opened (exit 2 with the fix). */
  protected async checkCredentials(settings: Settings): Promise<void> {
    if (this.credentialsChecked) return
    const {checkCredentials} = await import('../firestore/credentials')
    await checkCredentials(settings)
    this.credentialsChecked = true
  }

  /** Asks for production confirmation (or refuses) before anything is written. */
  protected async confirm(settings: Settings, action: string, yes: boolean): Promise<void> {
    await this.checkCredentials(settings)
    await confirmTarget(settings, {yes, json: this.jsonEnabled(), action, warn: (m) => this.warning(m)})
  }

  /** First SIGINT/SIGTERM asks the service to stop and drain; a second one exits at once. */
  protected interruptSignal(onFirst: () => void): AbortSignal {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const handler = () => {
        if (this.abort.signal.aborted) {
          process.stderr.write('\nSecond interrupt: exiting now; the unacknowledged tail is redone by the next run.\n')
          process.exit(ExitCode.INTERRUPTED)
        }
        onFirst()
        this.abort.abort()
      }
      process.on(sig, handler)
      this.signalHandlers.push([sig, handler])
    }
    return this.abort.signal
  }

  /** Warnings reach stderr also under --json (oclif's warn is silent there): runbooks keep them. */
  protected warning(message: string): void {
    process.stderr.write(`Warning: ${message}\n`)
  }

  protected note(message: string): void {
    // Human notes go to stderr so stdout stays data only.
    if (!this.jsonEnabled()) process.stderr.write(message + '\n')
  }

  protected async finally(err: Error | undefined): Promise<unknown> {
    for (const [sig, handler] of this.signalHandlers) process.off(sig, handler)
    if (this.connection) {
      const {withDeadline} = await import('../firestore/retry')
      // Calls still pending after an outage (an abandoned ledger transaction) are refused once the client
      // terminates, and the client leaves one such rejection unobserved (googleapis/google-cloud-node#9122).
      process.on('unhandledRejection', rethrowUnlessTerminated)
      // The client waits for its pending calls before it closes; after an outage they may retry for minutes.
      await withDeadline(this.connection.close(), CLOSE_DEADLINE_MS, 'closing the Firestore connection').catch(() => {})
    }
    await this.logger?.close()
    return super.finally(err)
  }

  protected async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    const exit = exitCodeForError(err)
    this.logger?.error(err.message, {exit})
    if (this.jsonEnabled()) {
      process.exitCode = exit
      this.logJson({
        status: exit,
        error: {
          name: err.name,
          message: err.message,
          suggestion: err instanceof WardrobeError ? (err.suggestion ?? null) : null,
        },
      })
      return
    }
    if (err instanceof WardrobeError || exit === ExitCode.USAGE) {
      // One unwrapped line, so runbooks can grep it and operators see the fix beside the cause.
      const message = err.message.replace(/\s*See more help with --help\s*$/, '').replace(/\s*\n\s*/g, '; ')
      const fix = err instanceof WardrobeError ? err.suggestion : `see ${this.config.bin} ${this.id} --help`
      process.exitCode = exit
      process.stderr.write(`Error: ${message}${fix ? ` (fix: ${fix})` : ''}\n`)
      return
    }
    return super.catch(err)
  }
}
