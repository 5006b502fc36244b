/**
 * The loopback redirect-URI server of a native app (RFC 8252 §7.3): listens on 127.0.0.1 only
 * (§8.3), on an ephemeral port unless one is given, and lives in the caller's `Scope`. It is
 * armed with one authorization request at a time; the first callback that carries the right
 * `state` settles it (success, denial or a bad response), after which the server answers
 * "already finished" and is closed. Callbacks with a wrong, missing or repeated `state` get a 400
 * page and the server keeps waiting: a stray request must not end the flow.
 *
 * @internal
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AuthorizationRequest } from "./authorizationRequest.js"
import { AuthorizationError } from "../Errors.js"
import type { ClientNotFound } from "../Errors.js"
import type { AuthorizationResponse } from "../Schemas.js"
import { deniedAsClientNotFound } from "./authorizationProbe.js"
import { carriesState, validateAuthorizationResponse } from "./authorizationResponse.js"
import * as Page from "./callbackPage.js"

/** @internal */
export interface CallbackServer {
  readonly port: number
  readonly redirectUri: string
  /**
   * Arms the server for `request` and waits for the first callback that carries its `state`.
   * The server is closed when this completes, fails or is interrupted.
   */
  readonly await: (
    request: AuthorizationRequest
  ) => Effect.Effect<AuthorizationResponse, AuthorizationError | ClientNotFound>
  /** Stops accepting connections (idempotent). */
  readonly close: Effect.Effect<void>
}

/** @internal */
export interface CallbackServerOptions {
  /** 0 (default) picks a free ephemeral port. */
  readonly port?: number | undefined
  /** Path of the redirect URI; default "/callback". */
  readonly path?: string | undefined
}

type State =
  | { readonly _tag: "Idle" }
  | {
    readonly _tag: "Waiting"
    readonly request: AuthorizationRequest
    readonly deferred: Deferred.Deferred<AuthorizationResponse, AuthorizationError | ClientNotFound>
  }
  | { readonly _tag: "Done" }

const respond = (page: Page.CallbackPage): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(Page.renderPage(page), {
    status: page.status,
    headers: Page.pageHeaders,
    contentType: "text/html; charset=utf-8"
  })

const describeServeError = (port: number, error: HttpServerError.ServeError): string => {
  const cause = error.cause
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined
  if (code === "EADDRINUSE") {
    return `port ${port} on 127.0.0.1 is already in use; choose another callbackPort or 0 for any free port`
  }
  if (code === "EACCES") {
    return `not allowed to listen on port ${port} on 127.0.0.1`
  }
  const message = cause instanceof Error ? cause.message : String(cause)
  return `could not listen on 127.0.0.1:${port}: ${message}`
}

/** How long closing waits for open connections before cutting them. */
const CLOSE_GRACE_MS = 2000

/**
 * Listen on 127.0.0.1 in `serverScope`. Closing stops listening at once, gives open connections a
 * moment to finish their response, then cuts them.
 */
const listen = (requestedPort: number, serverScope: Scope.CloseableScope) =>
  Effect.gen(function*() {
    // Loaded on first use: the Node HTTP server module brings undici (its test client) with it,
    // which an app that never signs in through a browser should not pay for at import.
    const NodeHttpServer = yield* Effect.promise(() => import("@effect/platform-node/NodeHttpServer"))
    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, { port: requestedPort, host: "127.0.0.1" }).pipe(
      Scope.extend(serverScope),
      Effect.mapError((error) =>
        new AuthorizationError({ reason: "CallbackServer", detail: describeServeError(requestedPort, error) })
      ),
      Effect.onError(() => Scope.close(serverScope, Exit.void))
    )
    // Runs before the platform's own close (finalizers run in reverse).
    yield* Scope.addFinalizer(
      serverScope,
      Effect.async<void>((resume) => {
        if (!nodeServer.listening) return resume(Effect.void)
        const timer = setTimeout(() => nodeServer.closeAllConnections(), CLOSE_GRACE_MS)
        nodeServer.close(() => {
          clearTimeout(timer)
          resume(Effect.void)
        })
        nodeServer.closeIdleConnections()
      })
    )
    return server
  })

