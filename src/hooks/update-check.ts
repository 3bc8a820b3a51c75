import path from 'node:path'
import {Hook, ModuleLoader} from '@oclif/core'

/**
 * The update check is for a person at a terminal. Never under --json, in CI, without a terminal on
 * stderr (tests, runbooks, cron), or with WARDROBE_SKIP_NEW_VERSION_CHECK=true.
 */
export function wantsUpdateCheck(argv: string[], env: NodeJS.ProcessEnv, terminal: boolean, skipped: boolean): boolean {
  const ci = Boolean(env.CI) && env.CI !== 'false'
  const json = argv.includes('--json') || env.WARDROBE_CONTENT_TYPE === 'json'
  return terminal && !ci && !json && !skipped
}

/**
 * Runs @oclif/plugin-warn-if-update-available's own hook when wantsUpdateCheck says so. The plugin
 * is not in oclif.plugins: listed there, its hook would load on every command (about 50 ms, a third
 * of the start-up) and run under --json too.
 */
const hook: Hook.Init = async function (options) {
  if (
    !wantsUpdateCheck(
      process.argv.slice(2),
      process.env,
      Boolean(process.stderr.isTTY),
      options.config.scopedEnvVarTrue('SKIP_NEW_VERSION_CHECK'),
    )
  )
    return
  // The package exports only its (empty) index; its hook lies beside it.
  const file = path.join(
    path.dirname(require.resolve('@oclif/plugin-warn-if-update-available')),
    'hooks',
    'init',
    'check-update.js',
  )
  const {default: check} = (await ModuleLoader.load(options.config, file)) as {default: Hook.Init}
  await check.call(this, options)
}

export default hook
