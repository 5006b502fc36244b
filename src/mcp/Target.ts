/**
 * Transport inference, like FastMCP's `infer_transport`: an http(s) URL means Streamable HTTP,
 * unless its path has an `/sse` segment (legacy HTTP+SSE); a path to a `.js`/`.mjs`/`.cjs`,
 * `.ts`/`.mts` or `.py` file means a stdio server run with node, node + tsx or python3; a
 * `{ command, args, env, cwd }` object means stdio; `{ url, transport? }` names an HTTP server;
 * and an `{ mcpServers: { name: … } }` document (the Claude Desktop / FastMCP configuration)
 * names several.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import type * as Scope from "effect/Scope"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { OAuthLayer } from "../HttpAuth.js"
import type { OAuthOptions } from "../OAuth.js"
import type { McpAuth } from "./Auth.js"
import * as Auth from "./Auth.js"
import * as LegacySse from "./LegacySse.js"
import { McpTransportError } from "./McpErrors.js"
import type { McpTransport } from "./McpTransport.js"
import * as Stdio from "./Stdio.js"
import * as StreamableHttp from "./StreamableHttp.js"

/**
 * An HTTP server entry. `transport` overrides inference (`"http"` and `"streamable-http"` mean
 * Streamable HTTP, `"sse"` the legacy transport).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category models
 */
export interface HttpServerConfig {
  readonly url: string
  readonly transport?: "http" | "streamable-http" | "sse" | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly auth?: McpAuth | undefined
}

/**
 * A stdio server entry: `{ command, args, env, cwd }` plus the other {@link Stdio.StdioOptions}.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category models
 */
export interface StdioServerConfig extends Stdio.StdioOptions {
  readonly transport?: "stdio" | undefined
}

/**
 * One server entry.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export type ServerConfig = HttpServerConfig | StdioServerConfig

/**
 * An `mcpServers` configuration document.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export interface McpConfig {
  readonly mcpServers: Readonly<Record<string, ServerConfig>>
}

/**
 * A string that is statically an http(s) URL (lets `connect`/`layer` ask only for an
 * `HttpClient`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 * @since 0.1.0
 * @category models
 */
export type HttpUrl = `http://${string}` | `https://${string}`

/**
 * What can name a server: a URL, a script path, or a server entry.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export type Target = string | URL | ServerConfig

/**
 * Transport options that apply whatever the target (entries may override `headers`/`auth`).
 *
 * - `auth`: see {@link McpAuth}; a bearer token is sent only to the server's origin.
 * - `headers`: extra HTTP headers.
 * - `standaloneStream`, `maxReconnects`, `defaultRetry`, `closeTimeout`: Streamable HTTP knobs.
 * - `connectTimeout`: legacy SSE `endpoint` wait.
 * - `stderr`, `closeGracePeriod`: stdio knobs (an entry's own values win).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export interface TransportOptions {
  readonly auth?: McpAuth | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly standaloneStream?: boolean | undefined
  readonly maxReconnects?: number | undefined
  readonly defaultRetry?: Duration.DurationInput | undefined
  readonly closeTimeout?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly stderr?: ((line: string) => Effect.Effect<void>) | undefined
  readonly closeGracePeriod?: Duration.DurationInput | undefined
}

/**
 * The inferred transport and its options.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category models
 */
export type Resolved =
  | {
    readonly _tag: "StreamableHttp"
    readonly options: StreamableHttp.StreamableHttpOptions
    readonly oauth?: OAuthOptions | undefined
  }
  | {
    readonly _tag: "LegacySse"
    readonly options: LegacySse.LegacySseOptions
    readonly oauth?: OAuthOptions | undefined
  }
  | { readonly _tag: "Stdio"; readonly options: Stdio.StdioOptions }

const isStdio = (config: ServerConfig): config is StdioServerConfig => "command" in config

const hasSseSegment = (url: URL): boolean => url.pathname.split("/").includes("sse")

const parseHttpUrl = (text: string | URL): URL | undefined => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined
  } catch {
    return undefined
  }
}

