/**
 * The README's Observability section against what the library emits: a full client flow
 * (McpClient → 401 → discovery → registration → sign-in → token → tool call, then a refresh)
 * against the library's own authorization server on 127.0.0.1, with a tracer that records every
 * span. Every span the README lists for this flow is emitted, and no span attribute or event
 * carries a secret seen on the wire (authorization code, PKCE verifier, access or refresh token).
 * The same through `@effect/opentelemetry` as the README shows it, into an in-memory exporter.
 */
import { HttpClient, HttpServer } from "@effect/platform"
import type { HttpClientRequest } from "@effect/platform"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Tracer as OtelTracer } from "@effect/opentelemetry"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Clock, Effect, Layer, Option, Schema, Tracer as EffectTracer } from "effect"
import * as NodeFs from "node:fs"
import { createServer } from "node:http"
import * as NodePath from "node:path"
import { Authorizer, OAuthLayer, Schemas, TokenStorage } from "../../src/index.js"
import { McpClient } from "../../src/mcp/index.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import {
  AuthProvider,
  BearerAuth,
  Consent,
  McpEndpoint,
  OAuthProvider,
  OAuthProviderStore
} from "../../src/server/index.js"


const README = NodePath.resolve(import.meta.dirname, "../../README.md")

/** The span names of the README's "Spans of a client flow" table (first column, in backticks). */
const readmeClientSpans = (): ReadonlyArray<string> => {
  const text = NodeFs.readFileSync(README, "utf8")
  const section = text.split(/^## Observability$/m)[1]?.split(/^## /m)[0] ?? ""
  return [...section.matchAll(/^\| `([A-Za-z.]+)` \|/gm)].map((m) => m[1] ?? "")
}

interface Recorded {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
  readonly events: ReadonlyArray<unknown>
}

const whoami = McpEndpoint.tool({
  name: "whoami",
  description: "The subject of the access token",
  parameters: Schema.Struct({}),
  handler: () => Effect.map(BearerAuth.AuthenticatedToken, (token) => token.subject)
})

const bodyText = (request: HttpClientRequest.HttpClientRequest): string =>
  request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""

/**
 * Runs connect → sign-in → tool call, then connect → refresh → tool call, with `authorizer`, and
 * returns every span made and every secret seen on the wire.
 */
const observedFlow = (
  authorizer: (mcpUrl: string) => Layer.Layer<Authorizer.Authorizer, never, HttpClient.HttpClient>,
  options: {
    /** The tracer the client's spans go to (and are recorded from); default: the current one. */
    readonly tracer?: EffectTracer.Tracer
    /**
     * Sign in as a pre-registered confidential client (`client_secret_basic`), so that a client
     * secret goes over the wire too (dynamic registration makes public clients).
     */
    readonly confidential?: { readonly clientId: string; readonly clientSecret: string }
  } = {}
) =>
  Effect.gen(function*() {
    // Servers: the embedded authorization server and the MCP endpoint it protects, one origin.
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const provider = yield* OAuthProvider.make({
      issuer: HttpServer.formatAddress(server.address),
      scopesSupported: ["tools"],
      consent: Consent.autoApprove("observed-user")
    }).pipe(Effect.provide(OAuthProviderStore.layerMemory))
    const auth = AuthProvider.fromOAuthProvider(provider, { requiredScopes: ["tools"] })
    yield* server.serve(AuthProvider.protect(auth, "/mcp", McpEndpoint.make({ name: "observed", tools: [whoami] })))
    const mcpUrl = auth.resourceUrl("/mcp")

    // Every secret that goes over the wire, from the client's requests.
    const secrets = new Set<string>()
    const watching = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        // transform sees the request as sent, after OAuthLayer has put the token on it.
        HttpClient.transform(client, (response, request) =>
          Effect.zipRight(
            Effect.sync(() => {
              const form = new URLSearchParams(bodyText(request))
              for (const name of ["code", "code_verifier", "refresh_token", "client_secret"]) {
                const value = form.get(name)
                if (value !== null && value.length > 0) secrets.add(value)
              }
              const authorization = request.headers["authorization"] ?? ""
              if (authorization.startsWith("Bearer ")) secrets.add(authorization.slice("Bearer ".length))
              if (authorization.startsWith("Basic ")) {
                // RFC 6749 §2.3.1: form-encoded id and secret, joined by ":".
                const [, secret = ""] = Buffer.from(authorization.slice("Basic ".length), "base64").toString().split(":")
                if (secret.length > 0) secrets.add(decodeURIComponent(secret.replace(/\+/g, " ")))
              }
            }),
            response
          )
        ))
    ).pipe(Layer.provide(NodeHttpClient.layerUndici))

    // A tracer that keeps every span it makes.
    const { spans, tracer: recording } = recordingTracer(options.tracer ?? (yield* Effect.tracer))

    const storage = yield* Effect.provide(TokenStorage.TokenStorage, TokenStorage.layerMemory)
    const confidential = options.confidential ?? {}
    if (options.confidential !== undefined) {
      yield* provider.registerClient({
        ...options.confidential,
        tokenEndpointAuthMethod: "client_secret_basic",
        redirectUris: ["http://127.0.0.1/callback"],
        grantTypes: ["authorization_code", "refresh_token"]
      })
    }
    const connectAndCall = Effect.gen(function*() {
      const client = yield* McpClient.connect(new URL(mcpUrl), {
        auth: options.confidential === undefined ? "oauth" : { oauth: { scopes: ["tools"], ...confidential } },
        clientInfo: { name: "observed", version: "1.0.0" },
        standaloneStream: false
      })
      return yield* client.callTool("whoami")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        OAuthLayer({ mcpUrl, scopes: ["tools"], ...confidential }).pipe(
          Layer.provide(authorizer(mcpUrl)),
          Layer.provide(Layer.succeed(TokenStorage.TokenStorage, storage)),
          Layer.provide(watching)
        )
      ),
      Effect.withTracer(recording)
    )

    yield* connectAndCall
    // Expire the stored token: the next connection refreshes it.
    const key = TokenStorage.serverKey(mcpUrl)
    const stored = yield* storage.getTokens(key)
    expect(Option.isSome(stored)).toBe(true)
    if (Option.isNone(stored)) return { recorded: [], secrets }
    const now = yield* Clock.currentTimeMillis
    yield* storage.setTokens(key, new Schemas.StoredToken({ ...stored.value, expiresAt: now - 1000 }))
    yield* connectAndCall

    const recorded: ReadonlyArray<Recorded> = spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: "events" in s && Array.isArray(s.events) ? s.events : []
    }))
    return { recorded, secrets }
  })

