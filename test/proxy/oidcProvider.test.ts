/**
 * `effect-mcp-oauth proxy` against an INDEPENDENT authorization server (panva's oidc-provider,
 * test/interop/oidcProvider.ts): the official SDK's stdio host spawns the proxy with `--manual`;
 * the sign-in address the proxy prints is handed to the scripted user agent (`httpUser`), which
 * logs in and consents on oidc-provider's forms as a browser would and lands on the proxy's
 * loopback callback. A second proxy process on the same directory signs in with nothing: no
 * registration, no authorization, no token request at oidc-provider.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { httpUser, startInterop, summarize } from "../interop/oidcProvider.js"
import { host, tempDir, textOf } from "./stdioHost.js"

describe("effect-mcp-oauth proxy (subprocess) against oidc-provider", () => {
  it.scopedLive("signs in through oidc-provider's login and consent forms; tools/list and a call; a second proxy reuses the store with no sign-in", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop()
      const dir = yield* tempDir
      const opened: Array<string> = []
      const user = httpUser(interop.as.issuer)

      const first = yield* Effect.scoped(Effect.gen(function*() {
        const { client } = yield* host(interop.mcp.url, dir, { args: ["--scopes", "mcp:read"], user: (url) => (opened.push(url), user.run(url)) })
        expect(client.getServerVersion()?.name).toBe("oidc-interop")
        const tools = yield* Effect.promise(() => client.listTools())
        expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["whoami", "write"]))
        return JSON.parse(textOf(yield* Effect.promise(() => client.callTool({ name: "whoami", arguments: {} }))))
      }))
      expect(opened).toHaveLength(1)
      expect(first).toMatchObject({ sub: "alice", scopes: ["mcp:read"] })
      const afterFirst = structuredClone(interop.as.counts)
      yield* Effect.logInfo(summarize("proxy: first sign-in", afterFirst, interop.mcp.counts))
      expect(afterFirst.registrations).toBe(1)
      expect(afterFirst.authorizationRequests).toBe(1)
      expect(afterFirst.codesIssued).toBe(1)
      expect(afterFirst.tokenRequests).toEqual({ authorization_code: { ok: 1, error: 0 } })

      // A second proxy process, nothing shared with the first but the directory.
      const secondOpened: Array<string> = []
      const secondUser = httpUser(interop.as.issuer)
      const second = yield* Effect.scoped(Effect.gen(function*() {
        const { client } = yield* host(interop.mcp.url, dir, { args: ["--scopes", "mcp:read"], user: (url) => (secondOpened.push(url), secondUser.run(url)) })
        return JSON.parse(textOf(yield* Effect.promise(() => client.callTool({ name: "whoami", arguments: {} }))))
      }))
      expect(second).toEqual(first)
      expect(secondOpened).toEqual([])
      const { discovery: _d1, ...now } = interop.as.counts
      const { discovery: _d2, ...then } = afterFirst
      expect(now).toEqual(then)
      expect(interop.mcp.counts.status401).toBeGreaterThanOrEqual(1)
    }))
})
