/*
 * Test-only preload (`node --require`): on exit, writes every module file the process loaded to
 * $WARDROBE_TEST_MODULE_TRACE, one per line. Start-up tests read it to see what --help loads.
 */
const fs = require('node:fs')
const file = process.env.WARDROBE_TEST_MODULE_TRACE
if (file) process.on('exit', () => fs.writeFileSync(file, Object.keys(require.cache).join('\n') + '\n'))
