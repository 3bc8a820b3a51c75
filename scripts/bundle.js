#!/usr/bin/env node
// The CLI's commands as one file: src/commands/index.ts is its entry, src/cli/command-table.ts
// (oclif's command table) loads it. A command used to resolve, read and compile ~650 modules one
// by one, most of them firebase-admin's (`npm run bench -- --only startup` measures the
// difference). The library entry (dist/index.js) stays unbundled.
const path = require('node:path')
const esbuild = require('esbuild')

const root = path.join(__dirname, '..')
esbuild.buildSync({
  // Entered through a stub without "use strict": tsc's entry would lift it to the top of the
  // bundle, and every dependency written for sloppy mode would run strict.
  stdin: {contents: "module.exports = require('./commands/index.js')", resolveDir: path.join(root, 'dist')},
  outfile: path.join(root, 'dist', 'commands.bundle.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // One @oclif/core in the process: bin/run.js's, whose Command the commands extend. The log file's
  // library and the confirmation prompt load on first use only (a one-shot monitor needs neither),
  // from node_modules: direct dependencies, so they resolve from dist/ to the versions we declare.
  external: ['@oclif/core', 'winston', '@inquirer/prompts'],
  // Class names are what --json prints as error.name and what stack traces show.
  keepNames: true,
  logLevel: 'warning',
})
