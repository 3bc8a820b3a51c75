/**
 * The layers of src/ (imports point down only) and no cycles; `npm run lint:deps` checks it.
 *   commands → cli → services → engine → firestore → {config, domain} → errors
 *   dev (the development kit) → firestore, domain, config, errors
 * Type-only imports count too: a type from a layer above is a dependency on it all the same.
 * config.ts may use domain/ (pure, no I/O: window parsing, prices, the ledger's names), and
 * domain/ never reads settings.
 */
const layer = (name) => `^src/${name}(/|\\.ts$)`
const rule = (name, from, to, comment) => ({name, comment, severity: 'error', from: {path: from}, to: {path: to}})
const any = (...names) => names.map(layer).join('|')

module.exports = {
  forbidden: [
    {name: 'no-circular', severity: 'error', comment: 'a cycle makes two modules one; move what both need below them', from: {}, to: {circular: true}},
    rule('cli-not-commands', layer('cli'), any('commands'), 'commands use cli, never the other way'),
    rule('services-not-above', layer('services'), any('cli', 'commands'), 'services return reports; rendering lives above them'),
    rule('engine-not-above', layer('engine'), any('services', 'cli', 'commands'), 'the engine runs jobs for any service'),
    rule('firestore-not-above', layer('firestore'), any('engine', 'services', 'cli', 'commands', 'dev'), 'Firestore plumbing knows no run'),
    rule('domain-not-above', layer('domain'), any('firestore', 'engine', 'services', 'cli', 'commands', 'dev', 'config'), 'domain is pure: no I/O, no settings'),
    rule('dev-below', layer('dev'), any('engine', 'services', 'cli', 'commands'), 'the development kit uses firestore, domain, config and errors only'),
    rule('config-bottom', layer('config'), any('firestore', 'engine', 'services', 'cli', 'commands', 'dev'), 'settings sit below everything but domain and errors'),
    rule('errors-bottom', layer('errors'), '^src/', 'errors.ts is the floor'),
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    exclude: {path: '^(dist|node_modules)/'},
  },
}
