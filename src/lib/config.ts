import fs from 'node:fs'
import path from 'node:path'
import {z} from 'zod'
import {UsageError} from './errors'

export const ENVIRONMENTS = ['development', 'staging', 'production'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

export const DEFAULT_DEV_PROJECT = 'demo-wardrobe'
export const DEFAULT_COLLECTION = 'wardrobe_items'
export const DEFAULT_LEDGER = '_backfill_runs'
export const DEFAULT_OUTAGE_AFTER_SECONDS = 90

const hostPort = z.string().regex(/^[^\s:/]+:\d+$/, 'must be host:port, e.g. 127.0.0.1:8080')
const collectionName = z.string().regex(/^[^/\s]+$/, 'must be a top-level collection name (no slashes)')

const EnvironmentConfigSchema = z
  .object({
    projectId: z.string().min(1).optional(),
    emulatorHost: hostPort.optional(),
    /** Path to a service-account JSON; otherwise Application Default Credentials. */
    credentials: z.string().min(1).optional(),
  })
  .strict()

export const ConfigFileSchema = z
  .object({
    collection: collectionName.optional(),
    ledgerCollection: collectionName.optional(),
    batchSize: z.number().int().min(1).max(500).optional(),
    maxRate: z.number().int().min(1).optional(),
    /** A run whose heartbeat is older than this is taken over. */
    staleAfterSeconds: z.number().int().min(5).optional(),
    /** A writing run with nothing answered by Firestore for this long (while writes wait) ends as failed with its checkpoint. */
    outageAfterSeconds: z.number().int().min(5).optional(),
    taxonomy: z.string().min(1).optional(),
    environments: z
      .object({
        development: EnvironmentConfigSchema.optional(),
        staging: EnvironmentConfigSchema.optional(),
        production: EnvironmentConfigSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
export type ConfigFile = z.infer<typeof ConfigFileSchema>

/** What every command works from once flags, config file and environment are merged. */
export interface Settings {
  environment: Environment
  projectId: string
  emulatorHost?: string
  credentials?: string
  collection: string
  /** `collection` names a collection group: every collection of that name at any depth. */
  group: boolean
  ledgerCollection: string
  outputDir: string
  staleAfterMs: number
  outageAfterMs: number
  batchSize?: number
  maxRate?: number
  taxonomy?: string
  configFile?: string
}

export interface SettingsFlags {
  environment: Environment
  project?: string
  collection?: string
  'collection-group'?: string
  config?: string
  'output-dir'?: string
  'emulator-host'?: string
  'ledger-collection'?: string
  'outage-after'?: number
}

/** Finds and validates the config file: --config, else WARDROBE_CONFIG, else ./wardrobe.config.json if present. */
export function loadConfigFile(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): {file?: string; config: ConfigFile} {
  const named = explicit ?? env.WARDROBE_CONFIG
  const file = named ? path.resolve(cwd, named) : path.join(cwd, 'wardrobe.config.json')
  if (!fs.existsSync(file)) {
    if (named) throw new UsageError(`config file ${file} does not exist`, 'pass an existing file to --config (or WARDROBE_CONFIG), or drop the flag')
    return {config: {}}
  }
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid JSON: ${(err as Error).message}`, 'fix the JSON syntax')
  }
  const parsed = ConfigFileSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    // An unknown key is reported on its parent; name the key itself.
    const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path
    const key = keyPath.join('.') || '(top level)'
    throw new UsageError(`config file ${file}: ${key}: ${issue.message}`, `correct or remove "${key}" (README, "Config file")`)
  }
  return {file, config: parsed.data}
}

export function resolveSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv = process.env): Settings {
  const {file, config} = loadConfigFile(flags.config, env)
  const environment = flags.environment
  const envConfig = config.environments?.[environment] ?? {}
  const isDev = environment === 'development'
  const projectId = flags.project ?? envConfig.projectId ?? (isDev ? DEFAULT_DEV_PROJECT : undefined)
  if (!projectId) {
    throw new UsageError(`no project id for ${environment}`, `pass --project <id> or set environments.${environment}.projectId in wardrobe.config.json`)
  }
  // The env var only ever points development at an emulator; staging/production use one only when named explicitly.
  const emulatorHost = flags['emulator-host'] ?? envConfig.emulatorHost ?? (isDev ? env.FIRESTORE_EMULATOR_HOST : undefined)
  if (flags['emulator-host'] !== undefined && !hostPort.safeParse(flags['emulator-host']).success) {
    throw new UsageError(`--emulator-host ${flags['emulator-host']} must be host:port`, 'e.g. --emulator-host 127.0.0.1:8080')
  }
  const group = flags['collection-group']
  if (group !== undefined && flags.collection !== undefined) {
    throw new UsageError('--collection and --collection-group name two different targets', 'pass one of them: --collection for a top-level collection, --collection-group for every collection of that name at any depth')
  }
  if (group !== undefined && !collectionName.safeParse(group).success) {
    throw new UsageError(`--collection-group ${group} must be a collection id, not a path`, 'e.g. --collection-group wardrobe for users/{uid}/wardrobe')
  }
  return {
    environment,
    projectId,
    emulatorHost,
    credentials: envConfig.credentials,
    collection: group ?? flags.collection ?? config.collection ?? DEFAULT_COLLECTION,
    group: group !== undefined,
    ledgerCollection: flags['ledger-collection'] ?? config.ledgerCollection ?? DEFAULT_LEDGER,
    outputDir: path.resolve(flags['output-dir'] ?? '.'),
    staleAfterMs: (config.staleAfterSeconds ?? 60) * 1000,
    outageAfterMs: (flags['outage-after'] ?? config.outageAfterSeconds ?? DEFAULT_OUTAGE_AFTER_SECONDS) * 1000,
    batchSize: config.batchSize,
    maxRate: config.maxRate,
    taxonomy: config.taxonomy,
    configFile: file,
  }
}
