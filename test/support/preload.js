/*
 * Test-only preload (`node --require`): makes a CLI child process look like another machine.
 * WARDROBE_TEST_CLOCK_SKEW_MS: its wall clock runs that far ahead (negative: behind).
 * WARDROBE_TEST_HOST: its hostname and boot id are another host's (pids are then meaningless to us).
 * The product has no such switch: this file lives in test/ and is loaded only by tests.
 */
const skew = Number(process.env.WARDROBE_TEST_CLOCK_SKEW_MS || 0)
if (skew) {
  const RealDate = Date
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + skew)
      else super(...args)
    }
    static now() {
      return RealDate.now() + skew
    }
  }
  globalThis.Date = SkewedDate
}
const host = process.env.WARDROBE_TEST_HOST
if (host) {
  const os = require('node:os')
  const fs = require('node:fs')
  os.hostname = () => host
  const read = fs.readFileSync
  fs.readFileSync = function (file, ...rest) {
    if (file === '/proc/sys/kernel/random/boot_id') return `${host}-boot-id\n`
    return read.call(this, file, ...rest)
  }
}
