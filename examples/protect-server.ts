/**
 * Protecting your own MCP server: the smallest complete program.
 *
 * Your MCP endpoint (here McpEndpoint with one tool) is served behind the bearer middleware of a
 * RemoteAuthProvider: requests without a valid token get 401 with
 * `WWW-Authenticate: Bearer resource_metadata="…"`, and the RFC 9728 document at
 * /.well-known/oauth-protected-resource/mcp tells MCP clients which authorization server to sign
 * in with. Tokens are JWTs from that server, checked against its JWKS.
 *
 *   ISSUER=https://auth.example.com JWKS_URL=https://auth.example.com/.well-known/jwks.json \
 *   PORT=8080 npx tsx examples/protect-server.ts
 *
 * Without ISSUER, it embeds its own authorization server (OAuthProvider) on the same port, so
 * you can try it with any MCP client at http://127.0.0.1:8080/mcp.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  JwtTokenVerifier,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore,
  RemoteAuthProvider
} from "../src/server/index.js"

const port = Number(process.env["PORT"] ?? "8080")
const baseUrl = process.env["BASE_URL"] ?? `http://127.0.0.1:${port}`
const issuer = process.env["ISSUER"]

// 1. Your MCP server: tools that may read the verified token.
const mcp = McpEndpoint.make({
  name: "my-server",
  tools: [
    McpEndpoint.tool({
      name: "greet",
      description: "Greets the signed-in user",
      parameters: Schema.Struct({ greeting: Schema.optional(Schema.String) }),
      handler: ({ greeting }) =>
        Effect.map(BearerAuth.AuthenticatedToken, (token) => `${greeting ?? "Hello"}, ${token.subject}!`)
    })
  ]
})

// 2. Who issues tokens: a trusted external authorization server, or an embedded one.
const authProvider: Effect.Effect<AuthProvider.AuthProvider> = issuer !== undefined
  ? Effect.succeed(RemoteAuthProvider.make(
    { baseUrl, authorizationServers: [issuer], scopesSupported: ["mcp"], requiredScopes: ["mcp"] },
    JwtTokenVerifier.make({
      jwksUrl: process.env["JWKS_URL"] ?? `${issuer}/.well-known/jwks.json`,
      issuer,
      audience: `${baseUrl}/mcp`
    })
  ))
  : OAuthProvider.make({ issuer: baseUrl, scopesSupported: ["mcp"], consent: Consent.page("local-user") }).pipe(
    Effect.map((provider) => AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["mcp"] })),
    Effect.provide(OAuthProviderStore.layerMemory)
  )

// 3. Serve the MCP endpoint behind the provider's middleware, with its discovery routes.
const ServerLive = Layer.unwrapEffect(
  Effect.map(authProvider, (auth) =>
    HttpServer.serve(AuthProvider.protect(auth, "/mcp", mcp)).pipe(
      Layer.tap(() => Console.log(`MCP server at ${auth.resourceUrl("/mcp")} (authorization: ${issuer ?? baseUrl})`))
    ))
).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })))

NodeRuntime.runMain(Layer.launch(ServerLive))
