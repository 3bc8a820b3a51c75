import {Flags} from '@oclif/core'
import {WardrobeCommand} from '../cli/base-command'
import {createProgress} from '../cli/progress'
import type {SeedResult} from '../services/seed'
import {UsageError} from '../errors'

export default class Seed extends WardrobeCommand<SeedResult> {
  static summary = 'Load generated or file items into the development emulator (never staging or production).'

  static examples = [
    {
      description: '5,000 realistic, messy items (2% malformed)',
      command: '<%= config.bin %> <%= command.id %> --count 5000',
    },
    {description: 'Items from a file', command: '<%= config.bin %> <%= command.id %> --file items.ndjson'},
    {
      description: 'Items nested under 200 users (users/{uid}/wardrobe), for --collection-group',
      command: '<%= config.bin %> <%= command.id %> --count 20000 --collection-group wardrobe --users 200',
    },
  ]

  static flags = {
    count: Flags.integer({summary: 'Generate this many items.', min: 1, exclusive: ['file']}),
    file: Flags.string({summary: 'Load items from a .json, .ndjson/.jsonl or .csv file.', exclusive: ['count']}),
    seed: Flags.integer({summary: 'Generator seed: the same seed gives the same items.', default: 1}),
    'malformed-rate': Flags.string({
      summary: 'Share of generated items with a malformed field (0..1).',
      default: '0.02',
    }),
    users: Flags.integer({
      summary: 'With --collection-group: spread items over this many users/{uid}/<group> collections (default 100).',
      min: 1,
      dependsOn: ['collection-group'],
    }),
  }

  async run(): Promise<SeedResult> {
    const {flags} = await this.parse(Seed)
    const settings = this.settingsFrom(flags)
    const malformedRate = Number(flags['malformed-rate'])
    if (!(malformedRate >= 0 && malformedRate <= 1))
      throw new UsageError(
        `--malformed-rate ${flags['malformed-rate']} is not between 0 and 1`,
        'e.g. --malformed-rate 0.02',
      )
    if (settings.environment !== 'development') {
      throw new UsageError(
        `seed runs only in development, not ${settings.environment}`,
        'use --environment development against an emulator',
      )
    }
    const {seedCollection} = await import('../services/seed')
    const {db} = await this.open(settings, flags['log-level'])
    const total = flags.count ?? null
    const progress = createProgress('seed')
    const started = Date.now()
    const result = await seedCollection(db, settings, {
      count: flags.count ?? (flags.file ? undefined : 1000),
      file: flags.file,
      seed: flags.seed,
      malformedRate,
      users: flags.users,
      onProgress: (written) =>
        progress.update({
          done: written,
          total,
          rate: written / Math.max(0.001, (Date.now() - started) / 1000),
          etaSeconds: null,
          counts: {},
        }),
    })
    progress.stop()
    this.log(`Seeded ${result.written} items into ${result.collection} (${result.projectId}) from ${result.source}`)
    return result
  }
}
