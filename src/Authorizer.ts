/**
 * The authorization step of the authorization code flow (RFC 6749 §4.1.1–4.1.2): turns an
 * authorization URL into the code the authorization server sends back to the redirect URI.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Terminal from "@effect/platform/Terminal"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { AuthorizationError, ClientNotFound } from "./Errors.js"
import type { OAuthRequestError } from "./Errors.js"
import type * as Request from "./internal/authorizationRequest.js"
import * as Probe from "./internal/authorizationProbe.js"
import { validateAuthorizationResponse } from "./internal/authorizationResponse.js"
import * as Browser from "./internal/browser.js"
import { readLineFromStdin } from "./internal/lineReader.js"
import type { AuthorizationResponse } from "./Schemas.js"
import * as SignInEvents from "./SignInEvents.js"

/**
 * What the orchestrator asks the authorizer to do: send the user agent to `url` and bring back
 * the authorization response addressed to `redirectUri`, checking `state` (RFC 6749 §10.12) and,
 * when the server advertises it or sends it, `iss` (RFC 9207 §2.4).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category models
 */
export type AuthorizationRequest = Request.AuthorizationRequest

/**
 * One authorization attempt: the redirect URI to register and send (known before the
 * authorization URL is built, e.g. the port of a loopback callback server, RFC 8252 §7.3), and
 * the step that obtains the response. Lives in a `Scope`: a callback server closes with it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationSession {
  readonly redirectUri: string
  readonly authorize: (
    request: AuthorizationRequest
  ) => Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound | OAuthRequestError>
}

/**
 * Obtains authorization codes: `session` opens one authorization attempt (and whatever it needs,
 * such as a loopback callback server) in the caller's `Scope`. Layers: `layerBrowser` (people),
 * `layerManual` (no local browser), `layerAuto` (either), `layerHeadless` (no user), `layerTest`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @since 0.1.0
 * @category models
 */
export interface Authorizer {
  readonly session: Effect.Effect<AuthorizationSession, AuthorizationError, Scope.Scope>
  /**
   * A session that reuses `options.preferredRedirectUri` when it can (the browser authorizer
   * listens on its loopback port when that port is free, RFC 8252 §7.3), so that a stored client
   * keeps the redirect URI it was registered with. Optional: authorizers with a fixed redirect URI
   * leave it out, and {@link openSession} falls back to `session`.
   */
  readonly sessionWith?: (
    options: SessionOptions
  ) => Effect.Effect<AuthorizationSession, AuthorizationError, Scope.Scope>
  /**
   * This authorizer has no browser at hand (`layerAuto` without a display): a user sign-in then
   * uses the device authorization grant (RFC 8628) when the authorization server offers it, and
   * this authorizer (paste-back) only when it does not. The device flow needs no redirect, so
   * it is not an authorizer itself; the orchestrator runs it (`SignIn.deviceCodeIfOffered`).
   */
  readonly preferDeviceCode?: boolean | undefined
}

/**
 * What the orchestrator may ask of a new authorization session.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export interface SessionOptions {
  /** The redirect URI the stored client was registered with; reused when possible. */
  readonly preferredRedirectUri?: string | undefined
}

/**
 * Opens a session of `authorizer`, preferring `options.preferredRedirectUri` when the authorizer
 * can honour it (see {@link Authorizer.sessionWith}).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category constructors
 */
export const openSession = (
  authorizer: Authorizer,
  options: SessionOptions = {}
): Effect.Effect<AuthorizationSession, AuthorizationError, Scope.Scope> =>
  authorizer.sessionWith === undefined ? authorizer.session : authorizer.sessionWith(options)

/**
 * The port of a loopback redirect URI this library's callback server could listen on
 * (`http://127.0.0.1:{port}/callback`), or `undefined`.
 */
