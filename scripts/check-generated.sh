#!/usr/bin/env bash
# CI: oclif.manifest.json and docs/commands.md are generated from the commands (`npm run docs`
# regenerates both). Fails when the committed files differ from what the code generates.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCLIF_SKIP_NEW_VERSION_CHECK=true
npm run --silent docs >/dev/null 2>&1 || npm run docs
if ! git diff --exit-code --stat -- oclif.manifest.json docs/commands.md; then
  echo 'oclif.manifest.json or docs/commands.md is stale: run `npm run docs` and commit both' >&2
  exit 1
fi
