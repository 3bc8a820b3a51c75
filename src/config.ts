import fs from 'node:fs'
import path from 'node:path'
import {z} from 'zod'
import {parseWindow, resolveTimezone, Window} from './domain/windows'
import {UsageError} from './errors'
import {ledgerOverlap} from './domain/ledger-layout'
import {DEFAULT_PRICES, Prices, PricesSchema} from './domain/prices'

export const ENVIRONMENTS = ['development', 'staging', 'production'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

export const DEFAULT_DEV_PROJECT = 'demo-wardrobe'
export const DEFAULT_COLLECTION = 'wardrobe_items'
export const DEFAULT_LEDGER = '_backfill_runs'
export const DEFAULT_OUTAGE_AFTER_SECONDS = 90
export const DEFAULT_STALE_AFTER_SECONDS = 60
/** Writes in flight at once; BulkWriter keeps at most 500 pending, so more only queues in memory. */
export const BATCH_SIZE = {default: 500, min: 1, max: 10_000} as const
/** Below this a run would call a live holder dead (stale limit) or a slow answer an outage. */
export const MIN_WAIT_SECONDS = 5

const hostPort = z.string().regex(/^[^\s:/]+:\d+$/, 'must be host:port, e.g. 127.0.0.1:8080')
const collectionName = z.string().regex(/^[^/\s]+$/, 'must be a top-level collection name (no slashes)')
const filePath = z.string().min(1)

/**
 * Keys a config file may set at its top level and again per environment (the environment's
 * value wins); each description is the fix a bad value's error suggests.
 */
const SettableSchema = z.object({
  collection: collectionName.optional().describe('a top-level collection name'),
  ledgerCollection: collectionName.optional().describe('a top-level collection name of its own'),
  batchSize: z
    .number()
    .int()
    .min(BATCH_SIZE.min)
    .max(BATCH_SIZE.max)
    .optional()
    .describe(`an integer from ${BATCH_SIZE.min} to ${BATCH_SIZE.max}`),
  maxRate: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('writes per second for the whole run (all its processes), an integer of at least 1'),
  targetLatencyMs: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('milliseconds, an integer of at least 1: the p95 write latency each process keeps its rate under'),
  windows: z.array(z.string()).optional().describe('a list of "HH:MM-HH:MM" maintenance windows, e.g. ["22:00-06:00"]'),
  timezone: z.string().optional().describe('an IANA time zone for the windows, e.g. "Europe/Paris"'),
  /** A run whose heartbeat is older than this is taken over. Config only: see the README on why there is no flag. */
  staleAfterSeconds: z
    .number()
    .int()
    .min(MIN_WAIT_SECONDS)
    .optional()
    .describe(`seconds, an integer of at least ${MIN_WAIT_SECONDS}`),
  /** A writing run with nothing answered by Firestore for this long (while writes wait) ends as failed with its checkpoint. */
  outageAfterSeconds: z
    .number()
    .int()
    .min(MIN_WAIT_SECONDS)
    .optional()
    .describe(`seconds, an integer of at least ${MIN_WAIT_SECONDS}`),
  /** List prices for cost estimates (doctor); any key left out keeps its default. */
  prices: PricesSchema.partial()
    .optional()
    .describe('an object of readsPer100k, writesPer100k, deletesPer100k (USD) and takenOn (YYYY-MM-DD)'),
  /** Relative to the config file's folder. */
  taxonomy: filePath.optional().describe("a vocabulary file's path, relative to the config file's folder"),
  /** Relative to the config file's folder. */
  outputDir: filePath.optional().describe("a folder, relative to the config file's folder"),
})
type Settable = z.infer<typeof SettableSchema>

const EnvironmentConfigSchema = SettableSchema.extend({
  projectId: z.string().min(1).optional().describe('a Firebase project id'),
  emulatorHost: hostPort.optional().describe('host:port of a Firestore emulator, e.g. 127.0.0.1:8080'),
  /** A service-account JSON, relative to the config file's folder; otherwise Application Default Credentials. */
  credentials: filePath.optional().describe("a service-account key file's path, relative to the config file's folder"),
})
  .strict()
  .describe('an object of settings for that environment')

const EnvironmentsSchema = z
  .object(
    Object.fromEntries(ENVIRONMENTS.map((e) => [e, EnvironmentConfigSchema.optional()])) as Record<
      Environment,
      z.ZodOptional<typeof EnvironmentConfigSchema>
    >,
  )
  .strict()

export const ConfigFileSchema = SettableSchema.extend({
  environments: EnvironmentsSchema.optional().describe(`an object keyed by ${ENVIRONMENTS.join(', ')}`),
}).strict()
export type ConfigFile = z.infer<typeof ConfigFileSchema>

/** What every command works from once flags, config file and environment are merged. */
export interface Settings {
  environment: Environment
  projectId: string
  emulatorHost?: string
  /** Absolute. */
  credentials?: string
  collection: string
  /** `collection` names a collection group: every collection of that name at any depth. */
  group: boolean
  ledgerCollection: string
  /** Absolute. */
  outputDir: string
  staleAfterMs: number
  outageAfterMs: number
  batchSize: number
  /** Run-wide writes per second. */
  maxRate?: number
  targetLatencyMs?: number
  /** Maintenance windows (outside them the run pauses itself) and their time zone (IANA; the local one by default). */
  windows?: Window[]
  timezone?: string
  /** The config file's vocabulary (absolute); a command's --taxonomy replaces it (validate's takes several files). */
  taxonomy?: string
  configFile?: string
  prices: Prices
}

/** Flags that settings come from; each left undefined when not given, so the config file can supply it. */
export interface SettingsFlags {
  environment: Environment
  project?: string
  collection?: string
  'collection-group'?: string
  config?: string
  'output-dir'?: string
  'emulator-host'?: string
  'ledger-collection'?: string
  'batch-size'?: number
  'max-rate'?: number
  'target-latency-ms'?: number
  window?: string[]
  timezone?: string
  'outage-after'?: number
}

/** The flag that also sets a config key (staleAfterSeconds has none; taxonomy's is per command). */
const FLAG_OF = {
  collection: 'collection',
  ledgerCollection: 'ledger-collection',
  batchSize: 'batch-size',
  maxRate: 'max-rate',
  targetLatencyMs: 'target-latency-ms',
  windows: 'window',
  timezone: 'timezone',
  outageAfterSeconds: 'outage-after',
  outputDir: 'output-dir',
} as const satisfies Partial<Record<keyof Settable, keyof SettingsFlags>>

/** Finds and validates the config file: --config, else WARDROBE_CONFIG, else ./wardrobe.config.json if present. */
export function loadConfigFile(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): {file?: string; config: ConfigFile} {
  const named = explicit ?? env.WARDROBE_CONFIG
  const file = named ? path.resolve(cwd, named) : path.join(cwd, 'wardrobe.config.json')
  if (!fs.existsSync(file)) {
    if (named)
      throw new UsageError(
        `config file ${file} does not exist`,
        'pass an existing file to --config (or WARDROBE_CONFIG), or drop the flag',
      )
    return {config: {}}
  }
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(
      `config file ${file} is not valid JSON: ${(err as Error).message}`,
      `fix the JSON syntax of ${file}`,
    )
  }
  const parsed = ConfigFileSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    // An unknown key is reported on its parent; name the key itself.
    const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path
    const key = keyPath.join('.') || '(top level)'
    throw new UsageError(
      `config file ${file}: ${key}: ${issue.message}`,
      fixFor(keyPath.map(String), issue.code === 'unrecognized_keys'),
    )
  }
  return {file, config: parsed.data}
}

