/**
 * A run's identity: which recorded run a new invocation resumes (the resume key), and the
 * command lines printed to resume one. A printed command is checked by what bash makes of
 * it: the words bash parses are the words the run was started with.
 */
import {spawnSync} from 'node:child_process'
import {
  CommandContext,
  resumeCommandFor,
  resumeCommandFromArgv,
  resumeKey,
  RunIdentity,
  RunIdentitySchema,
  sameRun,
  shellQuote,
} from '../../../src/engine/run-identity'

/** The words bash parses from `line` (NUL-separated, so empty words and newlines survive). */
function bashWords(line: string): string[] {
  const out = spawnSync('bash', ['-c', `printf '%s\\0' ${line}`], {encoding: 'utf8'})
  expect(out.status).toBe(0)
  return out.stdout.split('\0').slice(0, -1)
}

const backfill: RunIdentity = {kind: 'backfill', version: '1.0', taxonomyHash: 'abc123', force: false, group: false}
const rollback: RunIdentity = {
  kind: 'rollback',
  version: '1.0',
  run: null,
  targets: ['backfill-a', 'backfill-b'],
  group: false,
}

describe('resume key', () => {
  it('keeps the format of the keys existing ledgers hold', () => {
    expect(resumeKey(backfill)).toBe('backfill|version=1.0|taxonomy=abc123|force=false')
    expect(resumeKey({...backfill, force: true, group: true})).toBe(
      'backfill|version=1.0|taxonomy=abc123|force=true|group',
    )
    expect(resumeKey({kind: 'rollback', version: null, run: null, targets: null, group: false})).toBe(
      'rollback|version=*|run=*',
    )
    expect(
      resumeKey({kind: 'rollback', version: null, run: 'backfill-a', targets: ['backfill-a'], group: true}),
    ).toMatch(/^rollback\|version=\*\|run=backfill-a\|targets=[0-9a-f]{12}\|group$/)
  })

  it('is the same for the same command', () => {
    expect(resumeKey({...backfill})).toBe(resumeKey(backfill))
    expect(resumeKey({...rollback, targets: ['backfill-a', 'backfill-b']})).toBe(resumeKey(rollback))
    // Batch size, rate and the like are not part of a run's identity: a resume may change them.
    expect(RunIdentitySchema.parse({...backfill, batchSize: 50, maxRate: 10})).toEqual(backfill)
  })

  it.each<[string, RunIdentity]>([
    ['another version', {...backfill, version: '1.1'}],
    ['an edited taxonomy that keeps its version', {...backfill, taxonomyHash: 'def456'}],
    ['--force', {...backfill, force: true}],
    ['the collection group of the same name', {...backfill, group: true}],
  ])('differs for a backfill with %s', (_, other) => {
    expect(resumeKey(other)).not.toBe(resumeKey(backfill))
  })

  it.each<[string, RunIdentity]>([
    ['another --version', {...rollback, version: '0.9'}],
    ['a --run', {...rollback, run: 'backfill-a'}],
    ['another set of runs to undo', {...rollback, targets: ['backfill-a']}],
    ['no readable ledger (every run)', {...rollback, targets: null}],
    ['the collection group of the same name', {...rollback, group: true}],
  ])('differs for a rollback with %s', (_, other) => {
    expect(resumeKey(other)).not.toBe(resumeKey(rollback))
  })

  it('refuses an identity that misses what makes the run', () => {
    expect(() =>
      resumeKey({kind: 'backfill', version: '1.0', force: false, group: false} as unknown as RunIdentity),
    ).toThrow()
  })

  it('matches a recorded run on kind and key together', () => {
    const key = resumeKey(backfill)
    expect(sameRun({kind: 'backfill', resumeKey: key}, {kind: 'backfill', resumeKey: key})).toBe(true)
    expect(sameRun({kind: 'rollback', resumeKey: key}, {kind: 'backfill', resumeKey: key})).toBe(false)
    expect(
      sameRun({kind: 'backfill', resumeKey: key}, {kind: 'backfill', resumeKey: resumeKey({...backfill, force: true})}),
    ).toBe(false)
  })
})

