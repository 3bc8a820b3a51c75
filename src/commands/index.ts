/**
 * Every command by id. The build bundles this module with everything it imports (firebase-admin
 * and its gRPC stack included) into dist/commands.bundle.js, oclif's command table loads that one
 * file (src/cli/command-table.ts) instead of ~650 modules resolved, read and compiled one by one.
 * Help and --version never load it (oclif.manifest.json). Each getter evaluates its command's
 * modules when oclif asks for that command, so one command does not pay for the others' imports.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- oclif reads this table synchronously: import() would make each entry a promise */
import type Backfill from './backfill'
import type Doctor from './doctor'
import type Monitor from './monitor'
import type Rollback from './rollback'
import type RunsList from './runs/list'
import type RunsPause from './runs/pause'
import type RunsResume from './runs/resume'
import type RunsShow from './runs/show'
import type RunsStop from './runs/stop'
import type RunsThrottle from './runs/throttle'
import type Seed from './seed'
import type Validate from './validate'
import type VocabularyCheck from './vocabulary/check'
import type VocabularySuggest from './vocabulary/suggest'

export const COMMANDS = {
  get backfill(): typeof Backfill {
    return require('./backfill').default
  },
  get doctor(): typeof Doctor {
    return require('./doctor').default
  },
  get monitor(): typeof Monitor {
    return require('./monitor').default
  },
  get rollback(): typeof Rollback {
    return require('./rollback').default
  },
  get 'runs:list'(): typeof RunsList {
    return require('./runs/list').default
  },
  get 'runs:pause'(): typeof RunsPause {
    return require('./runs/pause').default
  },
  get 'runs:resume'(): typeof RunsResume {
    return require('./runs/resume').default
  },
  get 'runs:show'(): typeof RunsShow {
    return require('./runs/show').default
  },
  get 'runs:stop'(): typeof RunsStop {
    return require('./runs/stop').default
  },
  get 'runs:throttle'(): typeof RunsThrottle {
    return require('./runs/throttle').default
  },
  get seed(): typeof Seed {
    return require('./seed').default
  },
  get validate(): typeof Validate {
    return require('./validate').default
  },
  get 'vocabulary:check'(): typeof VocabularyCheck {
    return require('./vocabulary/check').default
  },
  get 'vocabulary:suggest'(): typeof VocabularySuggest {
    return require('./vocabulary/suggest').default
  },
}