/**
 * A callback while the server waits: only a request carrying exactly this sign-in's state may
 * settle it; anything else (no state, another one, or several — even if one matches) is a stray
 * request and the server keeps waiting.
 */
const settle = (
  url: URL,
  waiting: Extract<State, { readonly _tag: "Waiting" }>,
  state: Ref.Ref<State>
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function*() {
    if (!carriesState(url.searchParams, waiting.request.state)) {
      const count = url.searchParams.getAll("state").length
      yield* Effect.logWarning(
        "ignored a request to the sign-in callback that does not carry this sign-in's state" +
          (count === 0 ? " (no state)" : count > 1 ? ` (${count} state parameters)` : " (another state)")
      )
      return respond(Page.stateMismatchPage)
    }
    const result = validateAuthorizationResponse(url, waiting.request)
    const won = Either.isRight(result)
      ? yield* Deferred.succeed(waiting.deferred, result.right)
      : yield* Deferred.fail(waiting.deferred, deniedAsClientNotFound(result.left, waiting.request))
    if (!won) return respond(Page.alreadyUsedPage)
    yield* Ref.set(state, { _tag: "Done" })
    if (Either.isRight(result)) return respond(Page.successPage)
    const error = result.left
    return respond(error.reason === "Denied" ? Page.deniedPage(error.error, error.detail) : Page.failedPage(error.detail))
  })

/** Every request to the server: only a GET of `path` while it waits can settle the sign-in. */
const handle = (path: string, base: URL, state: Ref.Ref<State>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    let url: URL
    try {
      url = new URL(request.url, base)
    } catch {
      return respond(Page.notFoundPage)
    }
    if (url.pathname !== path) return respond(Page.notFoundPage)
    if (request.method !== "GET") return respond(Page.methodNotAllowedPage)
    const current = yield* Ref.get(state)
    switch (current._tag) {
      case "Idle":
        return respond(Page.notWaitingPage)
      case "Done":
        return respond(Page.alreadyUsedPage)
      case "Waiting":
        return yield* settle(url, current, state)
    }
  })

/** Arm the server for `request` and wait for its callback; the server closes after, whatever happens. */
const awaitCallback = (state: Ref.Ref<State>, close: Effect.Effect<void>) => (request: AuthorizationRequest) =>
  Effect.gen(function*() {
    const deferred = yield* Deferred.make<AuthorizationResponse, AuthorizationError | ClientNotFound>()
    const armed = yield* Ref.modify(state, (s): [boolean, State] =>
      s._tag === "Done" ? [false, s] : [true, { _tag: "Waiting", request, deferred }])
    if (!armed) {
      return yield* new AuthorizationError({
        reason: "CallbackServer",
        detail: "this callback server has already been used; start a new authorization session"
      })
    }
    return yield* Deferred.await(deferred)
  }).pipe(
    Effect.ensuring(Ref.set(state, { _tag: "Done" }).pipe(Effect.zipRight(close)))
  )

/**
 * Starts the callback server in the current scope.
 *
 * @internal
 */
export const make = (
  options: CallbackServerOptions = {}
): Effect.Effect<CallbackServer, AuthorizationError, Scope.Scope> =>
  Effect.gen(function*() {
    const requestedPort = options.port ?? 0
    const path = options.path ?? "/callback"
    if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
      return yield* new AuthorizationError({
        reason: "CallbackServer",
        detail: `callbackPort must be an integer between 0 and 65535, got ${requestedPort}`
      })
    }
    const parent = yield* Effect.scope
    const serverScope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
    const close = Scope.close(serverScope, Exit.void)
    const server = yield* listen(requestedPort, serverScope)
    const port = server.address._tag === "TcpAddress" ? server.address.port : requestedPort
    const redirectUri = `http://127.0.0.1:${port}${path}`
    const state = yield* Ref.make<State>({ _tag: "Idle" })

    // No http.server span: the callback URL's query carries the authorization code (RFC 6749
    // §4.1.2), which must not reach a trace; Authorizer.authorize covers the wait.
    yield* server.serve(handle(path, new URL(redirectUri), state)).pipe(
      HttpMiddleware.withTracerDisabledWhenEffect(() => true),
      Scope.extend(serverScope)
    )

    return { port, redirectUri, await: awaitCallback(state, close), close }
  })
