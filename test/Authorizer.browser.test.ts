import { FetchHttpClient } from "@effect/platform"
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberId, Layer, TestClock } from "effect"
import * as Http from "node:http"
import * as Authorizer from "../src/Authorizer.js"
import type { AuthorizationRequest, AuthorizationSession } from "../src/Authorizer.js"
import { connectionRefused, httpGet, rawServer } from "./AuthorizerRawServer.js"

const STATE = "browser-state-0123456789"

interface Visit {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/**
 * Plays the user's browser: GETs the authorization URL and, when it redirects, GETs the
 * Location (our callback server). Records the page the callback server answered with.
 */
const fakeBrowser = () => {
  const visits: Array<Visit> = []
  const opened: Array<string> = []
  const opener: Authorizer.BrowserOpener = {
    open: (url) =>
      Effect.gen(function*() {
        opened.push(url)
        const first = yield* httpGet(url)
        const location = first.headers.location
        if (location !== undefined) visits.push(yield* httpGet(new URL(location, url).href))
      }).pipe(
        Effect.catchAll((error) => Effect.fail(new Authorizer.BrowserOpenError({ detail: error.message }))),
        Effect.forkDaemon,
        Effect.asVoid
      )
  }
  return { opener, visits, opened, layer: Layer.succeed(Authorizer.BrowserOpener, opener) }
}

/** An authorization server that redirects to `redirect_uri` with the given query. */
const redirectingServer = (query: (state: string) => string) =>
  rawServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const redirectUri = url.searchParams.get("redirect_uri") ?? ""
    const state = url.searchParams.get("state") ?? ""
    res.writeHead(302, { location: `${redirectUri}?${query(state)}` })
    res.end()
  })

const requestFor = (
  authorizeUrl: string,
  session: AuthorizationSession,
  overrides: Partial<AuthorizationRequest> = {}
): AuthorizationRequest => {
  const url = new URL(authorizeUrl)
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", "client-1")
  url.searchParams.set("redirect_uri", session.redirectUri)
  url.searchParams.set("state", overrides.state ?? STATE)
  return {
    url,
    state: STATE,
    redirectUri: session.redirectUri,
    issuer: "http://127.0.0.1",
    issParameterSupported: false,
    clientId: "client-1",
    ...overrides
  }
}

const portOf = (session: AuthorizationSession) => Number(new URL(session.redirectUri).port)

const withBrowser = (options: Authorizer.BrowserOptions, opener: Layer.Layer<never>) =>
  Layer.provide(Authorizer.layerBrowser(options), Layer.merge(FetchHttpClient.layer, opener))