const callbackPortOf = (redirectUri: string | undefined): number | undefined => {
  if (redirectUri === undefined) return undefined
  let url: URL
  try {
    url = new URL(redirectUri)
  } catch {
    return undefined
  }
  if (url.protocol !== "http:" || url.hostname !== "127.0.0.1" || url.pathname !== "/callback") return undefined
  const port = Number(url.port)
  return Number.isInteger(port) && port > 0 ? port : undefined
}

/**
 * The `Authorizer` service tag.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @since 0.1.0
 * @category tags
 */
export const Authorizer: Context.Tag<Authorizer, Authorizer> = Context.GenericTag<Authorizer>(
  "effect-mcp-oauth/Authorizer"
)

/**
 * The redirect URI of the headless and manual authorizers when none is given: a loopback URI
 * (RFC 8252 §7.3) on which nothing listens, so the browser of a manual sign-in stops there and
 * shows the full callback URL in its address bar.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_REDIRECT_URI = "http://127.0.0.1:33418/callback"

/**
 * How long an interactive sign-in may take before failing with `AuthorizationError` "Timeout".
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TIMEOUT: Duration.Duration = Duration.seconds(300)

const DEFAULT_REQUEST_TIMEOUT = Duration.seconds(15)

// -----------------------------------------------------------------------------
// Browser opener
// -----------------------------------------------------------------------------

/**
 * The browser could not be opened (no display, no launcher, the launcher failed). The browser
 * authorizer never fails with it: it prints the URL for the user instead and keeps waiting.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category errors
 */
export class BrowserOpenError extends Schema.TaggedError<BrowserOpenError>("effect-mcp-oauth/BrowserOpenError")(
  "BrowserOpenError",
  { detail: Schema.String }
) {
  override get message(): string {
    return `Could not open a browser: ${this.detail}`
  }
}

/**
 * Opens a URL in the user's browser, the external user agent of a native app (RFC 8252 §4.1).
 * Replace it to drive the sign-in some other way (tests hand the URL to a headless browser).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category models
 */
export interface BrowserOpener {
  readonly open: (url: string) => Effect.Effect<void, BrowserOpenError>
}

/**
 * Builds a `BrowserOpener` on the `open` package. Without `browser` the user's default browser
 * is used (and `$BROWSER` on Linux); `browser` names an app, or a list of apps to try, as `open`
 * understands them (e.g. `"firefox"`, `["google-chrome", "chromium"]`). On Linux without a
 * display it fails at once rather than starting a text-mode browser.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category constructors
 */
export const makeBrowserOpener = (
  options: { readonly browser?: string | ReadonlyArray<string> | undefined } = {}
): BrowserOpener => ({
  open: (url) =>
    Browser.openSystemBrowser(url, { browser: options.browser }).pipe(
      Effect.mapError((detail) => new BrowserOpenError({ detail })),
      Effect.withSpan("BrowserOpener.open")
    )
})

/**
 * The `BrowserOpener` used by `layerBrowser`. It has a default (the system's default browser
 * through `open`), so providing it is optional.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category tags
 */
export const BrowserOpener: Context.Reference<BrowserOpener, BrowserOpener> = Context.Reference<BrowserOpener>()(
  "effect-mcp-oauth/BrowserOpener",
  { defaultValue: (): BrowserOpener => makeBrowserOpener() }
)

/**
 * A `BrowserOpener` that uses the named browser app(s) instead of the default browser.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category layers
 */
export const layerBrowserOpener = (
  options: { readonly browser?: string | ReadonlyArray<string> | undefined } = {}
): Layer.Layer<BrowserOpener> => Layer.succeed(BrowserOpener, makeBrowserOpener(options))

/**
 * Whether a graphical browser can be expected on this machine: macOS and Windows always; Linux
 * and the BSDs when `DISPLAY`, `WAYLAND_DISPLAY` or `BROWSER` is set, or under WSL. Reads the
 * variables through `Config`, so a `ConfigProvider` can stand in for the environment.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category utilities
 */
