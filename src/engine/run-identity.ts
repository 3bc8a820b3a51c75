import crypto from 'node:crypto'
import {z} from 'zod'
import {targetFlag, targetOf} from '../firestore/target'

/**
 * A run's identity, in one place: which existing run a new invocation resumes (the resume
 * key the ledger matches on), and the command lines that resume a run.
 */

/**
 * What makes two invocations the same run: the kind, the options that change what the run
 * writes, and the scope (a collection group and the collection of the same name are different
 * scopes of one lock). Anything else (batch size, rate, windows) may differ between resumes.
 */
export const RunIdentitySchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('backfill'),
    version: z.string(),
    // An edited taxonomy that keeps its version is another command: its own run, not a resume.
    taxonomyHash: z.string(),
    force: z.boolean(),
    group: z.boolean(),
  }),
  z.object({
    kind: z.literal('rollback'),
    version: z.string().nullable(),
    run: z.string().nullable(),
    // Another set of runs to undo is another command: a rollback never resumes into runs it was not started for.
    targets: z.array(z.string()).nullable(),
    group: z.boolean(),
  }),
])
export type RunIdentity = z.infer<typeof RunIdentitySchema>

/** The resume key recorded on a run: its identity as one string (the format of existing ledgers, kept). */
export function resumeKey(identity: RunIdentity): string {
  const id = RunIdentitySchema.parse(identity)
  const key =
    id.kind === 'backfill'
      ? `backfill|version=${id.version}|taxonomy=${id.taxonomyHash}|force=${id.force}`
      : `rollback|version=${id.version ?? '*'}|run=${id.run ?? '*'}${id.targets ? `|targets=${digest(id.targets)}` : ''}`
  return id.group ? `${key}|group` : key
}

/** Under a reviewed plan (`--plan`), its own run: one started without the plan's guard is never resumed by it, nor the reverse. */
export function planScoped(key: string, planHash?: string): string {
  return planHash ? `${key}|plan=${planHash}` : key
}

/** Whether a recorded run and a request are the same run: same kind, same resume key. */
export function sameRun(a: {kind: string; resumeKey: string}, b: {kind: string; resumeKey: string}): boolean {
  return a.kind === b.kind && a.resumeKey === b.resumeKey
}

function digest(ids: string[]): string {
  return crypto.createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 12)
}

/** One word for a POSIX shell: as is when it holds only safe characters, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/** The command line that resumes a run as its starter typed it: the same words, minus --from-start. */
export function resumeCommandFromArgv(bin: string, id: string, argv: string[]): string {
  return [bin, id, ...argv.filter((a) => a !== '--from-start')].map(shellQuote).join(' ')
}

/** How to point a rebuilt command at a target: what the monitor knows beyond the run record. */
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

/** `bin command` at the target with `extra` flags, quoted; a placeholder taxonomy stays unquoted so it reads as one. */
export function commandLine(
  ctx: CommandContext,
  command: string,
  target: {environment: string; projectId: string; collection: string; group?: boolean},
  extra: string[],
  placeholder?: string,
): string {
  const words = [
    ctx.bin,
    command,
    '--environment',
    target.environment,
    '--project',
    target.projectId,
    ...targetFlag(targetOf(target)),
    ...ctx.targetArgs,
    ...extra,
  ].map(shellQuote)
  return placeholder ? `${words.join(' ')} --taxonomy ${placeholder}` : words.join(' ')
}

/** `--taxonomy` for a backfill at `version`: none for the shipped one, the monitor's file, or a placeholder. */
export function taxonomyArgs(
  ctx: CommandContext,
  version: string | null,
  currentVersion: string,
): {args: string[]; placeholder?: string} {
  if (version !== null && version === currentVersion && ctx.taxonomyFile)
    return {args: ['--taxonomy', ctx.taxonomyFile]}
  if (version === null || version === ctx.shippedVersion) return {args: []}
  return {args: [], placeholder: `<taxonomy file with version ${version}>`}
}

/** What a run record tells of its identity and target. */
export interface RecordedRun {
  kind: 'backfill' | 'rollback'
  environment: string
  projectId: string
  collection: string
  group?: boolean
  version: string | null
  options: Record<string, unknown>
}

/** The command that resumes an unfinished run, rebuilt from its record: the same command again (same resume key). */
export function resumeCommandFor(run: RecordedRun, ctx: CommandContext, currentVersion: string): string {
  const target = {environment: run.environment, projectId: run.projectId, collection: run.collection, group: run.group}
  if (run.kind === 'rollback') {
    const scope: string[] = []
    if (typeof run.options.version === 'string') scope.push('--version', run.options.version)
    if (typeof run.options.run === 'string') scope.push('--run', run.options.run)
    return commandLine(ctx, 'rollback', target, scope)
  }
  const tax = taxonomyArgs(ctx, run.version, currentVersion)
  return commandLine(
    ctx,
    'backfill',
    target,
    [...(run.options.force === true ? ['--force'] : []), ...tax.args],
    tax.placeholder,
  )
}