const AWKWARD = [
  'plain',
  'two words',
  "it's",
  'say "hi"',
  '$HOME',
  '${x:-y}',
  '`id`',
  '$(id)',
  '',
  ' ',
  'back\\slash',
  'new\nline',
  'tab\there',
  '*',
  '~',
  '!bang',
  'semi;colon',
  'a|b',
  '--taxonomy=/t/v 1.json',
  'ünïcödé',
  "''",
  '#hash',
  'x=1',
]

describe('shell quoting', () => {
  it('leaves plain words as they are', () => {
    expect(
      ['wardrobe', 'backfill', '--batch-size', '500', '--taxonomy', './t/v1.json', 'user@host', 'a=b,c:d%e+f'].map(
        shellQuote,
      ),
    ).toEqual(['wardrobe', 'backfill', '--batch-size', '500', '--taxonomy', './t/v1.json', 'user@host', 'a=b,c:d%e+f'])
  })

  it('quotes spaces, quotes, $, backquotes, globs and empty words so bash reads them back exactly', () => {
    expect(bashWords(AWKWARD.map(shellQuote).join(' '))).toEqual(AWKWARD)
  })
})

describe('resume command from the command line typed', () => {
  it('is the same command minus --from-start, and bash parses it back to the same words', () => {
    const argv = [
      '--environment',
      'production',
      '--taxonomy',
      '/srv/tax onomy/$v1.json',
      '--from-start',
      '--collection',
      "it's",
      '--window',
      '',
      '--yes',
    ]
    const line = resumeCommandFromArgv('wardrobe', 'backfill', argv)
    expect(bashWords(line)).toEqual(['wardrobe', 'backfill', ...argv.filter((a) => a !== '--from-start')])
  })
})

describe('resume command from a run record', () => {
  const ctx: CommandContext = {
    bin: 'wardrobe',
    targetArgs: ['--emulator-host', '127.0.0.1:8080', '--config', '/etc/my wardrobe/$cfg.json'],
    shippedVersion: '1.0',
  }
  const record = {
    kind: 'backfill' as const,
    environment: 'production',
    projectId: 'my-app',
    collection: 'wardrobe items',
    group: false,
    version: '1.0',
    options: {force: true},
  }

  it('rebuilds a backfill with its target, --force and the monitor taxonomy, quoted for bash', () => {
    const line = resumeCommandFor({...record, version: '0.9'}, {...ctx, taxonomyFile: "/t/v0.9 'old'.json"}, '0.9')
    expect(bashWords(line)).toEqual([
      'wardrobe',
      'backfill',
      '--environment',
      'production',
      '--project',
      'my-app',
      '--collection',
      'wardrobe items',
      ...ctx.targetArgs,
      '--force',
      '--taxonomy',
      "/t/v0.9 'old'.json",
    ])
  })

  it('leaves a taxonomy it cannot know as a placeholder for the operator', () => {
    expect(resumeCommandFor({...record, version: '0.9', group: true}, ctx, '1.0')).toBe(
      "wardrobe backfill --environment production --project my-app --collection-group 'wardrobe items' --emulator-host 127.0.0.1:8080 --config '/etc/my wardrobe/$cfg.json' --force --taxonomy <taxonomy file with version 0.9>",
    )
  })

  it('rebuilds a rollback with its scope', () => {
    const line = resumeCommandFor(
      {...record, kind: 'rollback', version: '1.0', options: {version: '1.0', run: 'backfill-x y'}},
      ctx,
      '1.0',
    )
    expect(bashWords(line)).toEqual([
      'wardrobe',
      'rollback',
      '--environment',
      'production',
      '--project',
      'my-app',
      '--collection',
      'wardrobe items',
      ...ctx.targetArgs,
      '--version',
      '1.0',
      '--run',
      'backfill-x y',
    ])
  })
})
