/** Statistics the benchmarks share. */

/** The median of `xs` (the upper one of an even count); NaN, printed as null, for no samples. */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}
