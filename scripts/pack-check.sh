#!/usr/bin/env bash
# CI: the package as published works once installed. Packs the tarball, installs it globally into a
# temporary prefix (dependencies from npm's cache when it has them) and runs its bins from there.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OCLIF_SKIP_NEW_VERSION_CHECK=true
tarball="$tmp/$(npm pack --silent --pack-destination "$tmp" | tail -n 1)"
npm install --global --prefix "$tmp/prefix" --prefer-offline --no-audit --no-fund --loglevel error "$tarball"
export PATH="$tmp/prefix/bin:$PATH" npm_config_prefix="$tmp/prefix" WARDROBE_SKIP_NEW_VERSION_CHECK=true
cd "$tmp"
wardrobe --help | grep -q 'backfill'
wardrobe-backfill --version | grep -q '^wardrobe-backfill/'
# --no: run the installed package, never fetch one of that name from the registry.
npx --no wardrobe-backfill monitor --help | grep -q 'USAGE'
# Help and --version come from the manifest alone: one command that runs loads dist/, its
# dependencies and the shipped taxonomy from the installed package.
wardrobe vocabulary check "$tmp/prefix/lib/node_modules/wardrobe-backfill/taxonomy/default.json" --no-scan | grep -q 'the same content'
echo "pack-check: $(basename "$tarball") installs and runs"
