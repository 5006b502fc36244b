/**
 * An app receives the sign-in's progress through `SignInEvents`: the authorization URL, waiting
 * for the browser, signed in, refreshed — against the library's own authorization server on
 * 127.0.0.1, with the headless and the browser sign-in.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Option, Schema } from "effect"
import { createServer } from "node:http"
import * as Authorizer from "../src/Authorizer.js"
import { OAuthLayer } from "../src/HttpAuth.js"
import { McpClient } from "../src/mcp/index.js"
import { StoredToken } from "../src/Schemas.js"
import * as SignInEvents from "../src/SignInEvents.js"
import * as TokenStorage from "../src/TokenStorage.js"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore
} from "../src/server/index.js"

const whoami = McpEndpoint.tool({
  name: "whoami",
  parameters: Schema.Struct({}),
  handler: () => Effect.map(BearerAuth.AuthenticatedToken, (token) => token.subject)
})

/** A browser that follows the authorization redirect to the loopback callback. */
const followingBrowser = Layer.succeed(Authorizer.BrowserOpener, {
  open: (url: string) =>
    Effect.promise(async () => {
      const first = await fetch(url, { redirect: "manual" })
      const location = first.headers.get("location")
      if (location !== null) await (await fetch(new URL(location, url))).text()
    })
})

/** Connect + tool call (signs in), expire the token, connect + tool call (refreshes): the events seen. */
const eventsOf = (authorizer: Layer.Layer<Authorizer.Authorizer, never, never> | "headless") =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const provider = yield* OAuthProvider.make({
      issuer: HttpServer.formatAddress(server.address),
      scopesSupported: ["tools"],
      consent: Consent.autoApprove("events-user")
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    const auth = AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["tools"] })
    yield* server.serve(AuthProvider.protect(auth, "/mcp", McpEndpoint.make({ name: "events", tools: [whoami] })))
    const mcpUrl = auth.resourceUrl("/mcp")

    const events: Array<SignInEvents.SignInEvent> = []
    const storage = yield* Effect.provide(TokenStorage.TokenStorage, TokenStorage.layerMemory)
    const authorizerLayer = authorizer === "headless" ? Authorizer.layerHeadless() : authorizer
    const connectAndCall = Effect.gen(function*() {
      const client = yield* McpClient.connect(new URL(mcpUrl), { auth: "oauth", standaloneStream: false })
      return yield* client.callTool("whoami")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        OAuthLayer({ mcpUrl, scopes: ["tools"] }).pipe(
          Layer.provide(authorizerLayer),
          Layer.provide(Layer.succeed(TokenStorage.TokenStorage, storage)),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      ),
      // What a GUI does: hand each event to its UI.
      Effect.provide(SignInEvents.layer((event) => Effect.sync(() => void events.push(event))))
    )
    yield* connectAndCall
    const key = TokenStorage.serverKey(mcpUrl)
    const stored = yield* storage.getTokens(key)
    if (Option.isNone(stored)) return yield* Effect.die("no token stored")
    const now = yield* Clock.currentTimeMillis
    yield* storage.setTokens(key, new StoredToken({ ...stored.value, expiresAt: now - 1000 }))
    yield* connectAndCall
    return { events, mcpUrl, issuer: provider.issuer }
  })

describe("SignInEvents", () => {
  it.scopedLive("headless: the authorization URL, signed in, then refreshed", () =>
    Effect.gen(function*() {
      const { events, issuer, mcpUrl } = yield* eventsOf("headless")
      expect(events.map((e) => e._tag)).toEqual(["AuthorizationUrl", "SignedIn", "Refreshed"])
      const [url, signedIn, refreshed] = events
      expect(url?._tag === "AuthorizationUrl" && new URL(url.url).pathname).toBe("/authorize")
      expect(url?._tag === "AuthorizationUrl" && url.mcpUrl).toBe(mcpUrl)
      expect(signedIn).toEqual(SignInEvents.SignInEvent.SignedIn({ mcpUrl, issuer, scopes: ["tools"] }))
      expect(refreshed).toEqual(SignInEvents.SignInEvent.Refreshed({ mcpUrl, issuer, scopes: ["tools"] }))
    }), 60_000)

  it.scopedLive("browser: the authorization URL, waiting for the browser, signed in", () =>
    Effect.gen(function*() {
      const browser = Authorizer.layerBrowser({ timeout: "20 seconds" }).pipe(
        Layer.provide(followingBrowser),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const { events } = yield* eventsOf(browser)
      expect(events.map((e) => e._tag)).toEqual(["AuthorizationUrl", "WaitingForBrowser", "SignedIn", "Refreshed"])
      const [url, waiting] = events
      expect(waiting?._tag === "WaitingForBrowser" && url?._tag === "AuthorizationUrl" && waiting.url === url.url)
        .toBe(true)
    }), 60_000)

  it.effect("a handler that dies does not fail the sign-in step that publishes", () =>
    SignInEvents.publish(SignInEvents.SignInEvent.WaitingForBrowser({ url: "http://127.0.0.1/" })).pipe(
      Effect.provide(SignInEvents.layer(() => Effect.die("UI gone"))),
      Effect.map((result) => expect(result).toBeUndefined())
    ))
})
