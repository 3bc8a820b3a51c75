import fs from 'node:fs'
import path from 'node:path'
import {emulatorHost, runCli, tmpDir, uniqueProject} from '../support/harness'
import {inTerminal} from '../support/terminal'

/**
 * A new user without credentials, at a terminal: every command that would reach the real service
 * says so in one line (where it looked, the fix) and exits 2, before the production prompt. An
 * emulator needs no credentials. The machine is a fake home with no gcloud login; the metadata
 * server is switched off by the client's own variable (a CI runner on Google Cloud has one).
 */
function machine(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    HOME: tmpDir('wardrobe-home-'),
    GOOGLE_APPLICATION_CREDENTIALS: undefined,
    CLOUDSDK_CONFIG: undefined,
    FIRESTORE_EMULATOR_HOST: undefined,
    WARDROBE_CONFIG: undefined,
    METADATA_SERVER_DETECTION: 'none',
    WARDROBE_SKIP_NEW_VERSION_CHECK: 'true',
    ...extra,
  }
}

const PROD = ['--environment', 'production', '--project', 'my-app']
const errorLines = (output: string) => output.split(/\r?\n/).filter((l) => l.startsWith('Error:'))

describe('credentials are checked before anything is asked', () => {
  test.each([
    ['backfill', PROD],
    ['rollback', PROD],
    ['monitor', PROD],
    ['validate', ['--environment', 'staging', '--project', 'my-app']],
  ])('wardrobe %s without any credentials', async (command, args) => {
    const env = machine()
    const r = await inTerminal([command, ...args], env, {prompt: 'Type the project id', answer: 'my-app\r'})
    expect(r.output).not.toContain('Type the project id')
    const [line, ...more] = errorLines(r.output)
    expect(more).toEqual([])
    expect(line).toContain('no usable credentials')
    expect(line).toContain("the config's credentials key (not set)")
    expect(line).toContain('GOOGLE_APPLICATION_CREDENTIALS (not set)')
    expect(line).toContain(
      `Application Default Credentials (${path.join(env.HOME!, '.config', 'gcloud', 'application_default_credentials.json')}, missing)`,
    )
    expect(line).toContain('fix: run `gcloud auth application-default login`')
    expect(r.output).not.toContain('Could not load the default credentials')
    expect(r.code).toBe(2)
  })

  test('GOOGLE_APPLICATION_CREDENTIALS naming a missing file', async () => {
    const r = await inTerminal(
      ['backfill', ...PROD],
      machine({GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/key.json'}),
      {prompt: 'Type the project id', answer: 'my-app\r'},
    )
    expect(r.output).not.toContain('Type the project id')
    expect(errorLines(r.output)).toEqual([
      expect.stringContaining('/nonexistent/key.json (GOOGLE_APPLICATION_CREDENTIALS) does not exist'),
    ])
    expect(r.code).toBe(2)
  })

  test("the config's credentials key naming a file that is not a key", async () => {
    const dir = tmpDir()
    fs.writeFileSync(path.join(dir, 'key.json'), 'not json')
    fs.writeFileSync(
      path.join(dir, 'wardrobe.config.json'),
      JSON.stringify({environments: {production: {projectId: 'my-app', credentials: 'key.json'}}}),
    )
    const r = await runCli(
      ['rollback', '--environment', 'production', '--config', path.join(dir, 'wardrobe.config.json'), '--json'],
      {env: machine()},
    )
    const out = JSON.parse(r.stdout) as {error: {message: string; suggestion: string}}
    expect(out.error.message).toContain(`${path.join(dir, 'key.json')} (the config's credentials key) is not JSON`)
    expect(out.error.suggestion).toContain('environments.production.credentials')
    expect(r.code).toBe(2)
  })

  test('a gcloud login that can no longer get a token (revoked, expired, or no network)', async () => {
    const env = machine()
    const adc = path.join(env.HOME!, '.config', 'gcloud', 'application_default_credentials.json')
    fs.mkdirSync(path.dirname(adc), {recursive: true})
    fs.writeFileSync(
      adc,
      JSON.stringify({
        type: 'authorized_user',
        client_id: 'x.apps.googleusercontent.com',
        client_secret: 'x',
        refresh_token: '1//revoked',
      }),
    )
    const r = await inTerminal(['backfill', ...PROD], env, {prompt: 'Type the project id', answer: 'my-app\r'})
    expect(r.output).not.toContain('Type the project id')
    expect(errorLines(r.output)).toEqual([
      expect.stringContaining(`${adc} (application-default) could not get an access token`),
    ])
    expect(r.code).toBe(2)
  })

  test('an emulator needs none, also for production', async () => {
    const r = await runCli(
      [
        'monitor',
        '--environment',
        'production',
        '--project',
        uniqueProject('creds'),
        '--emulator-host',
        emulatorHost(),
        '--json',
      ],
      {env: machine()},
    )
    expect(r.stderr).not.toContain('credentials')
    expect(JSON.parse(r.stdout)).toHaveProperty('counts')
    expect(r.code).toBe(0)
  })
})
