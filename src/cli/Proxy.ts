/**
 * `effect-mcp-oauth proxy <url>`: a stdio MCP server for hosts that only start stdio servers,
 * forwarding everything to a remote OAuth-protected MCP server (see `proxy/Proxy.ts`) and signing
 * in with `OAuthLayer`. Credentials live in the file store shared with the other commands and
 * with every other proxy process for the same server, coordinated by the file lock: N proxies
 * started at once sign in once, and refresh once.
 *
 * stdout is the protocol; logs go to stderr (and with `--debug` also to a log file in `--dir`);
 * no secret is ever logged.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Authorizer from "../Authorizer.js"
import { OAuthLayer } from "../HttpAuth.js"
import * as HostChannel from "../proxy/HostChannel.js"
import * as Proxy from "../proxy/Proxy.js"
import * as Progress from "./Progress.js"
import * as Storage from "./Storage.js"
import * as TokenStorage from "../TokenStorage.js"

/**
 * Bad arguments to `proxy` (exit code 2).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProxyUsage extends Data.TaggedError("ProxyUsage")<{ readonly message: string }> {}

/**
 * Expands `${NAME}` with the environment variable `NAME` (empty when unset), as in mcp-remote's
 * `--header "Authorization: Bearer ${TOKEN}"`.
 *
 * @since 0.1.0
 * @category utilities
 */
export const expandEnv = (value: string, env: Readonly<Record<string, string | undefined>> = process.env): string =>
  value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? "")

/**
 * Parses repeated `--header "Name: value"` options (with `${ENV}` expansion) into a header map;
 * `undefined` names the first malformed one.
 *
 * @since 0.1.0
 * @category utilities
 */
export const parseHeaders = (
  headers: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = process.env
): { readonly headers: Record<string, string> } | { readonly malformed: string } => {
  const out: Record<string, string> = {}
  for (const header of headers) {
    const colon = header.indexOf(":")
    const name = colon <= 0 ? "" : header.slice(0, colon).trim()
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return { malformed: header }
    out[name.toLowerCase()] = expandEnv(header.slice(colon + 1).trim(), env)
  }
  return { headers: out }
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

/**
 * Whether the proxy may talk to `url`: `https`, or `http` on a loopback host with `--allow-http`
 * (local development only: tokens must not cross a network in clear text, OAuth 2.1 §1.5).
 *
 * @see https://www.ietf.org/archive/id/draft-ietf-oauth-v2-1-13.html#section-1.5
 * @since 0.1.0
 * @category utilities
 */
export const checkServerUrl = (url: string, allowHttp: boolean): string | undefined => {
  if (!URL.canParse(url)) return `Not a URL: ${url}`
  const parsed = new URL(url)
  if (parsed.protocol === "https:") return undefined
  if (parsed.protocol !== "http:") return `Not an http(s) URL: ${url}`
  if (!LOOPBACK.has(parsed.hostname)) return `Refusing plain http to a non-loopback host: ${url} (use https)`
  return allowHttp ? undefined : `Plain http needs --allow-http (loopback development only): ${url}`
}

/** The per-server file name stem in the credential directory (the key hashed, never the URL). */
const stemOf = (url: string) => `proxy-${createHash("sha256").update(TokenStorage.serverKey(url)).digest("hex").slice(0, 16)}`

/** The server's last `initialize` result, in `<dir>/proxy-<hash>.initialize.json` (no secrets in it). */
const fileCache = (file: string): Proxy.InitializeCache => ({
  get: Effect.sync(() => {
    try {
      return Option.some<unknown>(JSON.parse(NodeFs.readFileSync(file, "utf8")))
    } catch {
      return Option.none()
    }
  }),
  set: (result) =>
    Effect.sync(() => {
      try {
        NodeFs.mkdirSync(NodePath.dirname(file), { recursive: true, mode: 0o700 })
        const temp = `${file}.${process.pid}.tmp`
        NodeFs.writeFileSync(temp, JSON.stringify(result), { mode: 0o600 })
        NodeFs.renameSync(temp, file)
      } catch {
        // a cache: best effort
      }
    })
})

/**
 * The loggers of the proxy, in place of any installed before (stdout is the protocol): Info and up
 * on stderr; with a debug file, everything down to Debug there too.
 */
const loggers = (debugFile: string | undefined) => {
  const stderr = Logger.filterLogLevel(
    Logger.withConsoleError(Logger.logfmtLogger),
    LogLevel.greaterThanEqual(LogLevel.Info)
  )
  if (debugFile === undefined) {
    return Layer.scopedDiscard(Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(stderr)))
  }
  try {
    NodeFs.mkdirSync(NodePath.dirname(debugFile), { recursive: true, mode: 0o700 })
  } catch {
    // reported by the first write
  }
  const file = Logger.make(({ date, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : JSON.stringify(m))
    try {
      NodeFs.appendFileSync(debugFile, `${date.toISOString()} ${logLevel.label} ${text.join(" ")}\n`, { mode: 0o600 })
    } catch {
      // the log file is best effort
    }
  })
  return Layer.merge(
    Layer.scopedDiscard(Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(stderr, file))),
    Logger.minimumLogLevel(LogLevel.Debug)
  )
}

