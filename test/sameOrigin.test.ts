import { describe, expect, it } from "@effect/vitest"
import { sameOriginAs } from "../src/internal/sameOrigin.js"

describe("sameOriginAs (the middleware's per-request origin test, without URL parsing in the common case)", () => {
  it("gives the answer new URL(url).origin gives, including the cases a prefix test would get wrong", () => {
    const bases = ["http://127.0.0.1:8080/mcp", "https://api.example.com/mcp", "https://API.example.com:443/a"]
    const urls = [
      "http://127.0.0.1:8080/mcp",
      "http://127.0.0.1:8080",
      "http://127.0.0.1:8080?x=1",
      "http://127.0.0.1:8080#f",
      "http://127.0.0.1:80800/mcp",
      "http://127.0.0.1:8080@evil.example/mcp",
      "http://127.0.0.1:8080.evil.example/mcp",
      "HTTP://127.0.0.1:8080/mcp",
      "https://api.example.com/mcp",
      "https://api.example.com:443/mcp",
      "https://api.example.com.evil/mcp",
      "https://api.example.com@evil/mcp",
      "https://api.example.comx/mcp",
      "http://api.example.com/mcp",
      "not a url",
      ""
    ]
    for (const base of bases) {
      const applies = sameOriginAs(base)
      const origin = new URL(base).origin
      for (const url of urls) {
        const expected = URL.canParse(url) && new URL(url).origin === origin
        expect([base, url, applies(url)]).toEqual([base, url, expected])
      }
    }
  })
})
