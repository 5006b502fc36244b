/**
 * Proxy benchmarks (JSON lines, see run.ts), on loopback against test/fixtures/ProtectedMcpServer:
 *
 * - proxy_overhead_ratio: median latency of a tool call through `effect-mcp-oauth proxy` (an SDK
 *   stdio host) ÷ the same SDK client over Streamable HTTP directly (with `makeOAuthFetch` on the
 *   same credentials), one run.
 * - proxy_sign_ins: authorization requests (and registrations) when 4 proxy processes start at
 *   once with no stored credentials (goal 1).
 * - proxy_herd_refreshes: refresh-token grants when those 4 proxies make 25 concurrent calls each
 *   with an expired token (goal 1; every call must succeed).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Duration, Effect } from "effect"
import * as NodePath from "node:path"
import { makeOAuthFetch } from "../../src/fetch/index.js"
import { startProtectedMcpServer } from "../fixtures/ProtectedMcpServer.js"
import { host, ROOT, tempDir, textOf, useCli } from "../proxy/stdioHost.js"
import { median } from "./stats.js"

const timedCalls = (client: Client, n: number) =>
  Effect.promise(async () => {
    const times: Array<number> = []
    for (let i = 0; i < n + 5; i++) {
      const start = performance.now()
      const result = await client.callTool({ name: "add", arguments: { a: i, b: 1 } })
      if (textOf(result) !== String(i + 1)) throw new Error(`wrong answer ${textOf(result)}`)
      if (i >= 5) times.push(performance.now() - start) // the first 5 warm up
    }
    return median(times)
  })

const overhead = Effect.gen(function*() {
  const server = yield* startProtectedMcpServer()
  const dir = yield* tempDir
  const { client: proxied } = yield* host(server.mcpUrl, dir)
  const direct = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const oauth = makeOAuthFetch({ mcpUrl: server.mcpUrl, dir, signIn: "headless" })
      const client = new Client({ name: "direct", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(server.mcpUrl), { fetch: oauth.fetch }))
      return { client, oauth }
    }),
    ({ client, oauth }) => Effect.promise(async () => {
      await client.close()
      await oauth.close()
    })
  )
  const viaProxy = yield* timedCalls(proxied, 100)
  const viaHttp = yield* timedCalls(direct.client, 100)
  return {
    bench: "proxy_overhead_ratio",
    value: Math.round((viaProxy / viaHttp) * 100) / 100,
    proxy_median_ms: Math.round(viaProxy * 100) / 100,
    direct_median_ms: Math.round(viaHttp * 100) / 100,
    calls: 100
  }
}).pipe(Effect.scoped)

const fourProcesses = Effect.gen(function*() {
  const server = yield* startProtectedMcpServer({ accessTokenTtl: Duration.seconds(2) })
  const dir = yield* tempDir
  const hosts = yield* Effect.all(Array.from({ length: 4 }, () => host(server.mcpUrl, dir)), { concurrency: "unbounded" })
  const cold = yield* server.counts
  // Let every proxy settle (its standalone GET stream opens after the handshake) before
  // tokens last long: a refresh after the switch would leave the herd nothing to refresh.
  yield* Effect.promise(() => Promise.all(hosts.map(({ client }) => client.listTools())))
  yield* Effect.sleep("1 second")
  yield* server.setAccessTokenTtl(Duration.hours(1))
  yield* Effect.sleep("2500 millis")
  yield* server.resetCounts
  const results = yield* Effect.promise(() =>
    Promise.allSettled(
      hosts.flatMap(({ client }) =>
        Array.from({ length: 25 }, (_, i) => client.callTool({ name: "add", arguments: { a: i, b: 0 } }))
      )
    )
  )
  const herd = yield* server.counts
  return [
    { bench: "proxy_sign_ins", value: cold.authorize, goal: 1, registrations: cold.register, processes: 4 },
    {
      bench: "proxy_herd_refreshes",
      value: herd.tokenRefresh,
      goal: 1,
      processes: 4,
      calls: results.length,
      succeeded: results.filter((r) => r.status === "fulfilled").length
    }
  ]
}).pipe(Effect.scoped)

/** The proxy benchmark lines, measured on the shipped bin (`dist/`, built by `npm run bench`). */
export const benchProxy = (): Promise<Array<object>> =>
  Effect.runPromise(Effect.gen(function*() {
    useCli(NodePath.join(ROOT, "dist", "cli", "effect-mcp-oauth.mjs"))
    const ratio = yield* overhead
    const processes = yield* fourProcesses
    return [ratio, ...processes]
  }))