const fromHttp = (config: HttpServerConfig, options: TransportOptions): Effect.Effect<Resolved, McpTransportError> => {
  const url = parseHttpUrl(config.url)
  if (url === undefined) {
    return Effect.fail(new McpTransportError({ reason: "Protocol", description: `Not an http(s) URL: ${config.url}` }))
  }
  const headers = { ...options.headers, ...config.headers }
  const transformClient = Auth.toTransform(config.auth ?? options.auth, url)
  const oauth = Auth.oauthOptions(config.auth ?? options.auth, url)
  const sse = config.transport === "sse" || (config.transport === undefined && hasSseSegment(url))
  return Effect.succeed(
    sse
      ? {
        _tag: "LegacySse",
        oauth,
        options: { url, headers, transformClient, connectTimeout: options.connectTimeout }
      }
      : {
        _tag: "StreamableHttp",
        oauth,
        options: {
          url,
          headers,
          transformClient,
          standaloneStream: options.standaloneStream,
          maxReconnects: options.maxReconnects,
          defaultRetry: options.defaultRetry,
          closeTimeout: options.closeTimeout
        }
      }
  )
}

const fromStdio = (config: StdioServerConfig, options: TransportOptions): Resolved => ({
  _tag: "Stdio",
  options: {
    ...config,
    stderr: config.stderr ?? options.stderr,
    closeGracePeriod: config.closeGracePeriod ?? options.closeGracePeriod
  }
})

/**
 * How to run a script file: `.js`/`.mjs`/`.cjs` with this node, `.ts`/`.mts`/`.cts` with this
 * node and `--import tsx`, `.py` with `python3`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category inference
 */
export const scriptCommand = (path: string): { readonly command: string; readonly args: ReadonlyArray<string> } | undefined => {
  const extension = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase()
  switch (extension) {
    case "js":
    case "mjs":
    case "cjs":
      return { command: process.execPath, args: [path] }
    case "ts":
    case "mts":
    case "cts":
      return { command: process.execPath, args: ["--import", "tsx", path] }
    case "py":
      return { command: "python3", args: [path] }
    default:
      return undefined
  }
}

/**
 * Decide which transport a target means.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category inference
 */
export const infer = (target: Target, options: TransportOptions = {}): Effect.Effect<Resolved, McpTransportError> => {
  if (target instanceof URL) return fromHttp({ url: target.href }, options)
  if (typeof target === "string") {
    if (parseHttpUrl(target) !== undefined) return fromHttp({ url: target }, options)
    const script = scriptCommand(target)
    if (script !== undefined) return Effect.succeed(fromStdio(script, options))
    return Effect.fail(
      new McpTransportError({
        reason: "Protocol",
        description: `Cannot infer an MCP transport for "${target}": expected an http(s) URL or a .js/.mjs/.ts/.py file`
      })
    )
  }
  return isStdio(target) ? Effect.succeed(fromStdio(target, options)) : fromHttp(target, options)
}

/**
 * Runs `make` with an `OAuthLayer` client in place of the context's `HttpClient`; the layer is
 * built in the current scope, so it lives exactly as long as the transport.
 */
const withOAuth = <A, E, R>(
  oauth: OAuthOptions | undefined,
  make: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Scope.Scope | HttpClient.HttpClient> =>
  oauth === undefined
    ? make
    : Effect.flatMap(Layer.build(OAuthLayer(oauth)), (context) => Effect.provide(make, context))

/**
 * Build the transport a target means, in the current scope.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category constructors
 */
export const transport = (
  target: Target,
  options: TransportOptions = {}
): Effect.Effect<
  McpTransport,
  McpTransportError,
  Scope.Scope | HttpClient.HttpClient | CommandExecutor.CommandExecutor
> =>
  Effect.flatMap(infer(target, options), (resolved): Effect.Effect<
    McpTransport,
    McpTransportError,
    Scope.Scope | HttpClient.HttpClient | CommandExecutor.CommandExecutor
  > => {
    switch (resolved._tag) {
      case "StreamableHttp":
        return withOAuth(resolved.oauth, StreamableHttp.make(resolved.options))
      case "LegacySse":
        return withOAuth(resolved.oauth, LegacySse.make(resolved.options))
      case "Stdio":
        return Stdio.make(resolved.options)
    }
  })
