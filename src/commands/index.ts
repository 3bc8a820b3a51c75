/**
 * Every command by id. The build bundles this module with everything it imports (firebase-admin
 * and its gRPC stack included) into dist/commands.bundle.js, oclif's command table loads that one
 * file (src/cli/command-table.ts) instead of ~650 modules resolved, read and compiled one by one.
 * Help and --version never load it (oclif.manifest.json). Each entry evaluates its command's
 * modules when oclif asks for that command, so one command does not pay for the others' imports.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- oclif reads this table synchronously: import() would make each entry a promise */
import type {Command} from '@oclif/core'

const loaders: Record<string, () => {default: Command.Class}> = {
  backfill: () => require('./backfill'),
  doctor: () => require('./doctor'),
  monitor: () => require('./monitor'),
  rollback: () => require('./rollback'),
  'runs:list': () => require('./runs/list'),
  'runs:pause': () => require('./runs/pause'),
  'runs:resume': () => require('./runs/resume'),
  'runs:show': () => require('./runs/show'),
  'runs:stop': () => require('./runs/stop'),
  'runs:throttle': () => require('./runs/throttle'),
  seed: () => require('./seed'),
  validate: () => require('./validate'),
  'vocabulary:check': () => require('./vocabulary/check'),
  'vocabulary:suggest': () => require('./vocabulary/suggest'),
}

export const COMMANDS: Record<string, Command.Class> = Object.defineProperties(
  {},
  Object.fromEntries(Object.entries(loaders).map(([id, load]) => [id, {get: () => load().default, enumerable: true}])),
)