export const hasDisplay: Effect.Effect<boolean> = Effect.gen(function*() {
  const read = (name: string) =>
    Config.option(Config.string(name)).pipe(
      Effect.map(Option.getOrUndefined),
      Effect.orElseSucceed(() => undefined)
    )
  const names = ["DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "WSL_DISTRO_NAME"] as const
  const env: Record<string, string | undefined> = {}
  for (const name of names) env[name] = yield* read(name)
  return Browser.hasDisplay({ platform: process.platform, env })
})

// -----------------------------------------------------------------------------
// Shared
// -----------------------------------------------------------------------------

/**
 * Options shared by the authorizers that talk to the authorization endpoint themselves (the
 * headless completion and the stale-client pre-flight).
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-1.5
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** Timeout of the GET of the authorization URL; default 15 seconds. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Accept a plain-http authorization endpoint that is not on loopback (tests only). */
  readonly allowInsecure?: boolean | undefined
}

const requestTimeoutOf = (options: RequestOptions): Duration.DurationInput =>
  options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT

const runPreflight = (
  client: HttpClient.HttpClient,
  request: AuthorizationRequest,
  options: RequestOptions
): Effect.Effect<void, AuthorizationError | ClientNotFound | OAuthRequestError> =>
  Probe.preflight(client, request, requestTimeoutOf(options), { allowInsecure: options.allowInsecure })

const timeoutError = (timeout: Duration.DurationInput, what: string) => () =>
  new AuthorizationError({
    reason: "Timeout",
    detail: `${what} within ${Duration.format(Duration.decode(timeout))}`
  })

// -----------------------------------------------------------------------------
// Headless
// -----------------------------------------------------------------------------

/**
 * Options of `layerHeadless`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category models
 */
export interface HeadlessOptions extends RequestOptions {
  /** Redirect URI to register and send; default `DEFAULT_REDIRECT_URI` (nothing listens there). */
  readonly redirectUri?: string | undefined
}

/**
 * An authorizer without a user: GETs the authorization URL (never following redirects) and
 * expects the authorization server to redirect straight to the redirect URI — an authorization
 * server that grants without interaction, such as a test server or one with auto-approval. The
 * response in `Location` is validated (`state`, RFC 9207 `iss`, `error=`). An answer that names
 * the client as unknown is `ClientNotFound`; a page or a redirect elsewhere (sign-in, consent)
 * is `AuthorizationError` "InvalidResponse".
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 * @since 0.1.0
 * @category constructors
 */
export const makeHeadless = (
  options: HeadlessOptions = {}
): Effect.Effect<Authorizer, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const redirectUri = options.redirectUri ?? DEFAULT_REDIRECT_URI
    const authorize = Effect.fn("Authorizer.authorize")(function*(request: AuthorizationRequest) {
      return yield* Probe.authorizeHeadless(client, request, requestTimeoutOf(options), {
        allowInsecure: options.allowInsecure
      })
    })
    return Authorizer.of({
      session: Effect.succeed<AuthorizationSession>({ redirectUri, authorize }).pipe(
        Effect.withSpan("Authorizer.session", { attributes: { kind: "headless" } })
      )
    })
  })

/**
 * The headless authorizer as a layer; see `makeHeadless`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category layers
 */
export const layerHeadless = (
  options: HeadlessOptions = {}
): Layer.Layer<Authorizer, never, HttpClient.HttpClient> => Layer.effect(Authorizer, makeHeadless(options))

// -----------------------------------------------------------------------------
// Test
// -----------------------------------------------------------------------------

/**
 * What `layerTest` answers with: a fixed code (sent back with the request's `state`, and its
 * issuer as `iss` when the server advertises RFC 9207), or a function of the request giving a
 * response (validated like a real callback, so a wrong `state` or `iss` fails the same way) or
 * an effect (returned as is, e.g. to fail with `ClientNotFound`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category models
 */
export type TestAuthorization =
  | string
  | ((
    request: AuthorizationRequest
  ) =>
    | AuthorizationResponse
    | Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound | OAuthRequestError>)