/** The fix for a bad key: what it should hold, or what an unknown key was probably meant to be. */
function fixFor(keyPath: string[], unknown: boolean): string {
  if (keyPath.length === 0)
    return 'make the file one JSON object, e.g. {"environments": {"development": {"emulatorHost": "127.0.0.1:8080"}}}'
  const key = keyPath.join('.')
  const name = keyPath[keyPath.length - 1]
  const parent = keyPath.slice(0, -1)
  // The keys valid beside the bad one: top level, environment names, or one environment's section.
  const shape: Record<string, z.ZodTypeAny> = [
    ConfigFileSchema.shape,
    EnvironmentsSchema.shape,
    EnvironmentConfigSchema.shape,
  ][Math.min(parent.length, 2)]
  if (!unknown) {
    const hint = shape[name]?.description
    return hint ? `set "${key}" to ${hint}, or remove it` : `correct or remove "${key}"`
  }
  const known = Object.keys(shape)
  const near = known.find((k) => k.toLowerCase() === name.toLowerCase())
  if (near) return `rename "${key}" to "${[...parent, near].join('.')}"`
  if (parent.length === 0 && name in EnvironmentConfigSchema.shape)
    return `move "${name}" under "environments.<${ENVIRONMENTS.join('|')}>"`
  return `remove "${key}" (known here: ${known.join(', ')})`
}

/** A setting's value, where it came from (for errors that name the fix) and the folder its relative paths mean. */
interface Sourced<T> {
  value?: T
  origin: string
  base: string
}

/**
 * Flags, config file and defaults merged, in this order: a flag given on the command line,
 * then the environment's section of the config file, then its top level, then the default.
 * Paths from the config file are relative to its folder; paths from flags to the cwd.
 */
