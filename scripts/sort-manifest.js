#!/usr/bin/env node
// `oclif manifest` lists commands in the order its file walk finds them, which varies between
// checkouts; sorted by id, the committed oclif.manifest.json is the same wherever it is built
// (scripts/check-generated.sh compares it).
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, '..', 'oclif.manifest.json')
const manifest = JSON.parse(fs.readFileSync(file, 'utf8'))
const ids = Object.keys(manifest.commands).sort()
manifest.commands = Object.fromEntries(ids.map((id) => [id, manifest.commands[id]]))
fs.writeFileSync(file, JSON.stringify(manifest, null, 2))
