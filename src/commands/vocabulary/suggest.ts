import {Flags} from '@oclif/core'
import {WardrobeCommand} from '../../cli/base-command'
import {targetOf} from '../../firestore/target'
import type {VocabularySuggestion} from '../../services/vocabulary-suggest'

export default class Suggest extends WardrobeCommand<VocabularySuggestion> {
  static summary = 'Draft a taxonomy for review from the values the vocabulary does not know.'

  static description = `Collects the unmapped values with their counts, from a read-only scan of the items in scope or from a dry run's stats file (--from-stats; its list holds the 200 most frequent), and writes a draft taxonomy (--out): the vocabulary in use plus each value as a proposed alias of the canonical term with the closest spelling (token overlap or edit distance, on folded forms), or as a proposed new term when none is close. Review the draft, then check it with \`wardrobe vocabulary check\`.`

  static examples = [
    {description: 'From the local emulator', command: '<%= config.bin %> <%= command.id %> --out taxonomy/draft.json'},
    {
      description: 'From a production dry run, without reading again',
      command: '<%= config.bin %> <%= command.id %> --from-stats backfill_stats_20261201_093000.json --out draft.json',
    },
  ]

  static flags = {
    'from-stats': Flags.string({
      summary: 'A backfill stats file (of a dry run) to take the unmapped values from, instead of a scan.',
    }),
    taxonomy: Flags.string({
      summary: "The vocabulary to extend (default: the config file's taxonomy, else the shipped one).",
    }),
    out: Flags.string({summary: 'Where to write the draft taxonomy.', default: 'taxonomy_draft.json'}),
  }

  async run(): Promise<VocabularySuggestion> {
    const {flags} = await this.parse(Suggest)
    const {suggestVocabulary} = await import('../../services/vocabulary-suggest')
    const settings = this.settingsFrom(flags)
    let scan
    if (!flags['from-stats'])
      scan = {
        db: (await this.open(settings, flags['log-level'])).db,
        target: targetOf(settings),
        signal: this.interruptSignal(() => {}),
      }
    const report = await suggestVocabulary({
      base: flags.taxonomy ?? settings.taxonomy,
      out: flags.out,
      stats: flags['from-stats'],
      scan,
    })
    if (!this.jsonEnabled()) {
      const n = (p: string) => report.suggestions.filter((s) => s.proposal === p).length
      this.log(
        `${report.suggestions.length} unmapped values from ${report.source}${report.scanned === null ? '' : ` (${report.scanned} items read)`}: ${n('alias')} proposed as aliases, ${n('term')} as new terms, ${n('placeholder')} placeholders left out.`,
      )
      const what = {
        alias: (s: {term: string | null; similarity: number}) => `alias of ${s.term} (${s.similarity})`,
        term: () => 'new term',
        placeholder: () => 'placeholder ("nothing"), left out',
      }
      for (const s of report.suggestions.slice(0, 30))
        this.log(`  ${s.field}: "${s.value}" × ${s.count} → ${what[s.proposal](s)}`)
      if (report.suggestions.length > 30) this.log(`  and ${report.suggestions.length - 30} more`)
      this.log(
        `Draft ${report.draft.version}: ${report.draft.file} (review it, then: ${this.config.bin} vocabulary check ${report.draft.file})`,
      )
    }
    return report
  }
}