const callbackUrlFor = (request: AuthorizationRequest, response: AuthorizationResponse): URL => {
  const url = new URL(request.redirectUri)
  url.searchParams.set("code", response.code)
  if (response.state !== undefined) url.searchParams.set("state", response.state)
  if (response.iss !== undefined) url.searchParams.set("iss", response.iss)
  return url
}

/**
 * An authorizer for unit tests: no browser, no network.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (
  answer: TestAuthorization,
  options: { readonly redirectUri?: string | undefined } = {}
): Layer.Layer<Authorizer> => {
  const redirectUri = options.redirectUri ?? DEFAULT_REDIRECT_URI
  const authorize = Effect.fn("Authorizer.authorize")(function*(request: AuthorizationRequest) {
    const response: AuthorizationResponse | Effect.Effect<
      AuthorizationResponse,
      AuthorizationError | ClientNotFound | OAuthRequestError
    > = typeof answer === "string"
      ? {
        code: answer,
        state: request.state,
        iss: request.issParameterSupported ? request.issuer : undefined
      }
      : answer(request)
    if (Effect.isEffect(response)) return yield* response
    return yield* Either.match(validateAuthorizationResponse(callbackUrlFor(request, response), request), {
      onLeft: (error) => Effect.fail(Probe.deniedAsClientNotFound(error, request)),
      onRight: Effect.succeed
    })
  })
  return Layer.succeed(
    Authorizer,
    Authorizer.of({ session: Effect.succeed<AuthorizationSession>({ redirectUri, authorize }) })
  )
}

// -----------------------------------------------------------------------------
// Browser
// -----------------------------------------------------------------------------

/**
 * Options of `layerBrowser`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export interface BrowserOptions extends RequestOptions {
  /** Port of the loopback callback server; default 0 (any free port, RFC 8252 §7.3). */
  readonly callbackPort?: number | undefined
  /** How long to wait for the callback; default 300 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Open this browser app (or the first of these that works) instead of the `BrowserOpener`. */
  readonly browser?: string | ReadonlyArray<string> | undefined
  /** GET the authorization URL first (with `prompt=none`) to catch a client the server no longer knows or an error redirect before the user is sent there; default true. */
  readonly preflight?: boolean | undefined
}

const printUrl = (url: string, opened: Either.Either<void, BrowserOpenError>, timeout: Duration.DurationInput) =>
  Either.match(opened, {
    onRight: () =>
      Console.error(
        `Opened your browser to sign in. If nothing happened, open this address in a browser on this computer:\n\n  ${url}\n`
      ),
    onLeft: (error) =>
      Console.error(
        `Could not open a browser (${error.detail}).\n` +
          `To sign in, open this address in a browser on this computer:\n\n  ${url}\n\n` +
          `Waiting up to ${Duration.format(Duration.decode(timeout))} for the sign-in to finish...\n`
      )
  })

const printResumed = (url: string, timeout: Duration.DurationInput) =>
  Console.error(
    "Taking over the sign-in an earlier process started: finish it in the browser window it opened.\n" +
      `If that window is gone, its address was:\n\n  ${url}\n\n` +
      `Waiting up to ${Duration.format(Duration.decode(timeout))} for the sign-in to finish...\n`
  )

/**
 * The loopback callback server, loaded on the first browser sign-in: it brings the HTTP server
 * side of @effect/platform (request, response, middleware, multipart), which an app that only
 * calls APIs with a stored token never needs at import.
 */
const loadCallbackServer = Effect.promise(() => import("./internal/callbackServer.js"))

/**
 * The interactive sign-in for people (RFC 8252): each session starts a loopback callback server
 * on `127.0.0.1` (redirect URI `http://127.0.0.1:{port}/callback`) scoped to the session; each
 * `authorize` runs the stale-client pre-flight, opens the browser with the `BrowserOpener` (on
 * failure the URL is printed to stderr and the wait goes on), and waits for the callback — or,
 * for a request an earlier process started (`resumed`), only waits for its callback. The
 * first callback that carries the request's `state` settles the sign-in; a wrong `state` gets a
 * 400 page and the wait goes on. The server closes once the sign-in is settled, fails, times out
 * or is interrupted.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.3
 * @since 0.1.0
 * @category constructors
 */
