/**
 * The order of interleaved arms in the benchmarks: random each time, from a seeded generator so
 * that a run can be replayed. A fixed cyclic order (even rotated) gives every arm the same
 * predecessor throughout, so whatever one arm leaves behind (garbage, pending I/O) is paid by
 * the same other arm every time, and a periodic pause (a scavenge every few requests) can lock
 * onto one arm: a null arm (an arm ÷ an identical one) read 0.96 and up to 1.25 that way.
 */

/** A seeded generator (mulberry32). */
export const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** 0 … n-1 in a random order (Fisher-Yates). */
export const shuffled = (n: number, random: () => number): Array<number> => {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order
}
