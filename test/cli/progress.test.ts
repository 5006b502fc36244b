/** The CLI's and the proxy's progress lines (stderr) for each sign-in event. */
import { describe, expect, it } from "@effect/vitest"
import { lineOf } from "../../src/cli/Progress.js"
import * as SignInEvents from "../../src/SignInEvents.js"

const at = { mcpUrl: "https://mcp.example/mcp", issuer: "https://as.example", scopes: ["tools"] }

describe("Progress.lineOf", () => {
  it("a sign-in and a refresh, stored or kept in memory only", () => {
    const line = lineOf("browser")
    expect(line(SignInEvents.SignInEvent.SignedIn(at))).toBe(
      "Signed in to https://mcp.example/mcp at https://as.example, scopes tools"
    )
    expect(line(SignInEvents.SignInEvent.SignedIn({ ...at, storageError: "disk full" }))).toBe(
      "Signed in to https://mcp.example/mcp at https://as.example, scopes tools (not stored: disk full; kept in memory for now)"
    )
    expect(line(SignInEvents.SignInEvent.Refreshed({ ...at, scopes: [], storageError: "read-only" }))).toBe(
      "Access token refreshed for https://mcp.example/mcp at https://as.example (not stored: read-only; kept in memory for now)"
    )
  })
})
