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
import { useBundledCli } from "./bundledProxy.js"
import { cliEntry, host, rawProxy, tempDir, textOf } from "./stdioHost.js"

useBundledCli()

/** The sign-in addresses the proxy printed on stderr so far. */
const addressesIn = (stderr: string): Array<string> =>
  [...stderr.matchAll(/open this address[^\n]*:\n\n {2}(\S+)/g)].map((m) => m[1]!)

/** Waits until `check` holds (polling), or fails after `millis`. */
const until = (what: string, check: () => boolean, millis = 20_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + millis
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })

/** The next message, or a failure after `millis`. */
const within = <A>(millis: number, what: string, promise: () => Promise<A>) =>
  Effect.promise(() =>
    Promise.race([
      promise(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${millis} ms`)), millis))
    ])
  )

describe("effect-mcp-oauth proxy (subprocess) against oidc-provider", () => {
  for (const dpop of [false, true]) {
    it.scopedLive(`signs in through oidc-provider's login and consent forms; tools/list and a call; a second proxy reuses the store with no sign-in${dpop ? " (DPoP-bound tokens and refresh token)" : ""}`, () =>
      Effect.gen(function*() {
        const interop = yield* startInterop({ dpop })
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
        // With DPoP, the first token request earns oidc-provider's use_dpop_nonce (RFC 9449 §8).
        expect(afterFirst.tokenRequests).toEqual({ authorization_code: { ok: 1, error: dpop ? 1 : 0 } })

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
        if (dpop) expect(interop.mcp.counts.dpopBound).toBeGreaterThanOrEqual(4)
      }))
  }

  it.scopedLive("a denied sign-in is not retried at once: requests get the failure as a JSON-RPC error until --retry-sign-in-after has passed, then the next one signs in", () =>
    Effect.gen(function*() {
      const interop = yield* startInterop()
      const dir = yield* tempDir
      const proxy = yield* Effect.acquireRelease(
        rawProxy(interop.mcp.url, dir, [
          ...cliEntry(),
          "proxy",
          "--manual",
          "--retry-sign-in-after",
          "3",
          "--scopes",
          "mcp:read",
          "--allow-http",
          "--dir",
          dir,
          interop.mcp.url
        ]),
        (p) => Effect.promise(() => (p.child.stdin.end(), p.exited))
      )
      proxy.send({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } }
      })
      yield* until("the first sign-in address", () => addressesIn(proxy.stderr()).length === 1)
      yield* Effect.promise(() => httpUser(interop.as.issuer, { decision: "deny" }).run(addressesIn(proxy.stderr())[0]!))
      const denied = yield* within(20_000, "answer to initialize", proxy.next)
      expect(denied).toMatchObject({ id: 1, error: { message: expect.stringContaining("Sign-in to the remote MCP server failed") } })
      expect(JSON.stringify(denied)).toContain("a new sign-in starts at the first request after")
      const failedAt = Date.now()

      // At once: the same failure, no second sign-in (no new address, no authorization request).
      proxy.send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
      const again = yield* within(2_000, "answer to tools/list during the back-off", proxy.next)
      expect(again).toMatchObject({ id: 2, error: { message: expect.stringContaining("Sign-in to the remote MCP server failed") } })
      expect(addressesIn(proxy.stderr())).toHaveLength(1)
      expect(interop.as.counts.authorizationRequests).toBe(1)

      // After the back-off: the next request signs in again, and this time the user approves.
      yield* Effect.sleep(Math.max(0, 3_200 - (Date.now() - failedAt)))
      proxy.send({ jsonrpc: "2.0", id: 3, method: "tools/list" })
      yield* until("the second sign-in address", () => addressesIn(proxy.stderr()).length === 2)
      yield* Effect.promise(() => httpUser(interop.as.issuer).run(addressesIn(proxy.stderr())[1]!))
      const listed = yield* within(20_000, "answer to tools/list after the back-off", proxy.next)
      expect(listed).toMatchObject({ id: 3, result: { tools: expect.any(Array) } })
      expect(interop.as.counts.authorizationRequests).toBe(2)
      expect(interop.as.counts.registrations).toBe(1)
    }))
})
