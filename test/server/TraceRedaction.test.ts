/**
 * Authorization codes stay out of the platform's `http.server` spans when the authorization
 * server is served through `TraceRedaction.withTraceRedaction` (RFC 9700 §4.2.4): the code of
 * the authorization response's `Location`, and a code in a request's query (an upstream's
 * redirect to `OAuthProxy`'s callback), against `OAuthProvider` on loopback with a tracer that
 * records every span the server makes.
 */
import { HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Tracer } from "effect"
import { createServer } from "node:http"
import { Consent, OAuthProvider, OAuthProviderStore, TraceRedaction } from "../../src/server/index.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { pkcePair, postJson, REDIRECT } from "./http.js"

/** Serves an auto-approving OAuthProvider, through `wrap`, with every server span recorded. */
const serve = (wrap: <A, E, R>(layer: Layer.Layer<A, E, R>) => Layer.Layer<A, E, R>) =>
  Effect.gen(function*() {
    const { spans, tracer: recording } = recordingTracer(yield* Effect.tracer)
    const server = Context.get(
      yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      HttpServer.HttpServer
    )
    const issuer = HttpServer.formatAddress(server.address)
    const provider = yield* OAuthProvider.make({ issuer, scopesSupported: ["tools"], consent: Consent.autoApprove("u") })
      .pipe(Effect.provide(OAuthProviderStore.layerMemory))
    yield* Layer.build(
      wrap(HttpServer.serve(provider.router)).pipe(Layer.provide(Layer.succeed(HttpServer.HttpServer, server)))
    ).pipe(Effect.withTracer(recording))
    return { issuer, spans }
  })

/** One authorization request (answered with a code in `Location`) and one request with a code in its query. */
const traffic = (issuer: string) =>
  Effect.gen(function*() {
    const client = (yield* postJson(`${issuer}/register`, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"]
    })).body as { client_id: string }
    const url = new URL(`${issuer}/authorize`)
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      code_challenge: pkcePair().challenge,
      code_challenge_method: "S256",
      state: "st",
      scope: "tools"
    }).toString()
    const answer = yield* Effect.promise(() => fetch(url, { redirect: "manual" }))
    const code = new URL(answer.headers.get("location") ?? "http://x/").searchParams.get("code") ?? ""
    expect(code.length).toBeGreaterThan(10)
    yield* Effect.promise(() => fetch(`${issuer}/callback?code=upstream-code-123&state=st`).then((r) => r.text()))
    return [code, "upstream-code-123"]
  })

const attributesOf = (spans: ReadonlyArray<Tracer.Span>) =>
  spans.flatMap((span) => [...span.attributes].map(([name, value]) => ({ span: span.name, name, value: String(value) })))

describe("TraceRedaction.withTraceRedaction", () => {
  it.scopedLive("no http.server span attribute carries an authorization code; the spans are still made", () =>
    Effect.gen(function*() {
      const { issuer, spans } = yield* serve(TraceRedaction.withTraceRedaction)
      const codes = yield* traffic(issuer)
      const attributes = attributesOf(spans)
      expect(attributes.filter((a) => codes.some((code) => a.value.includes(code)))).toEqual([])
      // the authorization request is traced, its Location recorded redacted
      const authorize = spans.filter((s) => s.attributes.get("url.path") === "/authorize")
      expect(authorize.length).toBe(1)
      expect(authorize[0]!.attributes.get("http.response.status_code")).toBe(302)
      expect(String(authorize[0]!.attributes.get("http.response.header.location"))).toBe("<redacted>")
      // the request with a code in its query is not traced; the registration is
      expect(spans.some((s) => String(s.attributes.get("url.path")) === "/callback")).toBe(false)
      expect(spans.some((s) => s.attributes.get("url.path") === "/register")).toBe(true)
    }))

  it.scopedLive("the settings already in place are kept: a predicate of the app's own still disables its URLs", () =>
    Effect.gen(function*() {
      const { issuer, spans } = yield* serve((layer) =>
        TraceRedaction.withTraceRedaction(layer).pipe(HttpMiddleware.withTracerDisabledForUrls(["/register"]))
      )
      yield* traffic(issuer)
      expect(spans.some((s) => s.attributes.get("url.path") === "/register")).toBe(false)
      expect(spans.some((s) => s.attributes.get("url.path") === "/authorize")).toBe(true)
      expect(spans.some((s) => String(s.attributes.get("url.path")) === "/callback")).toBe(false)
    }))
})
