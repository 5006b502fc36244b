/**
 * An `@effect/ai` MCP server protected by OAuth, built from layers.
 *
 * `AiMcpServer.layerProtocolHttp` is the protocol `McpServer.layer` runs on: the MCP endpoint at
 * /mcp behind the bearer middleware of an AuthProvider (401 with
 * `WWW-Authenticate: Bearer resource_metadata="…"` without a valid token), the RFC 9728 document
 * at /.well-known/oauth-protected-resource/mcp, and here the embedded authorization server's
 * endpoints on the same origin. The tool reads who called it with `AiMcpServer.accessToken`.
 *
 *   PORT=8080 npx tsx examples/ai-mcp-server.ts
 *
 * then connect any MCP client to http://127.0.0.1:8080/mcp (for instance
 * `npx tsx src/cli/main.ts login http://127.0.0.1:8080/mcp`).
 */
import { McpServer, Tool, Toolkit } from "@effect/ai"
import { HttpRouter } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import { AiMcpServer, AuthProvider, Consent, OAuthProvider } from "../src/server/index.js"

const port = Number(process.env["PORT"] ?? "8080")
const baseUrl = `http://127.0.0.1:${port}`

// 1. An @effect/ai toolkit; the handler reads the verified token of the request that called it.
const WhoAmI = Tool.make("whoami", {
  description: "Greets the signed-in user",
  success: Schema.String
})
const Tools = Toolkit.make(WhoAmI)
const ToolsLive = Tools.toLayer({
  whoami: () => Effect.map(AiMcpServer.accessToken, (token) => `Hello, ${token.subject}! (scopes: ${token.scopes.join(" ")})`)
})

// 2. The MCP server on a protected protocol, served by HttpRouter.Default.
const ServerLive = Layer.mergeAll(McpServer.toolkit(Tools), HttpRouter.Default.serve()).pipe(
  Layer.provide(ToolsLive),
  Layer.provide(McpServer.layer({ name: "ai-mcp-server", version: "1.0.0" })),
  Layer.provide(AiMcpServer.layerProtocolHttp({ path: "/mcp" })),
  // 3. Who issues tokens: an embedded authorization server (or RemoteAuthProvider, OAuthProxy).
  Layer.provide(AuthProvider.layerOAuthProvider({ requiredScopes: ["mcp"] })),
  Layer.provide(OAuthProvider.layerMemory({ issuer: baseUrl, scopesSupported: ["mcp"], consent: Consent.page("local-user") })),
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

NodeRuntime.runMain(Layer.launch(ServerLive))
