import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type {Credential} from 'firebase-admin/app'
import {z} from 'zod'
import type {Settings} from '../config'
import {errorMessage, UsageError} from '../errors'

export const credentialsFix = (environment: string) =>
  `run \`gcloud auth application-default login\`, or set environments.${environment}.credentials in wardrobe.config.json to a service-account key file`

/** Where credentials came from and whose they are; never the key itself. */
export const CredentialsInfoSchema = z.object({
  source: z.enum(['config', 'GOOGLE_APPLICATION_CREDENTIALS', 'application-default', 'metadata-server']),
  file: z.string().nullable(),
  /** service_account, authorized_user (a gcloud login), external_account, or the metadata server's service account. */
  type: z.string(),
  /** The service account's email, where the credentials name it (a gcloud login does not). */
  identity: z.string().nullable(),
})
export type CredentialsInfo = z.infer<typeof CredentialsInfoSchema>

const TOKEN_DEADLINE_MS = 20_000
const METADATA_DEADLINE_MS = 1500

/** gcloud's Application Default Credentials file (`gcloud auth application-default login` writes it). */
export function adcFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir =
    env.CLOUDSDK_CONFIG ??
    (process.platform === 'win32'
      ? path.join(env.APPDATA ?? os.homedir(), 'gcloud')
      : path.join(env.HOME ?? os.homedir(), '.config', 'gcloud'))
  return path.join(dir, 'application_default_credentials.json')
}

/** The config key's file as a firebase-admin credential; the message names the file, never its content. */
export async function keyFileCredential(file: string): Promise<Credential> {
  const {cert} = await import('firebase-admin/app')
  const json = readJson(file, "the config's credentials key")
  try {
    return cert(json as object)
  } catch {
    throw new UsageError(
      `credentials file ${file} (the config's credentials key) is not a service-account key`,
      'download a key for a service account with Firestore access, or drop the key to use Application Default Credentials',
    )
  }
}

/** The credential a connection to the real service uses: the config's key file, else Application Default Credentials. */
export async function credentialFor(settings: Pick<Settings, 'credentials'>): Promise<Credential> {
  return settings.credentials
    ? keyFileCredential(settings.credentials)
    : (await import('firebase-admin/app')).applicationDefault()
}

/**
 * Finds the credentials a run against the real service would use, in the client's own order (the
 * config's credentials key, GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, the metadata server
 * of Google Cloud), and gets an access token with them: missing, unreadable, revoked or expired
 * credentials fail here, in one line naming where the tool looked, before anything is asked.
 * Null for an emulator (and development), which needs none.
 */
export async function checkCredentials(
  settings: Pick<Settings, 'environment' | 'projectId' | 'emulatorHost' | 'credentials'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CredentialsInfo | null> {
  // Development only ever talks to an emulator (connect refuses otherwise); an emulator needs none.
  if (settings.emulatorHost || settings.environment === 'development') return null
  const adc = adcFile(env)
  const gac = env.GOOGLE_APPLICATION_CREDENTIALS || undefined
  const looked = `looked at: the config's credentials key (${settings.credentials ?? 'not set'}); GOOGLE_APPLICATION_CREDENTIALS (${gac ?? 'not set'}); Application Default Credentials (${adc}${fs.existsSync(adc) ? '' : ', missing'})`
  const fail = (what: string) =>
    new UsageError(
      `no usable credentials for ${settings.environment} project ${settings.projectId}: ${what} (${looked})`,
      credentialsFix(settings.environment),
    )

  let info: CredentialsInfo
  if (settings.credentials) {
    info = describeFile('config', settings.credentials, "the config's credentials key", fail)
  } else {
    const file = gac ?? (fs.existsSync(adc) ? adc : undefined)
    if (file)
      info = describeFile(
        gac ? 'GOOGLE_APPLICATION_CREDENTIALS' : 'application-default',
        file,
        gac ? 'GOOGLE_APPLICATION_CREDENTIALS' : 'Application Default Credentials',
        fail,
      )
    else {
      // Asked only when no file names credentials: off Google Cloud it answers nothing, and the
      // client's own probe would print a warning besides its error.
      const email = await metadataServerAccount(env)
      if (email === null) throw fail('none found')
      info = {source: 'metadata-server', file: null, type: 'metadata-server', identity: email}
    }
  }
  const credential = await credentialFor(settings).catch((err) => {
    throw fail(errorMessage(err))
  })
  const {withDeadline} = await import('./retry')
  try {
    await withDeadline(credential.getAccessToken(), TOKEN_DEADLINE_MS, 'getting an access token')
  } catch (err) {
    const where = info.file ? `${info.file} (${info.source})` : 'the metadata server'
    throw fail(`${where} could not get an access token (revoked, expired or offline?): ${firstLine(errorMessage(err))}`)
  }
  return info
}

function describeFile(
  source: CredentialsInfo['source'],
  file: string,
  named: string,
  fail: (what: string) => UsageError,
): CredentialsInfo {
  const json = (() => {
    try {
      return readJson(file, named)
    } catch (err) {
      throw fail(errorMessage(err))
    }
  })()
  const o = (json ?? {}) as Record<string, unknown>
  return {
    source,
    file,
    type: typeof o.type === 'string' ? o.type : 'unknown',
    identity: typeof o.client_email === 'string' ? o.client_email : null,
  }
}

function readJson(file: string, named: string): unknown {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UsageError(
      `${file} (${named}) ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? errorMessage(err)})`}`,
    )
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new UsageError(`${file} (${named}) is not JSON`)
  }
}

/** The default service account's email from the metadata server, or null where none answers. */
function metadataServerAccount(env: NodeJS.ProcessEnv): Promise<string | null> {
  if (env.METADATA_SERVER_DETECTION === 'none') return Promise.resolve(null)
  const host = env.GCE_METADATA_HOST ?? env.GCE_METADATA_IP ?? '169.254.169.254'
  return new Promise((resolve) => {
    const req = http.get(
      `http://${host}/computeMetadata/v1/instance/service-accounts/default/email`,
      {headers: {'Metadata-Flavor': 'Google'}, timeout: METADATA_DEADLINE_MS},
      (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () =>
          resolve(res.statusCode === 200 && res.headers['metadata-flavor'] === 'Google' ? body.trim() : null),
        )
      },
    )
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(null))
  })
}

const firstLine = (s: string) => s.split('\n')[0].trim()