export const makeBrowser = (
  options: BrowserOptions = {}
): Effect.Effect<Authorizer, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const opener = options.browser === undefined
      ? yield* BrowserOpener
      : makeBrowserOpener({ browser: options.browser })
    const timeout = options.timeout ?? DEFAULT_TIMEOUT
    const sessionWith = (sessionOptions: SessionOptions) => Effect.gen(function*() {
      // RFC 8252 §7.3: any port works for a loopback redirect; the stored client's port is
      // preferred so that an authorization server that does not follow §7.3 sees the same URI.
      // A fixed `callbackPort` always wins; a busy preferred port falls back to a free one.
      const preferred = options.callbackPort === undefined || options.callbackPort === 0
        ? callbackPortOf(sessionOptions.preferredRedirectUri)
        : undefined
      const { make: makeCallbackServer } = yield* loadCallbackServer
      const server = preferred === undefined
        ? yield* makeCallbackServer({ port: options.callbackPort })
        : yield* makeCallbackServer({ port: preferred }).pipe(
          Effect.tapError((error) => Effect.logDebug(`preferred callback port ${preferred} unavailable: ${error.detail}`)),
          Effect.orElse(() => makeCallbackServer({ port: 0 }))
        )
      const authorize = Effect.fn("Authorizer.authorize")(function*(request: AuthorizationRequest) {
        if (request.redirectUri !== server.redirectUri) {
          return yield* new AuthorizationError({
            reason: "CallbackServer",
            detail: `the authorization request uses redirect URI ${request.redirectUri}, ` +
              `but the callback server listens at ${server.redirectUri}`
          })
        }
        const resumed = request.resumed === true
        if (options.preflight !== false && request.preflight !== false && !resumed) {
          yield* runPreflight(client, request, options)
        }
        return yield* Effect.gen(function*() {
          const wait = yield* Effect.fork(server.await(request))
          if (resumed) {
            yield* printResumed(request.url.href, timeout)
          } else {
            const opened = yield* Effect.either(opener.open(request.url.href))
            yield* printUrl(request.url.href, opened, timeout)
          }
          yield* SignInEvents.publish(SignInEvents.SignInEvent.WaitingForBrowser({ url: request.url.href }))
          return yield* wait.await.pipe(
            Effect.flatten,
            Effect.timeoutFail({ duration: timeout, onTimeout: timeoutError(timeout, "no sign-in callback arrived") })
          )
        }).pipe(Effect.ensuring(server.close))
      })
      return { redirectUri: server.redirectUri, authorize }
    }).pipe(Effect.withSpan("Authorizer.session", { attributes: { kind: "browser" } }))
    return Authorizer.of({ session: sessionWith({}), sessionWith })
  })

/**
 * The browser sign-in as a layer; see `makeBrowser`. The default for people.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category layers
 */
export const layerBrowser = (
  options: BrowserOptions = {}
): Layer.Layer<Authorizer, never, HttpClient.HttpClient> => Layer.effect(Authorizer, makeBrowser(options))

// -----------------------------------------------------------------------------
// Manual
// -----------------------------------------------------------------------------

/**
 * Options of `layerManual`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export interface ManualOptions extends RequestOptions {
  /** Redirect URI to register and send; default `DEFAULT_REDIRECT_URI` (nothing listens there). */
  readonly redirectUri?: string | undefined
  /** How long to wait for the paste; default 300 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How many pastes to accept before giving up; default 3. */
  readonly maxAttempts?: number | undefined
  /** GET the authorization URL first (with `prompt=none`) to catch a client the server no longer knows or an error redirect before the user is sent there; default true. */
  readonly preflight?: boolean | undefined
  /**
   * Ask through this `Terminal` instead of standard input / standard error (a TUI, a test).
   * Not taken from the context: `NodeContext.layer` provides a `NodeTerminal`, which prints on
   * standard output (where an MCP stdio transport or a script's result goes) and keeps waiting
   * after standard input has ended.
   */
  readonly terminal?: Terminal.Terminal | undefined
}

