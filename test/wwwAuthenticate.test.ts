import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { bearerChallenge, type Challenge, findChallenge, parseWwwAuthenticate } from "../src/internal/wwwAuthenticate.js"

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".split("")
const T68CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/".split("")
const isToken = (s: string) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s)

const token = fc.stringOf(fc.constantFrom(...TCHARS), { minLength: 1, maxLength: 12 })
// printable ASCII, biased towards the characters that matter for quoting
const printable = fc.oneof(
  fc.string({ unit: "grapheme-ascii", maxLength: 30 }),
  fc.stringOf(fc.constantFrom("\"", "\\", ",", "=", " ", "a", "\t", ";"), { maxLength: 15 })
)
const ows = fc.constantFrom("", " ", "  ", "\t")

interface Param {
  readonly name: string
  readonly value: string
  readonly quote: boolean
  readonly before: string
  readonly after: string
}
interface Model {
  readonly scheme: string
  readonly body: { readonly _tag: "params"; readonly params: ReadonlyArray<Param> } | {
    readonly _tag: "token68"
    readonly token68: string
  }
}

const param: fc.Arbitrary<Param> = fc.record({
  name: token,
  value: printable,
  quote: fc.boolean(),
  before: ows,
  after: ows
})

const challenge: fc.Arbitrary<Model> = fc.record({
  scheme: token,
  body: fc.oneof(
    fc.record({
      _tag: fc.constant("params" as const),
      params: fc.uniqueArray(param, { maxLength: 5, selector: (p) => p.name.toLowerCase() })
    }),
    fc.record({
      _tag: fc.constant("token68" as const),
      token68: fc.tuple(
        fc.stringOf(fc.constantFrom(...T68CHARS), { minLength: 1, maxLength: 20 }),
        fc.constantFrom("", "=", "==")
      ).map(([a, b]) => a + b)
    })
  )
})

