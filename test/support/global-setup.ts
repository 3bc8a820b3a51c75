import {startEmulator} from '../../src/dev/emulator'

/** One real Firestore emulator for the whole run; each test file uses its own project id. */
export default async function globalSetup(): Promise<void> {
  const emulator = await startEmulator()
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host
  ;(globalThis as Record<string, unknown>).__WARDROBE_EMULATOR__ = emulator
}
