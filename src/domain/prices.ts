import {z} from 'zod'

/**
 * Firestore list prices in USD per 100,000 operations, for cost estimates (doctor). Defaults: the
 * Standard edition in the nam5 (United States) multi-region as listed on
 * cloud.google.com/firestore/pricing, taken 2026-12-01 (from memory of the published table:
 * check them, and set `prices` in the config file for your location or contract).
 */
export const PricesSchema = z
  .object({
    readsPer100k: z.number().nonnegative().describe('USD per 100,000 document reads'),
    writesPer100k: z.number().nonnegative().describe('USD per 100,000 document writes'),
    deletesPer100k: z.number().nonnegative().describe('USD per 100,000 document deletes'),
    takenOn: z.string().describe('the date these prices were read, YYYY-MM-DD'),
  })
  .strict()
export type Prices = z.infer<typeof PricesSchema>

export const DEFAULT_PRICES: Prices = {
  readsPer100k: 0.06,
  writesPer100k: 0.18,
  deletesPer100k: 0.02,
  takenOn: '2026-12-01',
}

/** USD for these operations, to the cent. */
export function costOf(
  ops: {reads: number; writes: number; deletes?: number},
  prices: Prices,
): {reads: number; writes: number; deletes: number; total: number} {
  const usd = (n: number, per100k: number) => Math.round((n / 100_000) * per100k * 100) / 100
  const reads = usd(ops.reads, prices.readsPer100k)
  const writes = usd(ops.writes, prices.writesPer100k)
  const deletes = usd(ops.deletes ?? 0, prices.deletesPer100k)
  return {reads, writes, deletes, total: Math.round((reads + writes + deletes) * 100) / 100}
}