export function resolveSettings(
  flags: SettingsFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Settings {
  const {file, config} = loadConfigFile(flags.config, env, cwd)
  const environment = flags.environment
  const envConfig = config.environments?.[environment] ?? {}
  const configDir = file ? path.dirname(file) : cwd
  const fromConfig = <K extends keyof Settable>(key: K): Sourced<NonNullable<Settable[K]>> => {
    if (envConfig[key] !== undefined)
      return {value: envConfig[key], origin: `"environments.${environment}.${key}" in ${file}`, base: configDir}
    if (config[key] !== undefined) return {value: config[key], origin: `"${key}" in ${file}`, base: configDir}
    return {origin: 'the default', base: cwd}
  }
  const setting = <K extends keyof typeof FLAG_OF>(key: K): Sourced<NonNullable<Settable[K]>> => {
    const flag = FLAG_OF[key]
    const given = flags[flag] as NonNullable<Settable[K]> | undefined
    return given === undefined ? fromConfig(key) : {value: given, origin: `--${flag}`, base: cwd}
  }
  const resolvePath = ({value, base}: Sourced<string>) => (value === undefined ? undefined : path.resolve(base, value))

  const isDev = environment === 'development'
  const projectId = flags.project ?? envConfig.projectId ?? (isDev ? DEFAULT_DEV_PROJECT : undefined)
  if (!projectId) {
    throw new UsageError(
      `no project id for ${environment}`,
      `pass --project <id> or set environments.${environment}.projectId in ${file ?? 'wardrobe.config.json'}`,
    )
  }
  // The env var only ever points development at an emulator; staging/production use one only when named explicitly.
  const emulatorHost =
    flags['emulator-host'] ?? envConfig.emulatorHost ?? (isDev ? env.FIRESTORE_EMULATOR_HOST : undefined)
  if (flags['emulator-host'] !== undefined && !hostPort.safeParse(flags['emulator-host']).success) {
    throw new UsageError(
      `--emulator-host ${flags['emulator-host']} must be host:port`,
      'e.g. --emulator-host 127.0.0.1:8080',
    )
  }
  const group = flags['collection-group']
  if (group !== undefined && flags.collection !== undefined) {
    throw new UsageError(
      '--collection and --collection-group name two different targets',
      'pass one of them: --collection for a top-level collection, --collection-group for every collection of that name at any depth',
    )
  }
  if (group !== undefined && !collectionName.safeParse(group).success) {
    throw new UsageError(
      `--collection-group ${group} must be a collection id, not a path`,
      'e.g. --collection-group wardrobe for users/{uid}/wardrobe',
    )
  }
  const collection: Sourced<string> =
    group === undefined ? setting('collection') : {value: group, origin: '--collection-group', base: cwd}
  const target = {collection: collection.value ?? DEFAULT_COLLECTION, group: group !== undefined}
  const ledger = setting('ledgerCollection')
  const ledgerCollection = ledger.value ?? DEFAULT_LEDGER
  refuseLedgerOverlap(target, collection.origin, ledgerCollection, ledger.origin)

  return {
    environment,
    projectId,
    emulatorHost,
    credentials: envConfig.credentials === undefined ? undefined : path.resolve(configDir, envConfig.credentials),
    ...target,
    ledgerCollection,
    outputDir: resolvePath(setting('outputDir')) ?? cwd,
    staleAfterMs: (fromConfig('staleAfterSeconds').value ?? DEFAULT_STALE_AFTER_SECONDS) * 1000,
    outageAfterMs: (setting('outageAfterSeconds').value ?? DEFAULT_OUTAGE_AFTER_SECONDS) * 1000,
    batchSize: setting('batchSize').value ?? BATCH_SIZE.default,
    maxRate: setting('maxRate').value,
    targetLatencyMs: setting('targetLatencyMs').value,
    ...windowSettings(setting('windows').value, setting('timezone').value),
    taxonomy: resolvePath(fromConfig('taxonomy')),
    configFile: file,
    prices: {...DEFAULT_PRICES, ...fromConfig('prices').value},
  }
}

/** Windows as the run stores them, in a named zone (the local one unless given): every process of a run, wherever it runs, reads them alike. */
function windowSettings(
  windows: string[] | undefined,
  timezone: string | undefined,
): Pick<Settings, 'windows' | 'timezone'> {
  if (!windows?.length) return timezone === undefined ? {} : {timezone: resolveTimezone(timezone)}
  return {windows: windows.map(parseWindow), timezone: resolveTimezone(timezone)}
}

/** A ledger sharing a collection with the items would read and write its own records as items: refused before anything is written. */
function refuseLedgerOverlap(
  target: {collection: string; group: boolean},
  targetOrigin: string,
  ledger: string,
  ledgerOrigin: string,
): void {
  const overlap = ledgerOverlap(target, ledger)
  if (!overlap) return
  const what = target.group ? 'collection group' : 'collection'
  const fix = !overlap.ledgerNameMatters
    ? `target the items by --collection or by a collection group of another name`
    : ledgerOrigin.startsWith('--')
      ? `pass a --ledger-collection of its own, e.g. ${DEFAULT_LEDGER}`
      : ledgerOrigin.startsWith('"')
        ? `set ${ledgerOrigin} to a collection of its own, e.g. ${DEFAULT_LEDGER}`
        : `pass --ledger-collection <a collection of its own>, or target another ${what}`
  throw new UsageError(
    `the items ${what} ${target.collection} (${targetOrigin}) ${overlap.relation} the ledger ${ledger} (${ledgerOrigin}): a run would read and write its own records as items`,
    fix,
  )
}
