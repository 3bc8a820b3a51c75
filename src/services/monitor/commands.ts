import path from 'node:path'
import {DEFAULT_LEDGER} from '../../config'
import type {MonitorSettings} from './schema'

/** Flags that point another command at the monitor's target (emulator, ledger, config file). */
export function targetArgsFor(settings: MonitorSettings, cwd = process.cwd()): string[] {
  const args: string[] = []
  if (settings.emulatorHost) args.push('--emulator-host', settings.emulatorHost)
  if (settings.ledgerCollection !== DEFAULT_LEDGER) args.push('--ledger-collection', settings.ledgerCollection)
  // The cwd's wardrobe.config.json is found again without the flag.
  if (settings.configFile && path.resolve(settings.configFile) !== path.join(cwd, 'wardrobe.config.json'))
    args.push('--config', settings.configFile)
  return args
}
