import path from 'node:path'
import {DEFAULT_LEDGER} from '../../config'
import type {RunRecord} from '../../engine/ledger'
import {targetFlag, targetOf} from '../../firestore/target'
import type {MonitorSettings} from './schema'

/** The command lines monitor recommends: a fresh backfill, its dry run, the resume of a run. */

/** How to spell the commands the recommendations give. */
export interface CommandContext {
  bin: string
  /** Flags that point a command at the same target (environment and project come from the run). */
  targetArgs: string[]
  /** The taxonomy file the monitor measures against, when it is not the shipped one. */
  taxonomyFile?: string
  /** Version of the taxonomy shipped with the package (a backfill without --taxonomy uses it). */
  shippedVersion: string
  /** Its content hash. */
  shippedHash?: string
}

const shellWord = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)

/** Flags that point another command at the monitor's target (emulator, ledger, config file). */
export function targetArgsFor(settings: MonitorSettings, cwd = process.cwd()): string[] {
  const args: string[] = []
  if (settings.emulatorHost) args.push('--emulator-host', settings.emulatorHost)
  if (settings.ledgerCollection !== DEFAULT_LEDGER) args.push('--ledger-collection', settings.ledgerCollection)
  // The cwd's wardrobe.config.json is found again without the flag.
  if (settings.configFile && path.resolve(settings.configFile) !== path.join(cwd, 'wardrobe.config.json')) args.push('--config', settings.configFile)
  return args
}

export function commandLine(ctx: CommandContext, command: string, target: {environment: string; projectId: string; collection: string; group?: boolean}, extra: string[], placeholder?: string): string {
  const words = [ctx.bin, command, '--environment', target.environment, '--project', target.projectId, ...targetFlag(targetOf(target)), ...ctx.targetArgs, ...extra].map(shellWord)
  // A placeholder the operator fills in stays unquoted so it reads as one.
  return placeholder ? `${words.join(' ')} --taxonomy ${placeholder}` : words.join(' ')
}

/** `--taxonomy` for a backfill at `version`: none for the shipped one, the monitor's file, or a placeholder. */
export function taxonomyArgs(ctx: CommandContext, version: string | null, currentVersion: string): {args: string[]; placeholder?: string} {
  if (version !== null && version === currentVersion && ctx.taxonomyFile) return {args: ['--taxonomy', ctx.taxonomyFile]}
  if (version === null || version === ctx.shippedVersion) return {args: []}
  return {args: [], placeholder: `<taxonomy file with version ${version}>`}
}

/** The command that resumes an unfinished run: the same command again (same resume key). */
export function resumeCommandFor(run: RunRecord, ctx: CommandContext, currentVersion: string): string {
  const target = {environment: run.environment, projectId: run.projectId, collection: run.collection, group: run.group}
  if (run.kind === 'rollback') {
    const scope: string[] = []
    if (typeof run.options.version === 'string') scope.push('--version', run.options.version)
    if (typeof run.options.run === 'string') scope.push('--run', run.options.run)
    return commandLine(ctx, 'rollback', target, scope)
  }
  const tax = taxonomyArgs(ctx, run.version, currentVersion)
  return commandLine(ctx, 'backfill', target, [...(run.options.force === true ? ['--force'] : []), ...tax.args], tax.placeholder)
}