const quote = (v: string) => "\"" + v.replace(/[\\"]/g, (c) => "\\" + c) + "\""

const serialize = (challenges: ReadonlyArray<Model>, sep: string): string =>
  challenges.map((c) => {
    if (c.body._tag === "token68") return `${c.scheme} ${c.body.token68}`
    if (c.body.params.length === 0) return c.scheme
    const params = c.body.params.map((p) =>
      `${p.name}${p.before}=${p.after}${p.quote || !isToken(p.value) ? quote(p.value) : p.value}`
    )
    return `${c.scheme} ${params.join("," + sep)}`
  }).join("," + sep)

const expected = (challenges: ReadonlyArray<Model>): ReadonlyArray<Challenge> =>
  challenges.map((c) =>
    c.body._tag === "token68"
      ? { scheme: c.scheme, params: {}, token68: c.body.token68 }
      : { scheme: c.scheme, params: Object.fromEntries(c.body.params.map((p) => [p.name.toLowerCase(), p.value])) }
  )

describe("parseWwwAuthenticate", () => {
  it("round-trips arbitrary challenge lists (quoting, escapes, commas, '=', token68, OWS)", () => {
    fc.assert(
      fc.property(fc.array(challenge, { maxLength: 5 }), ows, (challenges, sep) => {
        expect(parseWwwAuthenticate(serialize(challenges, sep))).toEqual(expected(challenges))
      }),
      { numRuns: 2000 }
    )
  })

  it("never throws on arbitrary strings, and always returns challenges with a non-empty token scheme", () => {
    const headerish = fc.stringOf(
      fc.constantFrom("Bearer", "Basic", " ", ",", "=", "\"", "\\", "a", "b", "realm", "\t", "==", "x/y"),
      { maxLength: 40 }
    )
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 80 }), headerish), (s) => {
        const parsed = parseWwwAuthenticate(s)
        for (const c of parsed) {
          expect(isToken(c.scheme)).toBe(true)
          for (const [k, v] of Object.entries(c.params)) {
            expect(typeof k).toBe("string")
            expect(typeof v).toBe("string")
          }
        }
        bearerChallenge(s)
      }),
      { numRuns: 3000 }
    )
  })

  it("parses the MCP conformance server's 401", () => {
    const header =
      `Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp"`
    expect(parseWwwAuthenticate(header)).toEqual([{
      scheme: "Bearer",
      params: {
        error: "invalid_token",
        error_description: "Missing Authorization header",
        resource_metadata: "http://localhost:3001/.well-known/oauth-protected-resource/mcp"
      }
    }])
    expect(bearerChallenge(header)).toEqual(Option.some({
      error: "invalid_token",
      errorDescription: "Missing Authorization header",
      resourceMetadata: "http://localhost:3001/.well-known/oauth-protected-resource/mcp"
    }))
  })

  it("parses the MCP conformance server's 403 insufficient_scope and splits scope", () => {
    const header =
      `Bearer error="insufficient_scope", scope="mcp:basic mcp:write", resource_metadata="http://localhost:3001/.well-known/oauth-protected-resource/mcp"`
    expect(bearerChallenge(header)).toEqual(Option.some({
      error: "insufficient_scope",
      scope: ["mcp:basic", "mcp:write"],
      resourceMetadata: "http://localhost:3001/.well-known/oauth-protected-resource/mcp"
    }))
  })

  it("several challenges in one header; the Bearer one is found wherever it is", () => {
    const header = `Basic realm="x, y=z", Bearer error="invalid_token", resource_metadata="http://127.0.0.1:8080/prm"`
    expect(parseWwwAuthenticate(header)).toEqual([
      { scheme: "Basic", params: { realm: "x, y=z" } },
      { scheme: "Bearer", params: { error: "invalid_token", resource_metadata: "http://127.0.0.1:8080/prm" } }
    ])
    expect(Option.map(bearerChallenge(header), (b) => b.resourceMetadata)).toEqual(
      Option.some("http://127.0.0.1:8080/prm")
    )
  })

  it("RFC 9110 §11.6.1 example: Newauth with an escaped quote, then Basic", () => {
    expect(parseWwwAuthenticate(`Newauth realm="apps", type=1,\n title="Login to \\"apps\\"", Basic realm="simple"`))
      .toEqual([
        { scheme: "Newauth", params: { realm: "apps", type: "1", title: "Login to \"apps\"" } },
        { scheme: "Basic", params: { realm: "simple" } }
      ])
  })

  it("case-insensitive scheme and parameter names, whitespace around '='", () => {
    const parsed = parseWwwAuthenticate(`bEaReR  ERROR = "invalid_token" ,  Scope=read`)
    expect(parsed).toEqual([{ scheme: "bEaReR", params: { error: "invalid_token", scope: "read" } }])
    expect(Option.isSome(findChallenge(parsed, "BEARER"))).toBe(true)
    expect(bearerChallenge(`BEARER Error="x"`)).toEqual(Option.some({ error: "x" }))
  })

  it("token68 challenges, alone and mixed with auth-param challenges", () => {
    expect(parseWwwAuthenticate(`Negotiate YIIB+g==, Bearer realm="r"`)).toEqual([
      { scheme: "Negotiate", params: {}, token68: "YIIB+g==" },
      { scheme: "Bearer", params: { realm: "r" } }
    ])
    expect(parseWwwAuthenticate("Basic")).toEqual([{ scheme: "Basic", params: {} }])
  })

  it("unquoted URLs (a common server bug) are still read", () => {
    expect(bearerChallenge(`Bearer resource_metadata=http://127.0.0.1:9/.well-known/x, error=invalid_token`))
      .toEqual(Option.some({ resourceMetadata: "http://127.0.0.1:9/.well-known/x", error: "invalid_token" }))
  })

  it("garbage: returns what it could parse", () => {
    expect(parseWwwAuthenticate("")).toEqual([])
    expect(parseWwwAuthenticate(" , ,, ")).toEqual([])
    expect(parseWwwAuthenticate(`Bearer error="unterminated`)).toEqual([
      { scheme: "Bearer", params: { error: "unterminated" } }
    ])
    expect(parseWwwAuthenticate(`"junk", Bearer foo bar, Basic realm="ok"`)).toEqual([
      { scheme: "Bearer", params: {} },
      { scheme: "Basic", params: { realm: "ok" } }
    ])
    expect(parseWwwAuthenticate(`Bearer a="1" trailing, b="2"`)).toEqual([
      { scheme: "Bearer", params: { a: "1", b: "2" } }
    ])
    // a parameter that occurs twice keeps its first value
    expect(parseWwwAuthenticate(`Bearer error="a", ERROR="b"`)).toEqual([{ scheme: "Bearer", params: { error: "a" } }])
  })

  it("parameter names like __proto__ are plain data", () => {
    const [c] = parseWwwAuthenticate(`Bearer __proto__="x", constructor="y"`)
    expect(c?.params["__proto__"]).toBe("x")
    expect(Object.keys(c?.params ?? {})).toEqual(["__proto__", "constructor"])
    expect(bearerChallenge(`Bearer constructor="y"`)).toEqual(Option.some({}))
  })

  it("bearerChallenge: None when the header is absent or has no Bearer challenge", () => {
    expect(bearerChallenge(undefined)).toEqual(Option.none())
    expect(bearerChallenge(`Basic realm="x"`)).toEqual(Option.none())
    expect(bearerChallenge(`Bearer`)).toEqual(Option.some({}))
    expect(bearerChallenge(`Bearer scope="  a   b "`)).toEqual(Option.some({ scope: ["a", "b"] }))
  })
})
