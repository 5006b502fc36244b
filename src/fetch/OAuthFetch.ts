/**
 * This library's OAuth as a WHATWG `fetch`, for code on the official MCP TypeScript SDK (or any
 * Promise-style HTTP code) that does not use Effect: `makeOAuthFetch` returns a `fetch` that runs
 * every request through `OAuthLayer`'s middleware (`HttpAuth.authenticate`) in a `ManagedRuntime`
 * — the stored token on requests to the MCP server's origin, single-flight refresh, sign-in on a
 * 401, step-up on a 403 `insufficient_scope`, the file store and the cross-process lock — and a
 * `close()` that releases what the runtime holds (a callback server, open connections).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://fetch.spec.whatwg.org/#fetch-method
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpMethod from "@effect/platform/HttpMethod"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Authorizer from "../Authorizer.js"
import type { OAuthError } from "../Errors.js"
import { isOAuthError, OAuthLayer, type OAuthLayerOptions } from "../HttpAuth.js"
import * as NodeFiles from "../internal/nodeFileSystem.js"
import * as OAuth from "../OAuth.js"
import * as TokenLock from "../TokenLock.js"
import * as TokenStorage from "../TokenStorage.js"

/**
 * How the user signs in when a new authorization is needed: `"auto"` (the browser when there is
 * a display, paste-back otherwise; the default), `"browser"`, `"manual"` (paste-back), or
 * `"headless"` (follow the authorization redirect without a user, for servers that approve
 * without interaction).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @since 0.1.0
 * @category models
 */
export type SignInMode = "auto" | "browser" | "manual" | "headless"

/**
 * Options of {@link makeOAuthFetch}: those of `OAuthLayer` (`mcpUrl` is required), plus where
 * credentials live and how the user signs in.
 *
 * - `dir`: keep credentials in the file store in this directory, coordinated with other processes
 *   by the file lock there (the CLI's `--dir`). Without it (and without `storage`), memory only.
 * - `storage`: any `TokenStorage` layer instead (e.g. encrypted, Redis).
 * - `signIn`: see {@link SignInMode}; `authorizer`: any `Authorizer` layer instead.
 * - `fetch`: the `fetch` used underneath (default `globalThis.fetch`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category models
 */
export interface OAuthFetchOptions extends OAuthLayerOptions {
  readonly dir?: string | undefined
  readonly storage?: Layer.Layer<TokenStorage.TokenStorage> | undefined
  readonly signIn?: SignInMode | undefined
  readonly authorizer?: Layer.Layer<Authorizer.Authorizer, never, HttpClient.HttpClient> | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}

/**
 * A signed-in `fetch` and its lifetime.
 *
 * - `fetch`: a drop-in `fetch` (pass it as the SDK transports' `fetch` option). Requests to the
 *   MCP server's origin carry the token; other origins are passed through untouched. It rejects
 *   with this library's typed OAuth error (`AuthorizationError`, `Unauthorized`,
 *   `InsufficientScope`, …) when no token could be obtained, with the `AbortSignal`'s reason when
 *   aborted, and with a `TypeError` for network failures (as `fetch` does).
 * - `accessToken()`: a valid access token now (refreshing or signing in if needed). A `DPoP`-bound
 *   token (RFC 9449) is useless without a proof of the key it is bound to: send requests through
 *   `fetch`, which adds the proof, rather than this token as a Bearer header.
 * - `close()`: interrupts what is in flight and releases the runtime (callback server, sockets).
 *
 * @see https://fetch.spec.whatwg.org/#fetch-method
 * @since 0.1.0
 * @category models
 */
export interface OAuthFetch {
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
  readonly accessToken: () => Promise<string>
  readonly close: () => Promise<void>
}

/** The services below `OAuthLayer`: storage (+ lock with `dir`) and the sign-in. */
const servicesOf = (options: OAuthFetchOptions) => {
  const files = options.dir === undefined ? undefined : Layer.merge(
    TokenStorage.encryptedFromConfig(TokenStorage.layerFileSystem(options.dir)),
    TokenLock.layerFile(options.dir)
  ).pipe(Layer.provide(NodeFiles.layer))
  const storage = options.storage ?? files ?? TokenStorage.layerMemory
  const lock = options.storage === undefined && files !== undefined ? files : TokenLock.layerNone
  const signIn = options.signIn ?? "auto"
  const authorizer = options.authorizer ?? (signIn === "headless"
    ? Authorizer.layerHeadless({ allowInsecure: options.allowInsecure })
    : Authorizer.layerAuto({
      mode: signIn,
      ...(options.callbackPort === undefined ? {} : { browser: { callbackPort: options.callbackPort } })
    }))
  return Layer.mergeAll(storage, lock, authorizer)
}