/** A paste that is not (yet) a usable callback URL: the user is asked again. */
class PasteRejected extends Data.TaggedError("PasteRejected")<{ readonly detail: string }> {}

const parsePaste = (line: string, request: AuthorizationRequest): Either.Either<URL, PasteRejected> => {
  const text = line.trim().replace(/^["'<]+|["'>]+$/g, "")
  if (text === "") return Either.left(new PasteRejected({ detail: "nothing was pasted" }))
  const candidates = [text]
  if (/^[\w.-]+(:\d+)?\//.test(text)) candidates.push(`http://${text}`)
  if (/^\??[\w.~%-]+=/.test(text)) candidates.push(request.redirectUri + (text.startsWith("?") ? text : `?${text}`))
  for (const candidate of candidates) {
    let url: URL
    try {
      url = new URL(candidate)
    } catch {
      continue
    }
    if (Probe.targetsRedirectUri(url, request.redirectUri)) return Either.right(url)
    if (url.origin === request.url.origin && url.pathname === request.url.pathname) {
      return Either.left(
        new PasteRejected({
          detail: "that is the sign-in address itself; after approving, copy the address the browser ends up on " +
            `(it starts with ${request.redirectUri})`
        })
      )
    }
    return Either.left(
      new PasteRejected({ detail: `that address does not start with the redirect URI ${request.redirectUri}` })
    )
  }
  return Either.left(new PasteRejected({ detail: "that is not a URL" }))
}

/**
 * The sign-in for machines without a browser of their own (SSH sessions, containers): prints the
 * authorization URL, the user opens it in any browser, approves, and pastes back the full URL of
 * the page the browser was redirected to (which fails to load: nothing listens on the redirect
 * URI, RFC 8252 §7.3). The paste is validated (`state`, RFC 9207 `iss`, `error=`); a paste that
 * is not a usable callback URL, or belongs to another attempt, asks again (up to `maxAttempts`).
 *
 * Reads lines from standard input and prompts on standard error, so standard output stays free
 * for a protocol or a result; the `terminal` option reads and prompts through a `Terminal` instead
 * (a `Terminal` in the context is not used). End of input or Ctrl-C is `AuthorizationError`
 * "Cancelled" at once.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @since 0.1.0
 * @category constructors
 */
export const makeManual = (
  options: ManualOptions = {}
): Effect.Effect<Authorizer, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const terminal = Option.fromNullable(options.terminal)
    const redirectUri = options.redirectUri ?? DEFAULT_REDIRECT_URI
    const timeout = options.timeout ?? DEFAULT_TIMEOUT
    const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 3))

    const say = (text: string): Effect.Effect<void> =>
      Option.match(terminal, {
        onNone: () => Console.error(text),
        onSome: (t) => Effect.ignore(t.display(text + "\n"))
      })
    const ask = (prompt: string): Effect.Effect<Option.Option<string>> =>
      Option.match(terminal, {
        onNone: () => readLineFromStdin(prompt),
        onSome: (t) =>
          t.display(prompt).pipe(
            Effect.ignore,
            Effect.zipRight(Effect.option(t.readLine))
          )
      })
    const cancelled = new AuthorizationError({
      reason: "Cancelled",
      detail: "the sign-in was cancelled (input ended before a callback URL was pasted)"
    })

    const authorize = Effect.fn("Authorizer.authorize")(function*(request: AuthorizationRequest) {
      if (options.preflight !== false && request.preflight !== false) yield* runPreflight(client, request, options)
      yield* say(
        `To sign in, open this address in a browser:\n\n  ${request.url.href}\n\n` +
          `After you approve, the browser is sent to ${request.redirectUri}?... and shows an error page ` +
          `(nothing listens there; that is expected).\nCopy the full address from the browser's address bar and paste it here.`
      )
      const attempt = Effect.gen(function*() {
        const line = yield* ask("Callback URL: ")
        if (Option.isNone(line)) return yield* cancelled
        const url = yield* parsePaste(line.value, request)
        return yield* Either.match(validateAuthorizationResponse(url, request), {
          onRight: Effect.succeed,
          onLeft: (error) =>
            error.reason === "StateMismatch" || error.reason === "InvalidResponse"
              ? Effect.fail(
                new PasteRejected({
                  detail: error.reason === "StateMismatch"
                    ? "that address belongs to a different sign-in attempt (its state does not match)"
                    : error.detail
                })
              )
              : Effect.fail(Probe.deniedAsClientNotFound(error, request))
        })
      }).pipe(Effect.tapError((error) => error._tag === "PasteRejected" ? say(`Not usable: ${error.detail}.`) : Effect.void))
      return yield* attempt.pipe(
        Effect.retry({
          times: maxAttempts - 1,
          while: (error) => error._tag === "PasteRejected"
        }),
        Effect.catchTag("PasteRejected", (error) =>
          Effect.fail(
            new AuthorizationError({
              reason: "InvalidResponse",
              detail: `no usable callback URL after ${maxAttempts} attempt(s); last problem: ${error.detail}`
            })
          )),
        Effect.timeoutFail({ duration: timeout, onTimeout: timeoutError(timeout, "no callback URL was pasted") })
      )
    })
    return Authorizer.of({
      session: Effect.succeed<AuthorizationSession>({ redirectUri, authorize }).pipe(
        Effect.withSpan("Authorizer.session", { attributes: { kind: "manual" } })
      )
    })
  })

