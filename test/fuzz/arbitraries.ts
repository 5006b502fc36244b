/**
 * Hostile inputs shared by the decoder fuzzers (test/fuzz/*.test.ts): arbitrary JSON with huge
 * numbers and strings, deep nesting, duplicate keys, wrong types at the fields that matter.
 */
import { FastCheck as fc } from "effect"

/** Strings that stress parsers: huge, unicode, control characters, lone surrogates, JSON-ish. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "__proto__",
    "constructor",
    "toString",
    "S256",
    "Bearer",
    "https://",
    "http://127.0.0.1:1/",
    "%",
    "%E0%A4%A",
    "null",
    "[]",
    "{}"
  ),
  fc.integer({ min: 1, max: 200_000 }).map((n) => "x".repeat(n)),
  fc.integer({ min: 1, max: 5_000 }).map((n) => "é🔑\"\\".repeat(n))
)

/** Numbers that stress decoders: huge, tiny, negative zero, non-integers, beyond 2^53. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, 1.5, -1)
)

/** Any JSON value (bounded size), with nasty leaves. */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    nastyNumber,
    nastyString,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(nastyString, tie("value"), { maxKeys: 5 })
  )
})).value

/** `depth` nested arrays or objects around `inner`, as JSON text. */
export const nestedText = (depth: number, kind: "array" | "object", inner = "1"): string =>
  kind === "array"
    ? "[".repeat(depth) + inner + "]".repeat(depth)
    : "{\"a\":".repeat(depth) + inner + "}".repeat(depth)

/** Deeply nested JSON text: 1 000 to 300 000 levels. */
export const deepText: fc.Arbitrary<string> = fc.record({
  depth: fc.oneof(fc.integer({ min: 1_000, max: 20_000 }), fc.constantFrom(100_000, 300_000)),
  kind: fc.constantFrom("array" as const, "object" as const)
}).map(({ depth, kind }) => nestedText(depth, kind))

/** Number literals JSON.stringify never writes: they parse as ±Infinity, or are strings a decoder may turn into NaN. */
const RAW_NUMBERS = ["1e400", "-1e400", "\"NaN\"", "\"Infinity\"", "-0", "1E-400", "123456789012345678901234567890"]

const isRaw = (v: unknown): v is { readonly raw: string } =>
  typeof v === "object" && v !== null && "raw" in v && typeof v.raw === "string" && Object.keys(v).length === 1

/**
 * A JSON object that looks like `template` but with some fields replaced by hostile values
 * (wrong types, deep nesting, huge strings) or duplicated in the text (`{"a":1,"a":2}`).
 */
export const mutatedObjectText = (
  template: Record<string, unknown>,
  depth: { readonly min: number; readonly max: number } = { min: 1_000, max: 20_000 }
): fc.Arbitrary<string> =>
  fc.record({
    replace: fc.dictionary(
      fc.constantFrom(...Object.keys(template), "__proto__", "extra"),
      fc.oneof(jsonValue, fc.constant("DEEP"), fc.constantFrom(...RAW_NUMBERS).map((raw) => ({ raw })))
    ),
    duplicate: fc.subarray(Object.keys(template)),
    duplicateValue: jsonValue,
    depth: fc.integer(depth)
  }).map(({ depth, duplicate, duplicateValue, replace }) => {
    const fields = { ...template, ...replace }
    const parts = Object.entries(fields).map(([k, v]) =>
      `${JSON.stringify(k)}:${
        v === "DEEP" ? nestedText(depth, "array") : isRaw(v) ? v.raw : JSON.stringify(v) ?? "null"
      }`
    )
    for (const k of duplicate) parts.push(`${JSON.stringify(k)}:${JSON.stringify(duplicateValue) ?? "null"}`)
    return `{${parts.join(",")}}`
  })

/** Any body text: arbitrary JSON, deep nesting, mutated templates, or not JSON at all. */
export const bodyText = (template: Record<string, unknown>): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: jsonValue.map((v) => JSON.stringify(v) ?? "null"), weight: 1 },
    { arbitrary: deepText, weight: 1 },
    { arbitrary: mutatedObjectText(template), weight: 4 },
    { arbitrary: nastyString, weight: 1 }
  )

/** A failure report that stays short: the counterexample and the error, each cut to a few hundred characters. */
const report = (details: fc.RunDetails<unknown>): void => {
  if (!details.failed) return
  const example = JSON.stringify(details.counterexample, (_k, v: unknown) =>
    typeof v === "string" && v.length > 200 ? `${v.slice(0, 200)}…(${v.length} chars)` : v)
  throw new Error(
    `property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath ?? "?"})\n` +
      `counterexample: ${(example ?? "undefined").slice(0, 600)}\n` +
      `error: ${String(details.errorInstance).slice(0, 1_000)}`
  )
}

/** `fc.assert` with a short failure report (hostile inputs are huge). */
export const assertProperty = <Ts>(property: fc.IProperty<Ts>, params: fc.Parameters<Ts>): void =>
  report(fc.check(property, params) as fc.RunDetails<unknown>)

/** `fc.assert` for async properties, with a short failure report. */
export const assertAsyncProperty = async <Ts>(
  property: fc.IAsyncProperty<Ts>,
  params: fc.Parameters<Ts>
): Promise<void> => report((await fc.check(property, params)) as fc.RunDetails<unknown>)
