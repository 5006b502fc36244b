import { describe, expect, it } from "@effect/vitest"
import { checkServerUrl, expandEnv, parseHeaders } from "../../src/cli/Proxy.js"

describe("proxy options", () => {
  it("--header \"Name: value\" is split at the first colon, ${ENV} expanded (unset → empty), names lower-cased", () => {
    expect(parseHeaders(["Authorization: Bearer ${TOKEN}", "X-Trace: a:b", "X-Empty: ${NOPE}"], { TOKEN: "t0k" }))
      .toEqual({ headers: { authorization: "Bearer t0k", "x-trace": "a:b", "x-empty": "" } })
    expect(parseHeaders(["no colon here"])).toEqual({ malformed: "no colon here" })
    expect(parseHeaders([": value"])).toEqual({ malformed: ": value" })
    expect(parseHeaders(["Bad Name: v"])).toEqual({ malformed: "Bad Name: v" })
    expect(expandEnv("${A}-${B}-$C", { A: "1", B: "2", C: "3" })).toBe("1-2-$C")
  })

  it("https is accepted; plain http only on loopback and only with --allow-http", () => {
    expect(checkServerUrl("https://api.example.com/mcp", false)).toBeUndefined()
    expect(checkServerUrl("http://127.0.0.1:8080/mcp", true)).toBeUndefined()
    expect(checkServerUrl("http://localhost:8080/mcp", true)).toBeUndefined()
    expect(checkServerUrl("http://[::1]:8080/mcp", true)).toBeUndefined()
    expect(checkServerUrl("http://127.0.0.1:8080/mcp", false)).toContain("--allow-http")
    expect(checkServerUrl("http://api.example.com/mcp", true)).toContain("non-loopback")
    expect(checkServerUrl("ftp://example.com", true)).toContain("Not an http(s) URL")
    expect(checkServerUrl("not a url", true)).toContain("Not a URL")
  })
})