/**
 * The manual (paste-the-URL) sign-in as a layer; see `makeManual`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category layers
 */
export const layerManual = (
  options: ManualOptions = {}
): Layer.Layer<Authorizer, never, HttpClient.HttpClient> => Layer.effect(Authorizer, makeManual(options))

// -----------------------------------------------------------------------------
// Auto
// -----------------------------------------------------------------------------

/**
 * Options of `layerAuto`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category models
 */
export interface AutoOptions {
  /** `"auto"` (default) chooses by `hasDisplay`; `"browser"` / `"manual"` force one. */
  readonly mode?: "auto" | "browser" | "manual" | undefined
  /**
   * Without a display, prefer the device authorization grant (RFC 8628) when the authorization
   * server offers it, before the manual paste-back. Default `true`; `false` keeps paste-back only.
   */
  readonly device?: boolean | undefined
  readonly browser?: BrowserOptions | undefined
  readonly manual?: ManualOptions | undefined
}

/**
 * The browser sign-in when a graphical browser can be expected (`hasDisplay`), otherwise the
 * device sign-in (RFC 8628) where the authorization server offers it and the manual one where it
 * does not; `mode` overrides the choice (a forced `"manual"` never switches to the device grant).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category constructors
 */
export const makeAuto = (
  options: AutoOptions = {}
): Effect.Effect<Authorizer, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const mode = options.mode ?? "auto"
    const useBrowser = mode === "browser" || (mode === "auto" && (yield* hasDisplay))
    yield* Effect.annotateCurrentSpan("authorizer", useBrowser ? "browser" : "manual")
    if (useBrowser) return yield* makeBrowser(options.browser)
    const manual = yield* makeManual(options.manual)
    return mode === "auto" && options.device !== false ? { ...manual, preferDeviceCode: true } : manual
  })

/**
 * `makeAuto` as a layer.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-4.1
 * @since 0.1.0
 * @category layers
 */
export const layerAuto = (
  options: AutoOptions = {}
): Layer.Layer<Authorizer, never, HttpClient.HttpClient> => Layer.effect(Authorizer, makeAuto(options))
