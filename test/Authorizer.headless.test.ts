import { FetchHttpClient, HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Authorizer from "../src/Authorizer.js"
import type { AuthorizationRequest } from "../src/Authorizer.js"
import { rawServer } from "./AuthorizerRawServer.js"

const STATE = "state-0123456789abcdef"

const requestFor = (
  authorizeUrl: string,
  overrides: Partial<AuthorizationRequest> = {}
): AuthorizationRequest => ({
  url: new URL(`${authorizeUrl}?response_type=code&client_id=client-1&state=${STATE}`),
  state: STATE,
  redirectUri: Authorizer.DEFAULT_REDIRECT_URI,
  issuer: "http://127.0.0.1",
  issParameterSupported: false,
  clientId: "client-1",
  ...overrides
})

const authorizeWith = (request: AuthorizationRequest, options: Authorizer.HeadlessOptions = {}) =>
  Effect.gen(function*() {
    const authorizer = yield* Authorizer.Authorizer
    const session = yield* authorizer.session
    return yield* session.authorize(request)
  }).pipe(Effect.scoped, Effect.provide(Authorizer.layerHeadless(options)))

/** An authorization endpoint that always answers with the given status, headers and body. */
const endpoint = (status: number, headers: Record<string, string>, body = "") =>
  rawServer((_req, res) => {
    res.writeHead(status, headers)
    res.end(body)
  })

const clients = [
  ["FetchHttpClient", FetchHttpClient.layer],
  ["NodeHttpClient (undici)", NodeHttpClient.layerUndici]
] as const

describe("Authorizer.layerHeadless", () => {
  it.effect("session.redirectUri defaults to the unused loopback URI", () =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      expect(session.redirectUri).toBe("http://127.0.0.1:33418/callback")
    }).pipe(Effect.scoped, Effect.provide(Authorizer.layerHeadless()), Effect.provide(FetchHttpClient.layer)))

  it.effect("honours a configured redirect URI", () =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      expect(session.redirectUri).toBe("http://localhost:9999/cb")
    }).pipe(
      Effect.scoped,
      Effect.provide(Authorizer.layerHeadless({ redirectUri: "http://localhost:9999/cb" })),
      Effect.provide(FetchHttpClient.layer)
    ))

  for (const [name, clientLayer] of clients) {
    describe(`with ${name}`, () => {
      it.live("reads the code from the redirect without following it", () =>
        Effect.gen(function*() {
          // The redirect target is a real server: following the redirect would reach it.
          const target = yield* rawServer((_req, res) => res.end("followed!"))
          const as = yield* endpoint(302, {
            location: `${target.url}/callback?code=the-code&state=${STATE}`
          })
          const response = yield* authorizeWith(
            requestFor(`${as.url}/authorize`, { redirectUri: `${target.url}/callback` })
          )
          expect(response).toStrictEqual({ code: "the-code", state: STATE, iss: undefined })
          expect(as.requests).toHaveLength(1)
          expect(as.requests[0]).toContain("client_id=client-1")
          expect(target.requests).toHaveLength(0)
        }).pipe(Effect.scoped, Effect.provide(clientLayer)))

      it.live("resolves a relative Location against the authorization URL", () =>
        Effect.gen(function*() {
          const as = yield* rawServer((_req, res, self) => {
            res.writeHead(303, { location: `/cb?code=rel&state=${STATE}` })
            res.end()
            void self
          })
          const response = yield* authorizeWith(requestFor(`${as.url}/authorize`, { redirectUri: `${as.url}/cb` }))
          expect(response.code).toBe("rel")
        }).pipe(Effect.scoped, Effect.provide(clientLayer)))
    })
  }

  it.live("a redirect with another state is StateMismatch", () =>
    Effect.gen(function*() {
      const as = yield* endpoint(302, { location: `${Authorizer.DEFAULT_REDIRECT_URI}?code=c&state=forged` })
      const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
      expect(error._tag).toBe("AuthorizationError")
      expect(error._tag === "AuthorizationError" && error.reason).toBe("StateMismatch")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("error=access_denied is Denied with the server's description", () =>
    Effect.gen(function*() {
      const as = yield* endpoint(302, {
        location:
          `${Authorizer.DEFAULT_REDIRECT_URI}?error=access_denied&error_description=User+declined&state=${STATE}`
      })
      const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
      expect(error._tag).toBe("AuthorizationError")
      if (error._tag !== "AuthorizationError") return
      expect(error.reason).toBe("Denied")
      expect(error.error).toBe("access_denied")
      expect(error.detail).toContain("User declined")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("a redirect carrying error=invalid_client is ClientNotFound", () =>
    Effect.gen(function*() {
      const as = yield* endpoint(302, {
        location: `${Authorizer.DEFAULT_REDIRECT_URI}?error=invalid_client&state=${STATE}`
      })
      const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
      expect(error._tag).toBe("ClientNotFound")
      expect(error._tag === "ClientNotFound" && error.clientId).toBe("client-1")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("RFC 9207: a missing iss is refused when the server advertises it", () =>
    Effect.gen(function*() {
      const as = yield* endpoint(302, { location: `${Authorizer.DEFAULT_REDIRECT_URI}?code=c&state=${STATE}` })
      const error = yield* Effect.flip(
        authorizeWith(requestFor(`${as.url}/authorize`, { issParameterSupported: true, issuer: as.url }))
      )
      expect(error._tag === "AuthorizationError" && error.reason).toBe("IssuerMismatch")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("RFC 9207: the issuer with a trailing slash is a mismatch", () =>
    Effect.gen(function*() {
      const as = yield* rawServer((_req, res, self) => {
        res.writeHead(302, {
          location: `${Authorizer.DEFAULT_REDIRECT_URI}?code=c&state=${STATE}&iss=${encodeURIComponent(self.url + "/")}`
        })
        res.end()
      })
      const error = yield* Effect.flip(
        authorizeWith(requestFor(`${as.url}/authorize`, { issParameterSupported: true, issuer: as.url }))
      )
      expect(error._tag === "AuthorizationError" && error.reason).toBe("IssuerMismatch")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("RFC 9207: the exact issuer is accepted", () =>
    Effect.gen(function*() {
      const as = yield* rawServer((_req, res, self) => {
        res.writeHead(302, {
          location: `${Authorizer.DEFAULT_REDIRECT_URI}?code=c&state=${STATE}&iss=${encodeURIComponent(self.url)}`
        })
        res.end()
      })
      const response = yield* authorizeWith(
        requestFor(`${as.url}/authorize`, { issParameterSupported: true, issuer: as.url })
      )
      expect(response.iss).toBe(as.url)
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  describe("an answer that is not a redirect", () => {
    const cases: ReadonlyArray<readonly [string, number, Record<string, string>, string]> = [
      ["a JSON invalid_client", 400, { "content-type": "application/json" }, `{"error":"invalid_client"}`],
      ["an HTML 'Client not found' page", 400, { "content-type": "text/html" }, "<h1>Error</h1><p>Client not found.</p>"],
      ["an 'unknown client' page with 200", 200, { "content-type": "text/html" }, "<p>Unknown client: client-1</p>"],
      ["a 401 'Invalid client_id'", 401, { "content-type": "text/plain" }, "Invalid client_id"],
      ["a 404 'client ... does not exist'", 404, { "content-type": "text/plain" }, "The client client-1 does not exist"]
    ]
    for (const [name, status, headers, body] of cases) {
      it.live(`${name} is ClientNotFound`, () =>
        Effect.gen(function*() {
          const as = yield* endpoint(status, headers, body)
          const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
          expect(error._tag).toBe("ClientNotFound")
          if (error._tag !== "ClientNotFound") return
          expect(error.clientId).toBe("client-1")
          expect(error.description).toContain(`HTTP ${status}`)
        }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
    }

    it.live("a consent page (200) is InvalidResponse that says a person is needed", () =>
      Effect.gen(function*() {
        const as = yield* endpoint(
          200,
          { "content-type": "text/html" },
          "<html><head><title>Consent</title><style>p{}</style></head><body><p>Allow access?</p></body></html>"
        )
        const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
        expect(error._tag).toBe("AuthorizationError")
        if (error._tag !== "AuthorizationError") return
        expect(error.reason).toBe("InvalidResponse")
        expect(error.detail).toContain("HTTP 200")
        expect(error.detail).toContain("Allow access?")
        expect(error.detail).not.toContain("<")
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

    it.live("a 400 invalid_request is InvalidResponse with the server's words", () =>
      Effect.gen(function*() {
        const as = yield* endpoint(
          400,
          { "content-type": "application/json" },
          `{"error":"invalid_request","error_description":"redirect_uri is not registered"}`
        )
        const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
        expect(error._tag === "AuthorizationError" && error.reason).toBe("InvalidResponse")
        expect(error.message).toContain("invalid_request: redirect_uri is not registered")
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

    it.live("a redirect to a sign-in page is InvalidResponse, and is not followed", () =>
      Effect.gen(function*() {
        const as = yield* rawServer((req, res) => {
          if (req.url?.startsWith("/login") === true) {
            res.writeHead(302, { location: `${Authorizer.DEFAULT_REDIRECT_URI}?code=c&state=${STATE}` })
          } else {
            res.writeHead(302, { location: "/login?next=/authorize" })
          }
          res.end()
        })
        const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
        expect(error._tag === "AuthorizationError" && error.reason).toBe("InvalidResponse")
        expect(error.message).toContain(`${as.url}/login`)
        expect(as.requests).toHaveLength(1)
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

    it.live("a 3xx without Location is InvalidResponse", () =>
      Effect.gen(function*() {
        const as = yield* endpoint(302, {})
        const error = yield* Effect.flip(authorizeWith(requestFor(`${as.url}/authorize`)))
        expect(error._tag === "AuthorizationError" && error.reason).toBe("InvalidResponse")
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
  })

  it.live("a silent server is an OAuthRequestError Timeout", () =>
    Effect.gen(function*() {
      const as = yield* rawServer(() => {
        // never answers
      })
      const error = yield* Effect.flip(
        authorizeWith(requestFor(`${as.url}/authorize`), { requestTimeout: "300 millis" })
      )
      expect(error._tag === "OAuthRequestError" && error.reason).toBe("Timeout")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("a refused connection is an OAuthRequestError Transport", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(rawServer(() => {}).pipe(Effect.map((s) => s.port)))
      const error = yield* Effect.flip(authorizeWith(requestFor(`http://127.0.0.1:${port}/authorize`)))
      expect(error._tag === "OAuthRequestError" && error.reason).toBe("Transport")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.effect("refuses a plain-http authorization endpoint off loopback without sending anything", () =>
    Effect.gen(function*() {
      let sent = 0
      const counting = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, (client) =>
          HttpClient.tapRequest(client, () =>
            Effect.sync(() => {
              sent++
            })))
      ).pipe(Layer.provide(FetchHttpClient.layer))
      const error = yield* Effect.flip(
        authorizeWith(requestFor("http://as.example.com/authorize")).pipe(Effect.provide(counting))
      )
      expect(error._tag === "OAuthRequestError" && error.reason).toBe("InsecureUrl")
      expect(sent).toBe(0)
    }))
})

describe("Authorizer.layerTest", () => {
  const run = (answer: Authorizer.TestAuthorization, request: AuthorizationRequest) =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      expect(session.redirectUri).toBe(Authorizer.DEFAULT_REDIRECT_URI)
      return yield* session.authorize(request)
    }).pipe(Effect.scoped, Effect.provide(Authorizer.layerTest(answer)))

  const request = requestFor("https://as.example.com/authorize", {
    issuer: "https://as.example.com",
    issParameterSupported: true
  })

  it.effect("a fixed code comes back with the request's state and issuer", () =>
    Effect.gen(function*() {
      const response = yield* run("fixed-code", request)
      expect(response).toStrictEqual({ code: "fixed-code", state: STATE, iss: "https://as.example.com" })
    }))

  it.effect("a function's response is validated like a callback", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run((r) => ({ code: "c", state: "other", iss: r.issuer }), request))
      expect(error._tag === "AuthorizationError" && error.reason).toBe("StateMismatch")
      const noIss = yield* Effect.flip(run((r) => ({ code: "c", state: r.state, iss: undefined }), request))
      expect(noIss._tag === "AuthorizationError" && noIss.reason).toBe("IssuerMismatch")
      const ok = yield* run((r) => ({ code: `code-for-${r.clientId}`, state: r.state, iss: r.issuer }), request)
      expect(ok.code).toBe("code-for-client-1")
    }))

  it.effect("an effect is returned as is", () =>
    Effect.gen(function*() {
      const { ClientNotFound } = yield* Effect.promise(() => import("../src/Errors.js"))
      const error = yield* Effect.flip(
        run((r) => Effect.fail(new ClientNotFound({ clientId: r.clientId })), request)
      )
      expect(error._tag).toBe("ClientNotFound")
    }))
})
