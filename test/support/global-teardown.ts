import type {RunningEmulator} from '../../src/dev/emulator'

export default async function globalTeardown(): Promise<void> {
  const emulator = (globalThis as Record<string, unknown>).__WARDROBE_EMULATOR__ as RunningEmulator | undefined
  await emulator?.stop()
}
