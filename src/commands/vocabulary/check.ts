import {Args, Flags} from '@oclif/core'
import {WardrobeCommand} from '../../cli/base-command'
import {targetOf} from '../../firestore/target'
import type {VocabularyCheck} from '../../services/vocabulary-check'

export default class Check extends WardrobeCommand<VocabularyCheck> {
  static summary =
    'Validate a taxonomy file, list what it maps differently, and count the items in scope it would change.'

  static description = `Validates FILE as a taxonomy (exit 2 with the problem when it is not one), lists per field the terms and aliases added, removed or moved to another term against the shipped vocabulary (or --against FILE), and reads every item in scope, as a dry run does, to count the items a backfill with FILE would write differently. Writes nothing. --no-scan skips the read.`

  static examples = [
    {
      description: 'A draft against the shipped vocabulary, on the local emulator',
      command: '<%= config.bin %> <%= command.id %> taxonomy/draft.json',
    },
    {
      description: 'Against the file in use in production, without reading items',
      command: '<%= config.bin %> <%= command.id %> new.json --against current.json --no-scan',
    },
  ]

  static args = {file: Args.string({required: true, description: 'The taxonomy file to check.'})}

  static flags = {
    against: Flags.string({summary: 'The vocabulary to compare with (default: the shipped one).'}),
    scan: Flags.boolean({
      default: true,
      allowNo: true,
      summary: 'Read the items in scope to count those that would change.',
    }),
  }

  async run(): Promise<VocabularyCheck> {
    const {args, flags} = await this.parse(Check)
    const {checkVocabulary} = await import('../../services/vocabulary-check')
    let scan
    if (flags.scan) {
      const settings = this.settingsFrom(flags)
      scan = {
        db: (await this.open(settings, flags['log-level'])).db,
        target: targetOf(settings),
        signal: this.interruptSignal(() => {}),
      }
    }
    const report = await checkVocabulary(args.file, flags.against, scan)
    if (!this.jsonEnabled()) this.log(render(report).join('\n'))
    return report
  }
}

/** A list for one line: at most 12 entries, then how many more. */
const list = (xs: string[]) =>
  xs.length > 12 ? `${xs.slice(0, 12).join(', ')} and ${xs.length - 12} more` : xs.join(', ')

function render(r: VocabularyCheck): string[] {
  const lines = [
    `${r.file}: valid, version ${r.version} (content ${r.hash}); against ${r.against.file}, version ${r.against.version} (content ${r.against.hash})${r.identical ? ': the same content' : ''}`,
  ]
  for (const [field, d] of Object.entries(r.fields)) {
    const parts = [
      d.termsAdded.length ? `terms added: ${list(d.termsAdded)}` : '',
      d.termsRemoved.length ? `terms removed: ${list(d.termsRemoved)}` : '',
      d.aliasesAdded.length ? `aliases added: ${list(d.aliasesAdded.map((a) => `${a.alias} → ${a.term}`))}` : '',
      d.aliasesRemoved.length ? `aliases removed: ${list(d.aliasesRemoved.map((a) => a.alias))}` : '',
      d.aliasesMoved.length ? `moved: ${list(d.aliasesMoved.map((a) => `${a.alias} ${a.from} → ${a.to}`))}` : '',
    ].filter(Boolean)
    lines.push(`  ${field}: ${parts.length ? parts.join('; ') : 'unchanged'}`)
  }
  if (r.impact) {
    const by = Object.entries(r.impact.changedByField).filter(([, n]) => n > 0)
    lines.push(
      `Items in scope that a backfill would write differently: ${r.impact.changed} of ${r.impact.scanned}${by.length ? ` (${by.map(([f, n]) => `${f} ${n}`).join(', ')})` : ''}`,
    )
    for (const e of r.impact.examples)
      lines.push(`  ${e.id} ${e.field}: [${e.before.join(', ')}] → [${e.after.join(', ')}]`)
  }
  return lines
}
