/**
 * The layers of src/ (imports point down only) and no cycles; `npm run lint:deps` checks it.
 *   commands → cli → services → engine → firestore → config → domain → errors, format
 *   dev (the development kit behind `wardrobe seed`, demo, tests, bench) → firestore, domain, config, errors
 * Type-only imports count too: a type from a layer above ties a module to that layer all the same.
 * config.ts uses domain/ (pure, no I/O: window parsing, prices, the ledger's names) to check
 * settings; domain/ never reads settings.
 */
const layer = (...names) => names.map((n) => `^src/${n}(/|\\.ts$)`).join('|')

/** `from` may import, within src/, only `allowed` (and itself). */
const onlyBelow = (name, from, allowed, comment) => ({
  name,
  comment,
  severity: 'error',
  from: {path: layer(from)},
  to: {path: '^src/', pathNot: layer(from, ...allowed)},
})
/** `from` must not import `above`. */
const notAbove = (name, from, above, comment) => ({
  name,
  comment,
  severity: 'error',
  from: {path: layer(from)},
  to: {path: layer(...above)},
})

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'a cycle makes two modules one: move what both need below them',
      from: {},
      to: {circular: true},
    },
    notAbove('cli-below-commands', 'cli', ['commands', 'hooks', 'index'], 'commands use cli, never the other way'),
    notAbove(
      'services-below-cli',
      'services',
      ['cli', 'commands', 'hooks', 'index'],
      'services return reports; rendering lives above them',
    ),
    notAbove(
      'engine-below-services',
      'engine',
      ['services', 'cli', 'commands', 'hooks', 'index', 'dev'],
      'the engine runs jobs for any service',
    ),
    onlyBelow(
      'firestore-plumbing',
      'firestore',
      ['config', 'domain', 'errors', 'format'],
      'Firestore plumbing knows no run',
    ),
    onlyBelow(
      'dev-kit',
      'dev',
      ['firestore', 'domain', 'config', 'errors'],
      'the development kit uses firestore, domain, config and errors only',
    ),
    onlyBelow(
      'config-floor',
      'config',
      ['domain', 'errors'],
      'settings sit below everything but domain (pure) and errors',
    ),
    onlyBelow('domain-pure', 'domain', ['errors', 'format'], 'domain is pure: no I/O, no settings'),
    onlyBelow('floor', 'errors', [], 'errors.ts is the floor'),
    onlyBelow('floor', 'format', [], 'format.ts is the floor'),
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    exclude: {path: '^(dist|node_modules)/'},
  },
}