describe("Authorizer.layerBrowser", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it.live("a session listens on 127.0.0.1 at /callback, and only there; closes with its scope", () =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const port = yield* Effect.scoped(
        Effect.gen(function*() {
          const session = yield* authorizer.session
          expect(session.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
          const port = portOf(session)
          expect(port).toBeGreaterThan(0)
          const page = yield* httpGet(`http://127.0.0.1:${port}/callback?code=x&state=y`)
          expect(page.status).toBe(400)
          expect(page.body).toContain("not waiting for a sign-in")
          const other = yield* httpGet(`http://127.0.0.1:${port}/elsewhere`)
          expect(other.status).toBe(404)
          const v6 = yield* Effect.async<string>((resume) => {
            const r = Http.get({ host: "::1", port, path: "/callback", agent: false }, (res) => {
              res.resume()
              resume(Effect.succeed("accepted"))
            })
            r.on("error", (e: NodeJS.ErrnoException) => resume(Effect.succeed(e.code ?? "error")))
          })
          expect(v6).not.toBe("accepted")
          return port
        })
      )
      expect(yield* connectionRefused(port)).toBe(true)
    }).pipe(Effect.provide(withBrowser({}, fakeBrowser().layer))))

  it.live("a session prefers the port of a given redirect URI when it is free, and takes any port when it is not", () =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      // A port that was free a moment ago.
      const free = yield* Effect.scoped(Effect.map(authorizer.session, portOf))
      const preferred = `http://127.0.0.1:${free}/callback`
      yield* Effect.scoped(
        Effect.gen(function*() {
          const session = yield* Authorizer.openSession(authorizer, { preferredRedirectUri: preferred })
          expect(session.redirectUri).toBe(preferred)
          // The port is now taken by that session: a second one falls back to another port.
          const second = yield* Authorizer.openSession(authorizer, { preferredRedirectUri: preferred })
          expect(second.redirectUri).not.toBe(preferred)
          expect(second.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
        })
      )
      // Not a redirect URI of ours (another host or path): ignored.
      const other = yield* Effect.scoped(
        Effect.map(
          Authorizer.openSession(authorizer, { preferredRedirectUri: `http://localhost:${free}/cb` }),
          (s) => s.redirectUri
        )
      )
      expect(other).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    }).pipe(Effect.provide(withBrowser({}, fakeBrowser().layer))))

  it.live("opens the browser, receives the code, shows the success page, then stops listening", () => {
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const as = yield* redirectingServer((state) => `code=the-code&state=${state}`)
      const authorizer = yield* Authorizer.Authorizer
      const { port, response } = yield* Effect.scoped(
        Effect.gen(function*() {
          const session = yield* authorizer.session
          const response = yield* session.authorize(requestFor(`${as.url}/authorize`, session))
          // One use: the server no longer accepts connections, even before the session ends.
          expect(yield* connectionRefused(portOf(session))).toBe(true)
          return { port: portOf(session), response }
        })
      )
      expect(response).toStrictEqual({ code: "the-code", state: STATE, iss: undefined })
      // The pre-flight and the browser each asked the authorization server once.
      expect(as.requests).toHaveLength(2)
      expect(browser.opened).toHaveLength(1)
      yield* Effect.sleep("50 millis")
      expect(browser.visits).toHaveLength(1)
      const page = browser.visits[0]!
      expect(page.status).toBe(200)
      expect(page.body).toContain("Signed in. You can close this tab.")
      expect(page.headers["cache-control"]).toBe("no-store")
      expect(page.headers["referrer-policy"]).toBe("no-referrer")
      expect(page.headers["content-type"]).toContain("text/html")
      expect(yield* connectionRefused(port)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
  })

  it.live("a callback with a wrong state gets a 400 page and the wait goes on", () => {
    const opened = Deferred.unsafeMake<string>(FiberId.none)
    const opener = Layer.succeed(Authorizer.BrowserOpener, {
      open: (url: string) => Deferred.succeed(opened, url).pipe(Effect.asVoid)
    })
    return Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const base = session.redirectUri
      const fiber = yield* Effect.fork(session.authorize(requestFor("http://127.0.0.1:9/authorize", session)))
      yield* Deferred.await(opened)
      const stray = yield* httpGet(`${base}?code=evil&state=forged`)
      expect(stray.status).toBe(400)
      expect(stray.body).toContain("not for the current sign-in")
      const missing = yield* httpGet(`${base}?code=evil`)
      expect(missing.status).toBe(400)
      const wrongPath = yield* httpGet(`${base}/../other?code=evil&state=${STATE}`)
      expect(wrongPath.status).toBe(404)
      expect(fiber.unsafePoll()).toBeNull()
      const good = yield* httpGet(`${base}?code=real&state=${STATE}`)
      expect(good.status).toBe(200)
      const response = yield* Fiber.join(fiber)
      expect(response.code).toBe("real")
    }).pipe(Effect.scoped, Effect.provide(withBrowser({ preflight: false }, opener)))
  })

  it.live("error= on the callback is Denied with the server's description, shown escaped", () => {
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const as = yield* redirectingServer((state) =>
        `error=access_denied&error_description=${encodeURIComponent("<script>alert(1)</script> said no")}&state=${state}`
      )
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const error = yield* Effect.flip(session.authorize(requestFor(`${as.url}/authorize`, session)))
      expect(error._tag).toBe("AuthorizationError")
      if (error._tag !== "AuthorizationError") return
      expect(error.reason).toBe("Denied")
      expect(error.error).toBe("access_denied")
      expect(error.detail).toContain("said no")
      yield* Effect.sleep("50 millis")
      const page = browser.visits[0]!
      expect(page.body).toContain("Sign-in was not completed")
      expect(page.body).toContain("&#60;script&#62;alert(1)&#60;/script&#62; said no")
      expect(page.body).not.toContain("<script>")
      expect(page.headers["cache-control"]).toBe("no-store")
      expect(yield* connectionRefused(portOf(session))).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
  })

  it.live("a callback with the right state but another issuer fails the sign-in (mix-up defence)", () => {
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const as = yield* redirectingServer((state) => `code=c&state=${state}&iss=${encodeURIComponent("https://evil.example")}`)
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const error = yield* Effect.flip(
        session.authorize(requestFor(`${as.url}/authorize`, session, { issuer: as.url, issParameterSupported: true }))
      )
      expect(error._tag === "AuthorizationError" && error.reason).toBe("IssuerMismatch")
      yield* Effect.sleep("50 millis")
      expect(browser.visits[0]?.status).toBe(400)
      expect(browser.visits[0]?.body).toContain("Sign-in failed")
    }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
  })

  it.live("no callback within the timeout is Timeout, and the server is closed", () =>
    Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const error = yield* Effect.flip(session.authorize(requestFor("http://127.0.0.1:9/authorize", session)))
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Timeout")
      expect(error.message).toContain("300ms")
      expect(yield* connectionRefused(portOf(session))).toBe(true)
    }).pipe(
      Effect.scoped,
      Effect.provide(withBrowser(
        { timeout: "300 millis", preflight: false },
        Layer.succeed(Authorizer.BrowserOpener, { open: () => Effect.void })
      ))
    ))

  it.effect("the default timeout is 300 seconds", () => {
    const opened = Deferred.unsafeMake<void>(FiberId.none)
    return Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const fiber = yield* Effect.fork(session.authorize(requestFor("http://127.0.0.1:9/authorize", session)))
      yield* Deferred.await(opened)
      yield* TestClock.adjust("299 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error._tag === "AuthorizationError" && error.reason).toBe("Timeout")
    }).pipe(
      Effect.scoped,
      Effect.provide(withBrowser(
        { preflight: false },
        Layer.succeed(Authorizer.BrowserOpener, { open: () => Deferred.succeed(opened, undefined) })
      ))
    )
  })

  it.live("interrupting the sign-in closes the server", () => {
    const opened = Deferred.unsafeMake<void>(FiberId.none)
    return Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const fiber = yield* Effect.fork(session.authorize(requestFor("http://127.0.0.1:9/authorize", session)))
      yield* Deferred.await(opened)
      expect(yield* connectionRefused(portOf(session))).toBe(false)
      yield* Fiber.interrupt(fiber)
      expect(yield* connectionRefused(portOf(session))).toBe(true)
    }).pipe(
      Effect.scoped,
      Effect.provide(withBrowser(
        { preflight: false },
        Layer.succeed(Authorizer.BrowserOpener, { open: () => Deferred.succeed(opened, undefined) })
      ))
    )
  })

  it.live("when the browser cannot be opened the URL is printed to stderr and the wait goes on", () => {
    const printed: Array<string> = []
    return Effect.gen(function*() {
      vi.spyOn(console, "error").mockImplementation((...args: Array<unknown>) => {
        printed.push(args.map(String).join(" "))
      })
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const request = requestFor("http://127.0.0.1:9/authorize", session)
      const fiber = yield* Effect.fork(session.authorize(request))
      yield* Effect.sleep("100 millis").pipe(Effect.repeat({ until: () => printed.length > 0, times: 50 }))
      expect(printed.join("\n")).toContain("Could not open a browser (no launcher here)")
      expect(printed.join("\n")).toContain(request.url.href)
      const page = yield* httpGet(`${session.redirectUri}?code=pasted&state=${STATE}`)
      expect(page.status).toBe(200)
      expect((yield* Fiber.join(fiber)).code).toBe("pasted")
    }).pipe(
      Effect.scoped,
      Effect.provide(withBrowser(
        { preflight: false },
        Layer.succeed(Authorizer.BrowserOpener, {
          open: () => Effect.fail(new Authorizer.BrowserOpenError({ detail: "no launcher here" }))
        })
      ))
    )
  })

  it.live("the default opener, with nothing to open with, prints the URL instead", () => {
    const printed: Array<string> = []
    const saved = { DISPLAY: process.env.DISPLAY, WAYLAND_DISPLAY: process.env.WAYLAND_DISPLAY, BROWSER: process.env.BROWSER, WSL_DISTRO_NAME: process.env.WSL_DISTRO_NAME }
    return Effect.gen(function*() {
      if (process.platform === "darwin" || process.platform === "win32") return
      for (const key of Object.keys(saved)) delete process.env[key]
      vi.spyOn(console, "error").mockImplementation((...args: Array<unknown>) => {
        printed.push(args.map(String).join(" "))
      })
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const request = requestFor("http://127.0.0.1:9/authorize", session)
      const fiber = yield* Effect.fork(session.authorize(request))
      yield* Effect.sleep("50 millis").pipe(Effect.repeat({ until: () => printed.length > 0, times: 100 }))
      expect(printed.join("\n")).toContain("no graphical display")
      expect(printed.join("\n")).toContain(request.url.href)
      yield* httpGet(`${session.redirectUri}?code=c&state=${STATE}`)
      expect((yield* Fiber.join(fiber)).code).toBe("c")
    }).pipe(
      Effect.scoped,
      Effect.ensuring(Effect.sync(() => {
        for (const [key, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[key]
          else process.env[key] = value
        }
      })),
      Effect.provide(Layer.provide(Authorizer.layerBrowser({ preflight: false }), FetchHttpClient.layer))
    )
  })

  describe("stale-client pre-flight", () => {
    it.live("a 400 that names the client is ClientNotFound, and the browser is never opened", () => {
      const browser = fakeBrowser()
      return Effect.gen(function*() {
        const as = yield* rawServer((_req, res) => {
          res.writeHead(400, { "content-type": "application/json" })
          res.end(`{"error":"invalid_client","error_description":"Client not found"}`)
        })
        const authorizer = yield* Authorizer.Authorizer
        const session = yield* authorizer.session
        const error = yield* Effect.flip(session.authorize(requestFor(`${as.url}/authorize`, session)))
        expect(error._tag).toBe("ClientNotFound")
        expect(error._tag === "ClientNotFound" && error.description).toContain("Client not found")
        expect(browser.opened).toHaveLength(0)
        expect(as.requests).toHaveLength(1)
      }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
    })

    it.live("the pre-flight asks with prompt=none: an OIDC server starts one login interaction per sign-in, not two", () => {
      const browser = fakeBrowser()
      return Effect.gen(function*() {
        let interactions = 0
        const as = yield* rawServer((req, res) => {
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          if (url.pathname === "/login") {
            res.writeHead(200, { "content-type": "text/html" })
            return res.end("<form>sign in</form>")
          }
          const redirectUri = url.searchParams.get("redirect_uri") ?? ""
          if (url.searchParams.get("prompt") === "none") {
            // OIDC Core §3.1.2.6: no interaction; say a login is needed.
            res.writeHead(303, { location: `${redirectUri}?error=login_required&state=${url.searchParams.get("state")}` })
            return res.end()
          }
          interactions++
          res.writeHead(303, { location: `/login?uid=${interactions}` })
          res.end()
        })
        const authorizer = yield* Authorizer.Authorizer
        const session = yield* authorizer.session
        const fiber = yield* Effect.fork(session.authorize(requestFor(`${as.url}/authorize`, session)))
        yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => browser.opened.length > 0, times: 200 }))
        yield* httpGet(`${session.redirectUri}?code=c&state=${STATE}`)
        expect((yield* Fiber.join(fiber)).code).toBe("c")
        expect(interactions).toBe(1)
        expect(as.requests.filter((r) => r.startsWith("/authorize"))).toHaveLength(2)
      }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
    })

    it.live("an error redirect from the pre-flight (invalid_scope) fails the sign-in before the browser opens", () => {
      const browser = fakeBrowser()
      return Effect.gen(function*() {
        const as = yield* redirectingServer((state) =>
          `error=invalid_scope&error_description=scope+not+registered&state=${state}`
        )
        const authorizer = yield* Authorizer.Authorizer
        const session = yield* authorizer.session
        const error = yield* Effect.flip(session.authorize(requestFor(`${as.url}/authorize`, session)))
        expect(error._tag).toBe("AuthorizationError")
        if (error._tag === "AuthorizationError") {
          expect(error.reason).toBe("Denied")
          expect(error.error).toBe("invalid_scope")
          expect(error.detail).toContain("scope not registered")
        }
        expect(browser.opened).toHaveLength(0)
        expect(as.requests).toHaveLength(1)
      }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
    })

    it.live("a request that says preflight: false (a client just registered or confirmed) is not pre-flighted", () => {
      const browser = fakeBrowser()
      return Effect.gen(function*() {
        const as = yield* redirectingServer((state) => `code=the-code&state=${state}`)
        const authorizer = yield* Authorizer.Authorizer
        const response = yield* Effect.scoped(
          Effect.gen(function*() {
            const session = yield* authorizer.session
            return yield* session.authorize(requestFor(`${as.url}/authorize`, session, { preflight: false }))
          })
        )
        expect(response.code).toBe("the-code")
        expect(as.requests).toHaveLength(1)
      }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
    })

    it.live("a 200 page (sign-in or consent) lets the browser go ahead", () => {
      const opened = Deferred.unsafeMake<string>(FiberId.none)
      return Effect.gen(function*() {
        const as = yield* rawServer((_req, res) => {
          res.writeHead(200, { "content-type": "text/html" })
          res.end("<form><button id=approve>Approve</button></form>")
        })
        const authorizer = yield* Authorizer.Authorizer
        const session = yield* authorizer.session
        const fiber = yield* Effect.fork(session.authorize(requestFor(`${as.url}/authorize`, session)))
        expect(yield* Deferred.await(opened)).toContain(as.url)
        yield* httpGet(`${session.redirectUri}?code=c&state=${STATE}`)
        expect((yield* Fiber.join(fiber)).code).toBe("c")
      }).pipe(
        Effect.scoped,
        Effect.provide(withBrowser({}, Layer.succeed(Authorizer.BrowserOpener, {
          open: (url: string) => Deferred.succeed(opened, url).pipe(Effect.asVoid)
        })))
      )
    })

    it.live("an unreachable authorization server does not stop the browser", () => {
      const opened = Deferred.unsafeMake<string>(FiberId.none)
      return Effect.gen(function*() {
        const port = yield* Effect.scoped(rawServer(() => {}).pipe(Effect.map((s) => s.port)))
        const authorizer = yield* Authorizer.Authorizer
        const session = yield* authorizer.session
        const fiber = yield* Effect.fork(
          session.authorize(requestFor(`http://127.0.0.1:${port}/authorize`, session))
        )
        yield* Deferred.await(opened)
        yield* httpGet(`${session.redirectUri}?code=c&state=${STATE}`)
        expect((yield* Fiber.join(fiber)).code).toBe("c")
      }).pipe(
        Effect.scoped,
        Effect.provide(withBrowser({}, Layer.succeed(Authorizer.BrowserOpener, {
          open: (url: string) => Deferred.succeed(opened, url).pipe(Effect.asVoid)
        })))
      )
    })
  })

  it.live("a fixed callbackPort is used; one already in use is CallbackServer naming the port", () =>
    Effect.gen(function*() {
      const busy = yield* rawServer(() => {})
      const error = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(Authorizer.Authorizer, (a) => a.session)).pipe(
          Effect.provide(withBrowser({ callbackPort: busy.port }, fakeBrowser().layer))
        )
      )
      expect(error.reason).toBe("CallbackServer")
      expect(error.detail).toContain(String(busy.port))
      expect(error.detail).toContain("already in use")

      const free = yield* Effect.scoped(rawServer(() => {}).pipe(Effect.map((s) => s.port)))
      const uri = yield* Effect.scoped(Effect.flatMap(Authorizer.Authorizer, (a) =>
        Effect.map(a.session, (s) => s.redirectUri))).pipe(
          Effect.provide(withBrowser({ callbackPort: free }, fakeBrowser().layer))
        )
      expect(uri).toBe(`http://127.0.0.1:${free}/callback`)
      expect(yield* connectionRefused(free)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a request for another redirect URI is refused before anything is opened", () => {
    const browser = fakeBrowser()
    return Effect.gen(function*() {
      const authorizer = yield* Authorizer.Authorizer
      const session = yield* authorizer.session
      const error = yield* Effect.flip(
        session.authorize(requestFor("http://127.0.0.1:9/authorize", session, { redirectUri: "http://127.0.0.1:1/cb" }))
      )
      expect(error._tag === "AuthorizationError" && error.reason).toBe("CallbackServer")
      expect(browser.opened).toHaveLength(0)
    }).pipe(Effect.scoped, Effect.provide(withBrowser({}, browser.layer)))
  })

  it.live("an out-of-range callbackPort is a typed error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(Authorizer.Authorizer, (a) => a.session)).pipe(
          Effect.provide(withBrowser({ callbackPort: 70000 }, fakeBrowser().layer))
        )
      )
      expect(error.reason).toBe("CallbackServer")
      expect(error.detail).toContain("70000")
    }))
})
