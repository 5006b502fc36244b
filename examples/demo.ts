/**
 * `npm run demo`: the whole MCP OAuth flow on this machine, with one command.
 *
 * 1. Starts an OAuth 2.1 authorization server (src/server/OAuthProvider) and an MCP server with
 *    three tools (add, whoami, time) protected by the bearer middleware, each on its own
 *    127.0.0.1 port.
 * 2. Connects McpClient through OAuthLayer with token storage in a temporary directory: the
 *    client is refused (401), discovers the authorization server, registers itself, signs in,
 *    gets a token and calls the tools. Every HTTP request is printed as it goes out.
 * 3. Connects again with a brand-new OAuthLayer over the same token files: no sign-in.
 * 4. Makes the stored access token look expired and connects again: the token is refreshed.
 *
 *   npm run demo                # signs in headlessly (the server auto-approves): CI, SSH
 *   npm run demo -- --browser   # signs in with your browser and the consent page
 *
 * Everything is stopped and the temporary directory removed at the end. Exit status 0 = success.
 */
import { HttpClient, HttpServer } from "@effect/platform"
import type { HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Cause, Clock, Console, Effect, Layer, Option, Ref, Schema } from "effect"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Authorizer, OAuthLayer, Schemas, TokenStorage } from "../src/index.js"
import { McpClient } from "../src/mcp/index.js"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore,
  RemoteAuthProvider,
  TokenVerifier
} from "../src/server/index.js"

const useBrowser = process.argv.includes("--browser")
const SCOPE = "tools"
const USER = "demo-user"

// -----------------------------------------------------------------------------------------------
// Output
// -----------------------------------------------------------------------------------------------

const color = process.stdout.isTTY && process.env["NO_COLOR"] === undefined
const paint = (code: string) => (text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text
const bold = paint("1")
const dim = paint("2")
const green = paint("32")
const yellow = paint("33")

const say = (line = "") => Console.log(line)
const heading = (n: number, title: string) => say(`\n${bold(`${n}. ${title}`)}`)
const detail = (line: string) => say(`   ${line}`)

// -----------------------------------------------------------------------------------------------
// The servers
// -----------------------------------------------------------------------------------------------

/** The three tools of the demo MCP server. `whoami` reads the verified token of the request. */
const tools = [
  McpEndpoint.tool({
    name: "add",
    description: "Adds two numbers",
    parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    handler: ({ a, b }) => Effect.succeed(String(a + b))
  }),
  McpEndpoint.tool({
    name: "whoami",
    description: "Who the access token was issued for, and what it allows",
    parameters: Schema.Struct({}),
    handler: () =>
      Effect.map(BearerAuth.AuthenticatedToken, (token) => ({
        subject: token.subject,
        clientId: token.clientId,
        scopes: token.scopes
      }))
  }),
  McpEndpoint.tool({
    name: "time",
    description: "The server's current time (ISO 8601)",
    parameters: Schema.Struct({}),
    handler: () => Effect.map(Clock.currentTimeMillis, (now) => new Date(now).toISOString())
  })
]

const listen = NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })

