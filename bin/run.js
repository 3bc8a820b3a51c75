#!/usr/bin/env node
// Both `wardrobe` and `wardrobe-backfill` land here. Exit explicitly once the command is
// done: gRPC keep-alive handles must not keep a finished run alive.
const oclif = require('@oclif/core')
oclif
  .execute({dir: __dirname})
  .then(() => oclif.flush())
  .then(() => process.exit(process.exitCode ?? 0), require('@oclif/core/handle'))
