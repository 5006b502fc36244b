/**
 * The files of the consumer project that test/package/pack.test.ts writes into a temporary
 * directory outside the repository: a program written the way a user of the installed package
 * writes it (imports by package name, nothing from this repository), and the tsconfig files it is
 * type-checked with. Kept as text so the repository's own type-check does not resolve
 * "effect-mcp-oauth" before `dist/` exists.
 */

/**
 * Starts the package's own authorization server and the MCP server it protects on 127.0.0.1 (port 0),
 * then signs in with `McpClient` (headless: the server approves without a page) and calls a tool
 * that reads the verified token. Prints one JSON line with what it saw.
 */
export const program = `import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import { Authorizer, OAuthLayer, TokenStorage } from "effect-mcp-oauth"
import { McpClient } from "effect-mcp-oauth/mcp"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore
} from "effect-mcp-oauth/server"

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

const whoami = McpEndpoint.tool({
  name: "whoami",
  description: "The subject of the access token",
  parameters: Schema.Struct({}),
  handler: () => Effect.map(BearerAuth.AuthenticatedToken, (token) => token.subject)
})

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): string =>
  result.content.map((c) =>
    typeof c === "object" && c !== null && "text" in c && typeof c.text === "string" ? c.text : ""
  ).join("")

const program = Effect.gen(function*() {
  // One origin serves the authorization server and the MCP endpoint it protects.
  const server = yield* listen
  const provider = yield* OAuthProvider.make({
    issuer: HttpServer.formatAddress(server.address),
    scopesSupported: ["tools"],
    consent: Consent.autoApprove("consumer-user")
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  const auth = AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["tools"] })
  const endpoint = McpEndpoint.make({ name: "consumer-test", version: "1.0.0", tools: [whoami] })
  yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
  const mcpUrl = auth.resourceUrl("/mcp")

  const result = yield* Effect.gen(function*() {
    const client = yield* McpClient.connect(new URL(mcpUrl), {
      auth: "oauth",
      clientInfo: { name: "consumer", version: "1.0.0" },
      standaloneStream: false
    })
    const tools = yield* client.listTools()
    const me = yield* client.callTool("whoami")
    return { server: client.serverInfo.name, tools: tools.map((t) => t.name), whoami: textOf(me) }
  }).pipe(
    Effect.scoped,
    Effect.provide(
      OAuthLayer({ mcpUrl, scopes: ["tools"] }).pipe(
        Layer.provide(Authorizer.layerHeadless()),
        Layer.provide(TokenStorage.layerMemory),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )
  console.log(JSON.stringify(result))
}).pipe(Effect.scoped, Effect.timeout("30 seconds"))

Effect.runPromise(program).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
`

/**
 * A strict consumer: every declaration file of the package and its peers is checked. The peers'
 * own declarations need the DOM lib (`Storage`, `Transferable`) and `@types/ws`, as in any app
 * that checks @effect/platform's types.
 */
const strict = {
  target: "ES2022",
  lib: ["ES2022", "DOM", "DOM.Iterable"],
  types: ["node"],
  strict: true,
  exactOptionalPropertyTypes: true,
  skipLibCheck: false,
  noEmit: true
}

/** Node's own ESM resolution: what `tsc` sees for an app run by `node`; emits out/main.js to run. */
export const tsconfigNodeNext = {
  compilerOptions: { ...strict, module: "NodeNext", moduleResolution: "NodeNext", noEmit: false, outDir: "out" },
  files: ["main.ts"]
}

/** Bundler resolution: what `tsc` sees for an app built by Vite, esbuild, webpack. */
export const tsconfigBundler = {
  compilerOptions: { ...strict, module: "ESNext", moduleResolution: "Bundler" },
  files: ["main.ts"]
}

/** An ES module project; the `.js` program is what `node` runs after `tsc` emits it. */
export const packageJson = { name: "consumer", version: "1.0.0", private: true, type: "module" }