/** The OAuth error behind a failed request, else a `TypeError` as `fetch` rejects with. */
const rejection = (cause: Cause.Cause<unknown>, signal: AbortSignal): unknown => {
  if (signal.aborted) return signal.reason
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (isOAuthError(error)) return error
    if (HttpClientError.isHttpClientError(error) && isOAuthError(error.cause)) return error.cause
    return new TypeError("fetch failed", { cause: error })
  }
  return new TypeError("fetch failed", { cause: Cause.squash(cause) })
}

/** A status whose response has no body (Fetch §2.2.3 null body status). */
const nullBodyStatus = (status: number): boolean => status === 101 || status === 204 || status === 205 || status === 304

/** The web `Response` of an `HttpClientResponse`, its body streamed and cancelled on abort. */
const toWebResponse = <R>(
  response: HttpClientResponse.HttpClientResponse,
  runtime: Runtime.Runtime<R>,
  signal: AbortSignal
): Response => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(response.headers)) headers.append(name, value)
  if (nullBodyStatus(response.status)) {
    return new Response(null, { status: response.status, headers })
  }
  const source = Stream.toReadableStreamRuntime(response.stream, runtime).getReader()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      signal.addEventListener("abort", () => {
        void source.cancel(signal.reason).catch(() => {})
        try {
          controller.error(signal.reason)
        } catch {
          // already closed
        }
      }, { once: true })
    },
    async pull(controller) {
      const chunk = await source.read()
      if (chunk.done) controller.close()
      else controller.enqueue(chunk.value)
    },
    cancel(reason) {
      return source.cancel(reason)
    }
  })
  return new Response(body, { status: response.status, statusText: "", headers })
}

/** The `HttpClientRequest` of a web `Request` (its body read once, so a retry can resend it). */
const toClientRequest = async (request: Request): Promise<HttpClientRequest.HttpClientRequest> => {
  const method = request.method.toUpperCase()
  const headers: Record<string, string> = {}
  request.headers.forEach((value, name) => {
    headers[name] = value
  })
  const base = HttpClientRequest.make(HttpMethod.isHttpMethod(method) ? method : "GET")(request.url, { headers })
  if (request.body === null) return base
  const bytes = new Uint8Array(await request.arrayBuffer())
  return HttpClientRequest.setHeaders(
    HttpClientRequest.bodyUint8Array(base, bytes, request.headers.get("content-type") ?? undefined),
    headers
  )
}

/**
 * Builds a `fetch` signed in with this library's OAuth (see {@link OAuthFetch}). Nothing happens
 * until the first call; the first request to the MCP server without a stored token goes out
 * unauthenticated, and its 401 starts discovery, registration and sign-in, exactly as with
 * `OAuthLayer`.
 *
 * @example
 * ```ts
 * import { Client } from "@modelcontextprotocol/sdk/client/index.js"
 * import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
 * import { makeOAuthFetch } from "effect-mcp-oauth/fetch"
 *
 * const oauth = makeOAuthFetch({ mcpUrl: "https://api.example.com/mcp", dir: "./.credentials" })
 * const client = new Client({ name: "my-app", version: "1.0.0" })
 * await client.connect(new StreamableHTTPClientTransport(new URL("https://api.example.com/mcp"), { fetch: oauth.fetch }))
 * ```
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @since 0.1.0
 * @category constructors
 */
export const makeOAuthFetch = (options: OAuthFetchOptions): OAuthFetch => {
  const inner = options.fetch === undefined
    ? FetchHttpClient.layer
    : FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, options.fetch)))
  const layer = OAuthLayer(options).pipe(
    Layer.provide(servicesOf(options)),
    Layer.provide(inner)
  )
  const runtime = ManagedRuntime.make(layer)
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    if (request.signal.aborted) return Promise.reject(request.signal.reason)
    const clientRequest = await toClientRequest(request)
    const exit = await runtime.runPromiseExit(
      Effect.flatMap(HttpClient.HttpClient, (client) => client.execute(clientRequest)),
      { signal: request.signal }
    )
    return Exit.isSuccess(exit)
      ? toWebResponse(exit.value, await runtime.runtime(), request.signal)
      : Promise.reject(rejection(exit.cause, request.signal))
  }
  const accessToken = async (): Promise<string> => {
    const exit = await runtime.runPromiseExit(Effect.flatMap(OAuth.OAuth, (oauth) => oauth.accessToken))
    return Exit.isSuccess(exit) ? Redacted.value(exit.value) : Promise.reject<string>(Cause.squash(exit.cause))
  }
  return { fetch, accessToken, close: () => runtime.dispose() }
}

/**
 * Whether a `fetch` rejection is one of this library's typed OAuth errors (the user did not sign
 * in, the token was refused, …) rather than a network failure.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 * @since 0.1.0
 * @category refinements
 */
export const isOAuthFailure = (u: unknown): u is OAuthError => isOAuthError(u)
