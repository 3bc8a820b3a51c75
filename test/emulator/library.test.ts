/**
 * README's "Use as a library" example, run as a user would: its code block written to a project
 * that depends on this package (node_modules/wardrobe-backfill → the built checkout), type-checked
 * against the published declarations and run against the emulator.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {generateItems, writeItems} from '../../src/dev/seed-data'
import {emulatorHost, ledgerRuns, resetProject, ROOT, testDb, tmpDir} from '../support/harness'

const PROJECT = 'demo-wardrobe'
const ITEMS = 300

function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Use as a library'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  if (!block) throw new Error('README has no ```ts block under "## Use as a library"')
  return block[1]
}

describe('README: use as a library', () => {
  it('type-checks against dist/index.d.ts and normalizes the collection', async () => {
    await resetProject(PROJECT)
    const db = testDb(PROJECT)
    const items = [...generateItems(ITEMS, {seed: 5, malformedRate: 0.05})]
    await writeItems(db, 'wardrobe_items', items)

    const dir = tmpDir('wardrobe-library-')
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'wardrobe-backfill'))
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'firebase-admin'), path.join(dir, 'node_modules', 'firebase-admin'))
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'))
    fs.writeFileSync(path.join(dir, 'example.ts'), readmeExample())

    const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name)
    const tsc = spawnSync(
      bin('tsc'),
      [
        '--noEmit',
        '--strict',
        '--module',
        'commonjs',
        '--target',
        'ES2022',
        '--esModuleInterop',
        '--skipLibCheck',
        '--types',
        'node',
        'example.ts',
      ],
      {cwd: dir, encoding: 'utf8'},
    )
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)

    const env = {...process.env, FIRESTORE_EMULATOR_HOST: emulatorHost(), METADATA_SERVER_DETECTION: 'none'}
    const run = spawnSync(bin('tsx'), ['example.ts'], {cwd: dir, env, encoding: 'utf8', timeout: 90_000})
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)

    const [{runId, status}] = await ledgerRuns(db)
    expect(status).toBe('completed')
    const snaps = await db.collection('wardrobe_items').get()
    const normalized = snaps.docs.filter((d) => d.get('normalized.run_id') === runId).length
    const lines = run.stdout.trim().split('\n')
    expect(lines[0]).toMatch(
      new RegExp(`^backfill completed: ${normalized} updated, ${ITEMS - normalized} in error, run ${runId}$`),
    )
    expect(lines[1]).toBe(`validation passed: ${normalized} of ${normalized} items normalized`)
    expect(normalized).toBeGreaterThan(ITEMS * 0.8)
  })
})
