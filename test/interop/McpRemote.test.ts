/**
 * `mcp-remote` (a third-party stdio ↔ Streamable HTTP proxy with its own OAuth client) as a client
 * of the embedded authorization server and MCP endpoint, driven over stdio by the official SDK's
 * `StdioClientTransport`. Its browser step: mcp-remote opens the authorization URL with the `open`
 * package, whose bundled `xdg-open` runs `$BROWSER` when there is no desktop; `BROWSER` here is a
 * small script that GETs the URL (consent is auto-approved), reads the code redirect and GETs
 * mcp-remote's loopback callback with it — what a browser does. Its configuration (client
 * registration, tokens) lives in a temporary `MCP_REMOTE_CONFIG_DIR`.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import * as Fs from "node:fs"
import { createServer } from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AuthProvider from "../../src/server/AuthProvider.js"
import * as BearerAuth from "../../src/server/BearerAuth.js"
import * as Consent from "../../src/server/Consent.js"
import * as McpEndpoint from "../../src/server/McpEndpoint.js"
import * as OAuthProvider from "../../src/server/OAuthProvider.js"
import * as OAuthProviderStore from "../../src/server/OAuthProviderStore.js"

const MCP_REMOTE = Path.resolve(__dirname, "../../node_modules/mcp-remote/dist/proxy.js")

const endpoint = McpEndpoint.make({
  name: "mcp-remote-interop",
  version: "1.0.0",
  tools: [
    McpEndpoint.tool({
      name: "whoami",
      parameters: Schema.Struct({}),
      handler: () =>
        Effect.map(BearerAuth.AuthenticatedToken, (t) => ({ subject: t.subject, client: t.clientId, resource: t.resource }))
    })
  ]
})

const startServer = Effect.gen(function*() {
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const base = HttpServer.formatAddress(server.address)
  const provider = yield* OAuthProvider.make({ issuer: base, consent: Consent.autoApprove("remote-user") }).pipe(
    Effect.provide(OAuthProviderStore.layerMemory)
  )
  const auth = AuthProvider.fromOAuthProvider(provider)
  yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  return { provider, mcpUrl: auth.resourceUrl("/mcp") }
}).pipe(Effect.orDie)

/** A temporary directory with the config dir and the `BROWSER` script, removed with the scope. */
const workspace = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "mcp-remote-"))
    const log = Path.join(dir, "browser.log")
    const browser = Path.join(dir, "browser.cjs")
    Fs.writeFileSync(
      browser,
      `#!${process.execPath}
const fs = require("node:fs")
const url = process.argv[2]
fs.appendFileSync(${JSON.stringify(log)}, url + "\\n")
;(async () => {
  const authorization = await fetch(url, { redirect: "manual" })
  const callback = authorization.headers.get("location")
  if (callback === null) throw new Error("authorization answered " + authorization.status)
  await (await fetch(callback)).text()
})().then(() => process.exit(0), (e) => { fs.appendFileSync(${JSON.stringify(log)}, "failed: " + e + "\\n"); process.exit(1) })
`,
      { mode: 0o755 }
    )
    Fs.mkdirSync(Path.join(dir, "config"))
    return { dir, browser, log, config: Path.join(dir, "config") }
  }),
  ({ dir }) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const freePort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
)

/** mcp-remote as a child process behind the SDK's stdio client, closed with the scope. */
const connectMcpRemote = (
  mcpUrl: string,
  ws: { readonly browser: string; readonly config: string },
  callbackPort: number
) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const stderr: Array<string> = []
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [MCP_REMOTE, mcpUrl, String(callbackPort), "--auth-timeout", "20"],
        env: { ...getDefaultEnvironment(), BROWSER: ws.browser, MCP_REMOTE_CONFIG_DIR: ws.config },
        stderr: "pipe"
      })
      transport.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()))
      const client = new Client({ name: "stdio-host", version: "1.0.0" })
      try {
        await client.connect(transport)
      } catch (error) {
        throw new Error(`mcp-remote did not connect: ${String(error)}\n${stderr.join("")}`)
      }
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

const textOf = (result: unknown): string =>
  (result as { content: Array<{ text?: string }> }).content.map((c) => c.text ?? "").join("")

describe("mcp-remote 0.15 against the embedded server (over stdio)", () => {
  it.scopedLive("signs in through the BROWSER step, calls a tool, and reuses its tokens after a restart", () =>
    Effect.gen(function*() {
      const { mcpUrl, provider } = yield* startServer
      const ws = yield* workspace
      const port = yield* freePort

      const first = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* connectMcpRemote(mcpUrl, ws, port)
        expect(client.getServerVersion()).toEqual({ name: "mcp-remote-interop", version: "1.0.0" })
        const tools = yield* Effect.promise(() => client.listTools())
        expect(tools.tools.map((t) => t.name)).toEqual(["whoami"])
        return JSON.parse(textOf(yield* Effect.promise(() => client.callTool({ name: "whoami", arguments: {} })))) as {
          subject: string
          client: string
          resource: string
        }
      }))
      expect(first.subject).toBe("remote-user")
      expect(first.resource).toBe(mcpUrl)
      expect(Option.isSome(yield* provider.store.getClient(first.client))).toBe(true)
      const opened = Fs.readFileSync(ws.log, "utf8").trim().split("\n")
      expect(opened).toHaveLength(1)
      const authorizationUrl = new URL(opened[0]!)
      expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(provider.endpoints.authorization)
      expect(authorizationUrl.searchParams.get("code_challenge_method")).toBe("S256")
      expect(authorizationUrl.searchParams.get("redirect_uri")).toBe(`http://localhost:${port}/oauth/callback`)

      // A second process with the same config dir uses the stored tokens: no browser step.
      const second = yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* connectMcpRemote(mcpUrl, ws, port)
        return JSON.parse(textOf(yield* Effect.promise(() => client.callTool({ name: "whoami", arguments: {} })))) as {
          client: string
        }
      }))
      expect(second.client).toBe(first.client)
      expect(Fs.readFileSync(ws.log, "utf8").trim().split("\n")).toHaveLength(1)
    }))
})