/** `--manual`: print the address (stderr) and wait on the loopback callback; never open a browser. */
const printOnly = Layer.succeed(Authorizer.BrowserOpener, {
  open: () =>
    Effect.fail(new Authorizer.BrowserOpenError({ detail: "--manual: open the address below in your browser" }))
})

/**
 * The `proxy` subcommand.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "proxy",
  {
    url: Args.text({ name: "url" }).pipe(Args.withDescription("The remote MCP server URL, e.g. https://api.example.com/mcp")),
    header: Options.text("header").pipe(
      Options.withDescription("An HTTP header for every request, \"Name: value\" (repeatable; ${ENV} is expanded)"),
      Options.repeated
    ),
    transport: Options.choice("transport", ["http-first", "sse-first", "http-only", "sse-only"]).pipe(
      Options.withDescription("Streamable HTTP, legacy HTTP+SSE, or one then the other"),
      Options.withDefault("http-first")
    ),
    callbackPort: Options.integer("callback-port").pipe(
      Options.withDescription("A fixed loopback port for the sign-in callback (default: the one the client registered, else any)"),
      Options.optional
    ),
    dir: Options.directory("dir").pipe(
      Options.withDescription("Credential directory, shared with the other commands and proxies (default: the per-user cache directory)"),
      Options.optional
    ),
    storage: Storage.option,
    scopes: Options.text("scopes").pipe(Options.withDescription("Space-separated scopes to request"), Options.optional),
    clientId: Options.text("client-id").pipe(Options.withDescription("A pre-registered client id"), Options.optional),
    clientSecret: Options.text("client-secret").pipe(
      Options.withDescription("The pre-registered client's secret (${ENV} is expanded; prefer --client-secret '${MY_SECRET}')"),
      Options.optional
    ),
    manual: Options.boolean("manual").pipe(
      Options.withDescription("Do not open a browser: print the sign-in address on stderr and wait for its callback")
    ),
    headless: Options.boolean("headless").pipe(
      Options.withDescription("Follow the authorization redirect without a browser (servers that approve without a user)")
    ),
    authTimeout: Options.integer("auth-timeout").pipe(
      Options.withDescription("Seconds to wait for the sign-in to finish (default 300)"),
      Options.optional
    ),
    retrySignInAfter: Options.integer("retry-sign-in-after").pipe(
      Options.withDescription(
        "After a failed sign-in, seconds during which requests get that failure instead of a new sign-in (default 60; 0: retry at once)"
      ),
      Options.optional
    ),
    initializeWait: Options.integer("initialize-wait").pipe(
      Options.withDescription(
        "Seconds the host's first initialize waits for the server before a provisional answer (default 10; a sign-in then goes on, and list_changed follows)"
      ),
      Options.optional
    ),
    allowHttp: Options.boolean("allow-http").pipe(
      Options.withDescription("Allow a plain-http server URL on a loopback host (local development only)")
    ),
    debug: Options.boolean("debug").pipe(
      Options.withDescription("Write a debug log (never secrets) to <dir>/proxy-<hash>.debug.log")
    )
  },
  (o) =>
    Effect.gen(function*() {
      const problem = checkServerUrl(o.url, o.allowHttp)
      if (problem !== undefined) return yield* new ProxyUsage({ message: problem })
      if (o.manual && o.headless) {
        return yield* new ProxyUsage({ message: "Choose one of --manual, --headless" })
      }
      const parsed = parseHeaders(o.header)
      if ("malformed" in parsed) {
        return yield* new ProxyUsage({ message: `Not a "Name: value" header: ${parsed.malformed}` })
      }
      const directory = Option.isSome(o.dir)
        ? o.dir.value
        : yield* Effect.orElseSucceed(TokenStorage.defaultDirectory, () => ".").pipe(Effect.provide(NodeContext.layer))
      const stem = NodePath.join(directory, stemOf(o.url))
      const debugFile = o.debug ? `${stem}.debug.log` : undefined
      const timeout = Option.getOrUndefined(Option.map(o.authTimeout, (s) => s * 1000))
      const authorizer = o.headless
        ? Authorizer.layerHeadless()
        : Authorizer.layerBrowser({
          ...(Option.isSome(o.callbackPort) ? { callbackPort: o.callbackPort.value } : {}),
          ...(timeout === undefined ? {} : { timeout })
        }).pipe(Layer.provide(o.manual ? printOnly : Layer.empty))
      const stores = Storage.layer(directory, o.storage)
      const oauth = OAuthLayer({
        mcpUrl: o.url,
        clientName: "effect-mcp-oauth proxy",
        ...(Option.isSome(o.scopes) ? { scopes: o.scopes.value } : {}),
        ...(Option.isSome(o.clientId) ? { clientId: o.clientId.value } : {}),
        ...(Option.isSome(o.clientSecret) ? { clientSecret: Redacted.make(expandEnv(o.clientSecret.value)) } : {}),
        ...(Option.isSome(o.callbackPort) ? { callbackPort: o.callbackPort.value } : {})
      }).pipe(
        Layer.provide(Layer.merge(stores, authorizer)),
        Layer.provide(Layer.unwrapEffect(
          // loaded when the proxy starts, not by every other command (nor by `--help`)
          Effect.map(Effect.promise(() => import("@effect/platform-node/NodeHttpClient")), (m) => m.layerUndici)
        ))
      )
      yield* Effect.gen(function*() {
        yield* Effect.logInfo(`proxy: forwarding stdio to ${o.url} (${o.transport})`)
        if (debugFile !== undefined) yield* Effect.logInfo(`proxy: debug log in ${debugFile}`)
        const host = yield* HostChannel.make()
        yield* Proxy.run({
          url: o.url,
          transport: o.transport,
          headers: parsed.headers,
          initializeCache: fileCache(`${stem}.initialize.json`),
          ...(Option.isSome(o.retrySignInAfter) ? { signInRetryAfter: Duration.seconds(Math.max(0, o.retrySignInAfter.value)) } : {}),
          ...(Option.isSome(o.initializeWait) ? { initializeWait: Duration.seconds(Math.max(0, o.initializeWait.value)) } : {})
        }, host)
      }).pipe(
        Effect.scoped,
        Effect.provide(oauth),
        // "Signing in …", "Signed in …", "refreshed" on stderr from SignInEvents (stdout is the protocol).
        Effect.provide(Progress.layer(o.headless ? "headless" : o.manual ? "manual" : "browser")),
        Effect.provide(loggers(debugFile))
      )
    })
).pipe(Command.withDescription("Serve a remote OAuth-protected MCP server on stdio, for hosts that only start stdio servers"))
