#!/usr/bin/env node
// Both `wardrobe` and `wardrobe-backfill` land here. Exit explicitly once the command is
// done: gRPC keep-alive handles must not keep a finished run alive.
// oclif checks Node against its own engines (>=18, looser than ours) with semver on every start
// (~15 ms); npm checks ours at install and `wardrobe doctor` at preflight.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= 'true'
const oclif = require('@oclif/core')
oclif
  .execute({dir: __dirname})
  .then(() => oclif.flush())
  .then(() => process.exit(process.exitCode ?? 0), require('@oclif/core/handle'))
