import fs from 'node:fs'
import path from 'node:path'
import {runCli, tmpDir} from '../support/harness'
import {inTerminal} from '../support/terminal'

/**
 * The oclif plugins as a user meets them: the update warning (only for a person at a terminal),
 * "did you mean", `help`, and shell completion. A terminal is a real pseudo-terminal (util-linux
 * `script`), since that is what the update check and the suggestion prompt look for.
 */

// No CI variable of the machine running the tests, no skip variable: each test sets what it means.
const CLEAN = {CI: undefined, WARDROBE_SKIP_NEW_VERSION_CHECK: undefined}

/** A cache whose version file says 99.0.0 is out and is fresh (so no registry is asked). */
function cacheWithNewerRelease(): string {
  const dir = tmpDir('wardrobe-cache-')
  fs.writeFileSync(path.join(dir, 'version'), JSON.stringify({latest: '99.0.0'}))
  return dir
}

const UPDATE = 'wardrobe-backfill 99.0.0 is available'

describe('update check', () => {
  test('a person at a terminal is told about a newer release', async () => {
    const r = await inTerminal(['--version'], {...CLEAN, WARDROBE_CACHE_DIR: cacheWithNewerRelease()})
    expect(r.output).toContain(UPDATE)
    expect(r.code).toBe(0)
  })

  test.each([
    ['under --json', ['--version', '--json'], {}],
    ['in CI', ['--version'], {CI: 'true'}],
    ['with WARDROBE_SKIP_NEW_VERSION_CHECK=true', ['--version'], {WARDROBE_SKIP_NEW_VERSION_CHECK: 'true'}],
  ])('never runs %s', async (_name, args, env) => {
    const r = await inTerminal(args as string[], {...CLEAN, WARDROBE_CACHE_DIR: cacheWithNewerRelease(), ...env})
    expect(r.output).toContain('wardrobe-backfill/0.1.0')
    expect(r.output).not.toContain(UPDATE)
  })

  test('never runs without a terminal (tests, runbooks, cron)', async () => {
    const r = await runCli(['--version'], {env: {...CLEAN, WARDROBE_CACHE_DIR: cacheWithNewerRelease()}})
    expect(r.stdout).toContain('wardrobe-backfill/0.1.0')
    expect(r.stderr).not.toContain(UPDATE)
  })
})

describe('command discovery', () => {
  test('a mistyped command suggests the closest one at a terminal', async () => {
    const r = await inTerminal(['backfil'], {WARDROBE_SKIP_NEW_VERSION_CHECK: 'true'}, {prompt: '(Y/n)', answer: 'n\r'})
    expect(r.output).toContain('backfil is not a wardrobe command')
    expect(r.output).toContain('Did you mean backfill?')
    expect(r.code).toBe(127)
  })

  test('without a terminal it says so and exits 127, asking nothing', async () => {
    const r = await runCli(['monitr'])
    expect(r.stderr).toContain('monitr is not a wardrobe command')
    expect(r.code).toBe(127)
  })

  test("wardrobe help CMD shows the command's help", async () => {
    const r = await runCli(['help', 'rollback'])
    expect(r.stdout).toContain('Undo a backfill exactly')
    expect(r.code).toBe(0)
  })

  test.each(['bash', 'zsh', 'powershell'])('%s completion knows the commands and their flags', async (shell) => {
    const cache = tmpDir('wardrobe-cache-')
    const r = await runCli(['autocomplete', shell], {env: {WARDROBE_CACHE_DIR: cache}})
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`wardrobe autocomplete script ${shell}`)
    const ext = {bash: 'wardrobe.bash', zsh: '_wardrobe', powershell: 'wardrobe.ps1'}[shell]!
    const script = fs.readFileSync(path.join(cache, 'autocomplete', 'functions', shell, ext), 'utf8')
    for (const word of ['backfill', 'monitor', 'rollback', 'validate', 'dry-run', 'emulator-host'])
      expect(script).toContain(word)
  })
})