/** The authorization server: the embedded OAuthProvider on its own port. */
const startAuthorizationServer = Effect.gen(function*() {
  const server = yield* listen
  const provider = yield* OAuthProvider.make({
    issuer: HttpServer.formatAddress(server.address),
    scopesSupported: [SCOPE],
    consent: useBrowser ? Consent.page(USER) : Consent.autoApprove(USER)
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  yield* server.serve(provider.router)
  return provider
})

/**
 * The MCP server: a resource server that trusts the authorization server above. It serves RFC
 * 9728 metadata naming that server, and checks every token (here by asking the provider in the
 * same process; against a real authorization server, `JwtTokenVerifier` and its JWKS).
 */
const startMcpServer = (provider: OAuthProvider.OAuthProvider) =>
  Effect.gen(function*() {
    const server = yield* listen
    const auth = RemoteAuthProvider.make(
      {
        baseUrl: HttpServer.formatAddress(server.address),
        authorizationServers: [provider.issuer],
        scopesSupported: [SCOPE],
        requiredScopes: [SCOPE],
        resourceName: "effect-mcp-oauth demo"
      },
      TokenVerifier.make(provider.verifyAccessToken)
    )
    const endpoint = McpEndpoint.make({ name: "demo-mcp-server", version: "0.1.0", tools })
    yield* server.serve(AuthProvider.protect(auth, "/mcp", endpoint))
    return auth.resourceUrl("/mcp")
  })

// -----------------------------------------------------------------------------------------------
// Watching the client: a logging HttpClient under OAuthLayer
// -----------------------------------------------------------------------------------------------

interface Counts {
  readonly registrations: number
  readonly signIns: number
  readonly refreshes: number
}

const bodyText = (request: HttpClientRequest.HttpClientRequest): string =>
  request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""

const describeRequest = (request: HttpClientRequest.HttpClientRequest, mcpUrl: string): string | undefined => {
  const url = new URL(request.url)
  const where = `${request.method} ${url.origin}${url.pathname}`
  if (url.pathname.startsWith("/.well-known/oauth-protected-resource")) return `→ discovery     ${where}`
  if (url.pathname.startsWith("/.well-known/")) return `→ discovery     ${where}`
  if (url.pathname === "/register") return `→ registration  ${where}`
  if (url.pathname === "/authorize") return `→ sign-in       ${where}?client_id=…&code_challenge=…&resource=…`
  if (url.pathname === "/token") {
    const grant = new URLSearchParams(bodyText(request)).get("grant_type") ?? "?"
    return `→ token         ${where}  (grant_type=${grant})`
  }
  if (request.url.startsWith(mcpUrl) && request.method === "POST") {
    let method = "?"
    try {
      const parsed: unknown = JSON.parse(bodyText(request))
      if (typeof parsed === "object" && parsed !== null && "method" in parsed) method = String(parsed.method)
    } catch {
      // not JSON: keep "?"
    }
    const auth = request.headers["authorization"] === undefined ? "no token" : "Bearer token"
    return `→ mcp           ${where}  ${method}  ${dim(`(${auth})`)}`
  }
  return undefined
}

const describeResponse = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const path = new URL(response.request.url).pathname
  const challenge = response.headers["www-authenticate"]
  if (response.status === 401 || response.status === 403) {
    return yellow(`← ${response.status}           ${challenge === undefined ? "" : `WWW-Authenticate: ${challenge}`}`)
  }
  if (path === "/authorize" && response.status >= 300 && response.status < 400) {
    const location = new URL(response.headers["location"] ?? "", response.request.url)
    return `← ${response.status}           redirect to ${location.origin}${location.pathname}?code=…&state=…&iss=…`
  }
  if (path === "/register" || path === "/token") return `← ${response.status}`
  return undefined
}

/**
 * Wraps the HttpClient OAuthLayer is given. It sees requests as they go on the wire (after
 * OAuthLayer has put the Bearer token on them), so it observes without changing anything.
 */
const watchingClient = (counts: Ref.Ref<Counts>, mcpUrl: string) =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) =>
      HttpClient.transform(client, (response, request) =>
        Effect.gen(function*() {
          const line = describeRequest(request, mcpUrl)
          if (line !== undefined) yield* detail(line)
          const path = new URL(request.url).pathname
          if (path === "/register") yield* Ref.update(counts, (c) => ({ ...c, registrations: c.registrations + 1 }))
          if (path === "/token") {
            const grant = new URLSearchParams(bodyText(request)).get("grant_type")
            if (grant === "authorization_code") yield* Ref.update(counts, (c) => ({ ...c, signIns: c.signIns + 1 }))
            if (grant === "refresh_token") yield* Ref.update(counts, (c) => ({ ...c, refreshes: c.refreshes + 1 }))
          }
          const answer = yield* response
          const described = describeResponse(answer)
          if (described !== undefined) yield* detail(described)
          return answer
        })
      ))
  ).pipe(Layer.provide(NodeHttpClient.layerUndici))

// -----------------------------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------------------------

const textOf = (result: { readonly content: ReadonlyArray<unknown> }): string =>
  result.content.map((c) =>
    typeof c === "object" && c !== null && "text" in c && typeof c.text === "string" ? c.text : ""
  ).join("")

/** One connection: a NEW OAuthLayer every time, over the token files in `dir`. */
const connect = (mcpUrl: string, dir: string, counts: Ref.Ref<Counts>) =>
  Effect.gen(function*() {
    const client = yield* McpClient.connect(new URL(mcpUrl), {
      auth: "oauth",
      clientInfo: { name: "effect-mcp-oauth-demo", version: "0.1.0" },
      standaloneStream: false
    })
    yield* detail(green(`connected to ${client.serverInfo.name} ${client.serverInfo.version}`))
    const listed = yield* client.listTools()
    yield* detail(`tools: ${listed.map((t) => t.name).join(", ")}`)
    const sum = yield* client.callTool("add", { a: 2, b: 3 })
    yield* detail(`add(2, 3) = ${textOf(sum)}`)
    const me = yield* client.callTool("whoami")
    yield* detail(`whoami = ${textOf(me)}`)
  }).pipe(
    Effect.scoped,
    Effect.provide(
      OAuthLayer({ mcpUrl, scopes: [SCOPE], clientName: "effect-mcp-oauth demo" }).pipe(
        Layer.provide(
          useBrowser ? Authorizer.layerBrowser({ timeout: "5 minutes" }) : Authorizer.layerHeadless()
        ),
        Layer.provide(TokenStorage.layerFileSystemNode(dir)),
        Layer.provide(watchingClient(counts, mcpUrl))
      )
    )
  )

