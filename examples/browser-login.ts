/**
 * Browser sign-in, end to end, on this machine only.
 *
 * Starts an embedded OAuth 2.1 authorization server (src/server/OAuthProvider, with its consent
 * page) and a protected endpoint at /mcp on 127.0.0.1, then calls /mcp through `OAuthLayer`. The
 * first call gets 401, and the library discovers the server, registers a client, and signs you
 * in: your browser opens at the consent page, you click Approve, and the browser is sent back to
 * a loopback callback server that lives only for this sign-in (RFC 8252 §7.3). Then the token is
 * exchanged and the call is retried.
 *
 *   npx tsx examples/browser-login.ts              # the default browser, or manual paste without a display
 *   npx tsx examples/browser-login.ts --manual     # print the URL, paste the callback URL back
 *   npx tsx examples/browser-login.ts --chromium   # headless /usr/bin/chromium plays you and clicks Approve
 *   npx tsx examples/browser-login.ts --auto-approve   # the server skips the consent page
 */
import { HttpClient, HttpClientRequest, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { Authorizer, OAuthLayer } from "../src/index.js"
import { BearerAuth, Consent, OAuthProvider, OAuthProviderStore, TokenVerifier } from "../src/server/index.js"

const args = new Set(process.argv.slice(2))

/** The authorization server and the protected /mcp endpoint, on one loopback port. */
const startServer = Effect.gen(function*() {
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  const base = HttpServer.formatAddress(server.address)
  const mcpUrl = `${base}/mcp`
  const provider = yield* OAuthProvider.make({
    issuer: base,
    scopesSupported: ["read"],
    consent: args.has("--auto-approve") ? Consent.autoApprove("example-user") : Consent.page("example-user")
  }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
  const mcp = BearerAuth.middleware({ resource: mcpUrl, requiredScopes: ["read"] })(
    Effect.map(BearerAuth.AuthenticatedToken, (token) =>
      HttpServerResponse.unsafeJson({ hello: token.subject, scopes: token.scopes }))
  )
  const app = HttpRouter.empty.pipe(
    HttpRouter.concat(provider.router),
    HttpRouter.concat(BearerAuth.metadataRoutes({ resource: mcpUrl, authorizationServers: [provider.issuer] })),
    HttpRouter.post("/mcp", mcp),
    HttpRouter.provideService(TokenVerifier.TokenVerifier, TokenVerifier.make(provider.verifyAccessToken))
  )
  yield* server.serve(app)
  yield* Console.error(`Authorization server and /mcp listening at ${base}`)
  return { mcpUrl }
})

/** With --chromium: a BrowserOpener that lets headless Chromium load the page and click Approve. */
const chromiumOpener = Layer.scoped(
  Authorizer.BrowserOpener,
  Effect.gen(function*() {
    const { chromium } = yield* Effect.promise(() => import("playwright-core"))
    const browser = yield* Effect.acquireRelease(
      Effect.promise(() =>
        chromium.launch({
          executablePath: "/usr/bin/chromium",
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
        })
      ),
      (b) => Effect.promise(() => b.close())
    )
    return {
      open: (url: string) =>
        Effect.promise(async () => {
          const page = await browser.newPage()
          await page.goto(url)
          if (!args.has("--auto-approve")) {
            await page.click("#approve")
          }
          await page.waitForURL(/\/callback\?/)
          console.error(`Chromium shows: ${await page.textContent("h1")}`)
        }).pipe(Effect.forkDaemon, Effect.asVoid)
    }
  })
)

const authorizer = Authorizer.layerAuto({
  mode: args.has("--manual") ? "manual" : args.has("--chromium") ? "browser" : "auto",
  browser: { timeout: "5 minutes" }
})

const program = Effect.gen(function*() {
  const { mcpUrl } = yield* startServer
  const body = yield* Effect.gen(function*() {
    // Inside OAuthLayer, HttpClient is the authenticated client.
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const response = yield* client.execute(HttpClientRequest.post(mcpUrl).pipe(HttpClientRequest.bodyUnsafeJson({})))
    return yield* response.json
  }).pipe(
    Effect.scoped,
    Effect.provide(
      OAuthLayer({ mcpUrl, scopes: ["read"], clientName: "browser-login example" }).pipe(
        Layer.provide(authorizer),
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
  )
  yield* Console.log(`Signed in; /mcp answered: ${JSON.stringify(body)}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(args.has("--chromium") ? chromiumOpener : Layer.empty),
  NodeRuntime.runMain
)