const expectNoSecret = (recorded: ReadonlyArray<Recorded>, secrets: ReadonlySet<string>) => {
  for (const span of recorded) {
    const text = JSON.stringify([[...span.attributes.entries()], span.events], (_k, v) =>
      typeof v === "bigint" ? String(v) : v)
    for (const secret of secrets) expect(text.includes(secret), `a secret in span ${span.name}`).toBe(false)
  }
}

/** A browser that follows the authorization redirect to the loopback callback, as a real one would. */
const followingBrowser = Layer.succeed(Authorizer.BrowserOpener, {
  open: (url: string) =>
    Effect.promise(async () => {
      const first = await fetch(url, { redirect: "manual" })
      const location = first.headers.get("location")
      if (location !== null) await (await fetch(new URL(location, url))).text()
    })
})

describe("README Observability", () => {
  it.scopedLive("the listed spans are emitted by a sign-in, a tool call and a refresh; no attribute carries a secret", () =>
    Effect.gen(function*() {
      const listed = readmeClientSpans()
      expect(listed.length).toBeGreaterThan(5)
      const { recorded, secrets } = yield* observedFlow(() => Authorizer.layerHeadless())
      const names = new Set(recorded.map((s) => s.name))
      for (const name of listed) expect(names.has(name), `span ${name} listed in the README`).toBe(true)
      expect(secrets.size).toBeGreaterThanOrEqual(4) // code, verifier, access token, refresh token at least
      expectNoSecret(recorded, secrets)
    }), 60_000)

  it.scopedLive("a browser sign-in: the loopback callback's span does not record the code in the URL", () =>
    Effect.gen(function*() {
      const { recorded, secrets } = yield* observedFlow(() =>
        Authorizer.layerBrowser({ timeout: "20 seconds" }).pipe(Layer.provide(followingBrowser))
      )
      expect(recorded.some((s) => s.name === "Authorizer.session" && s.attributes.get("kind") === "browser")).toBe(true)
      expect(secrets.size).toBeGreaterThanOrEqual(4)
      expectNoSecret(recorded, secrets)
    }), 60_000)

  it.scopedLive("through @effect/opentelemetry into an in-memory exporter: the listed spans are exported; no attribute carries a token, the client secret, the code or the PKCE verifier", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
      yield* Effect.addFinalizer(() => Effect.promise(() => provider.shutdown()))
      // @effect/opentelemetry's tracer (the one NodeSdk.layer installs) over that provider.
      const tracer = yield* OtelTracer.make.pipe(
        Effect.provideService(OtelTracer.OtelTracer, provider.getTracer("observed"))
      )
      // A sign-in with dynamic registration, and one as a confidential client (client_secret_basic).
      const dynamic = yield* observedFlow(() => Authorizer.layerHeadless(), { tracer })
      const clientSecret = `observed-secret-${crypto.randomUUID()}`
      const preRegistered = yield* observedFlow(() => Authorizer.layerHeadless(), {
        tracer,
        confidential: { clientId: "observed-app", clientSecret }
      })
      const exported = exporter.getFinishedSpans()
      const names = new Set(exported.map((s) => s.name))
      for (const name of readmeClientSpans()) expect(names.has(name), `span ${name} listed in the README`).toBe(true)
      const secrets = new Set([...dynamic.secrets, ...preRegistered.secrets])
      // codes, verifiers, access and refresh tokens of both, and the client secret
      expect(secrets.has(clientSecret)).toBe(true)
      expect(secrets.size).toBeGreaterThanOrEqual(9)
      for (const span of exported) {
        const text = JSON.stringify([span.attributes, span.events, span.links])
        for (const secret of secrets) expect(text.includes(secret), `a secret in span ${span.name}`).toBe(false)
      }
    }), 60_000)
})