/** Reads the stored token of the server (no secrets printed). */
const storedToken = (dir: string, mcpUrl: string) =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    return yield* storage.getTokens(TokenStorage.serverKey(mcpUrl))
  }).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))

const describeToken = (token: Option.Option<Schemas.StoredToken>, now: number): string =>
  Option.match(token, {
    onNone: () => "no token stored",
    onSome: (t) =>
      `access token stored: expires in ${t.expiresIn(now) ?? "?"} s, scopes "${t.scopes.join(" ")}", ` +
      `refresh token ${t.refreshToken === undefined ? "absent" : "stored"}`
  })

/** Rewrites the stored token's expiry into the past, as if an hour had gone by. */
const expireStoredToken = (dir: string, mcpUrl: string) =>
  Effect.gen(function*() {
    const storage = yield* TokenStorage.TokenStorage
    const key = TokenStorage.serverKey(mcpUrl)
    const token = yield* storage.getTokens(key)
    if (Option.isNone(token)) return yield* Effect.fail(new Error("no stored token to expire"))
    const now = yield* Clock.currentTimeMillis
    yield* storage.setTokens(key, new Schemas.StoredToken({ ...token.value, expiresAt: now - 1000 }))
  }).pipe(Effect.provide(TokenStorage.layerFileSystemNode(dir)))

const expect = (ok: boolean, what: string) => ok ? Effect.void : Effect.fail(new Error(what))

const program = Effect.gen(function*() {
  yield* say(bold("effect-mcp-oauth demo: an MCP client signs in to an OAuth-protected MCP server"))
  yield* say(dim("Everything runs on this machine (127.0.0.1); nothing is sent anywhere else."))

  yield* heading(1, "Starting the servers")
  const provider = yield* startAuthorizationServer
  const mcpUrl = yield* startMcpServer(provider)
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "effect-mcp-oauth-demo-"))),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )
  yield* detail(`authorization server  ${provider.issuer}`)
  yield* detail(`MCP server            ${mcpUrl}  (tools: add, whoami, time; needs scope "${SCOPE}")`)
  yield* detail(`token storage         ${dir}`)
  yield* detail(
    useBrowser ?
      "sign-in               your browser, on the authorization server's consent page" :
      `sign-in               headless: the authorization server approves "${USER}" without a page`
  )

  const counts = yield* Ref.make<Counts>({ registrations: 0, signIns: 0, refreshes: 0 })
  const now = Clock.currentTimeMillis

  yield* heading(2, "First connection: no token yet, so the client signs in")
  if (useBrowser) yield* detail(yellow("Your browser will open at the consent page: click Approve."))
  yield* connect(mcpUrl, dir, counts)
  yield* detail(describeToken(yield* storedToken(dir, mcpUrl), yield* now))
  yield* detail(dim(`token files: ${(yield* Effect.promise(() => readdir(dir))).join(", ")}`))
  const first = yield* Ref.get(counts)
  yield* expect(first.registrations === 1 && first.signIns === 1, "the first connection should sign in once")

  yield* heading(3, "Second connection, with a new OAuthLayer over the same token files")
  yield* connect(mcpUrl, dir, counts)
  const second = yield* Ref.get(counts)
  yield* expect(second.signIns === 1 && second.registrations === 1, "the second connection should not sign in")
  yield* detail(green("the stored token was reused: no discovery, no registration, no sign-in"))

  yield* heading(4, "The access token expires: the client refreshes it")
  yield* expireStoredToken(dir, mcpUrl)
  yield* detail(`made the stored access token expire (${describeToken(yield* storedToken(dir, mcpUrl), yield* now)})`)
  yield* connect(mcpUrl, dir, counts)
  const third = yield* Ref.get(counts)
  yield* expect(third.refreshes === 1 && third.signIns === 1, "the third connection should refresh, not sign in")
  yield* detail(describeToken(yield* storedToken(dir, mcpUrl), yield* now))
  yield* detail(green("refreshed with the refresh token: still no sign-in"))

  yield* heading(5, "Done")
  yield* detail(
    `${third.registrations} registration, ${third.signIns} sign-in, ${third.refreshes} refresh, 3 connections.`
  )
  yield* detail("Stopping the servers and removing the token directory.")
}).pipe(Effect.scoped, Effect.timeout(useBrowser ? "6 minutes" : "60 seconds"))

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

program.pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause) ? Effect.void : Console.error(`\nThe demo failed: ${messageOf(cause)}`)
  ),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
