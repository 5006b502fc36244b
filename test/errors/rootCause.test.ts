/**
 * Error messages name the root cause at the top level: a server that is down reads
 * "connect ECONNREFUSED 127.0.0.1:PORT", a TLS failure reads as the TLS error — for the OAuth
 * requests and for the MCP transport alike — not a bare "Transport error".
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer as createHttpServer } from "node:http"
import { createServer as createTcpServer } from "node:net"
import * as Discovery from "../../src/Discovery.js"
import { rootCauseOf } from "../../src/internal/rootCause.js"
import { McpClient } from "../../src/mcp/index.js"

/** A loopback port nothing listens on: bound, then closed. */
const closedPort = Effect.async<number>((resume) => {
  const server = createTcpServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A loopback server that speaks plain HTTP, for a client that expects TLS. */
const plainHttpPort = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly close: () => void }>((resume) => {
    const server = createHttpServer((_req, res) => res.end("plain"))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ port, close: () => server.close() }))
    })
  }),
  (server) => Effect.sync(server.close)
)

const discoveryFailure = (mcpUrl: string) =>
  Effect.flatMap(Discovery.Discovery, (d) => d.discover(mcpUrl)).pipe(
    Effect.flip,
    Effect.provide(Discovery.layer()),
    Effect.provide(NodeHttpClient.layerUndici)
  )

describe("error messages name the root cause", () => {
  it.live("OAuth: a server that is down reads ECONNREFUSED host:port", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* discoveryFailure(`http://127.0.0.1:${port}/mcp`)
      expect(error.message).toContain(`ECONNREFUSED 127.0.0.1:${port}`)
    }))

  it.scopedLive("OAuth: a TLS failure reads as the TLS error", () =>
    Effect.gen(function*() {
      const { port } = yield* plainHttpPort
      const error = yield* discoveryFailure(`https://127.0.0.1:${port}/mcp`)
      expect(error.message).not.toContain("Transport error")
      expect(error.message).toMatch(/SSL|TLS|EPROTO|wrong version|packet length/i)
    }))

  it.scopedLive("MCP: connecting to a server that is down reads ECONNREFUSED host:port", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* McpClient.connect(new URL(`http://127.0.0.1:${port}/mcp`)).pipe(
        Effect.flip,
        Effect.provide(NodeHttpClient.layerUndici)
      )
      expect(error.message).toContain(`ECONNREFUSED 127.0.0.1:${port}`)
    }))

  it("rootCauseOf: the innermost error, every address of an AggregateError, the code when the message lacks it", () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: "ECONNREFUSED" })
    const wrapped = new Error("Transport error (GET http://localhost:9/)", {
      cause: new TypeError("fetch failed", { cause: new AggregateError([refused("::1:9"), refused("127.0.0.1:9")]) })
    })
    expect(rootCauseOf(wrapped)).toBe("connect ECONNREFUSED ::1:9; connect ECONNREFUSED 127.0.0.1:9")
    const tls = new Error("Transport error", {
      cause: Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" })
    })
    expect(rootCauseOf(tls)).toBe("certificate has expired (CERT_HAS_EXPIRED)")
    expect(rootCauseOf(new Error("no cause"))).toBeUndefined()
  })
})
