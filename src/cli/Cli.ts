/**
 * The `effect-mcp-oauth` command line: sign in to an MCP server, list stored credentials, print
 * a valid access token for scripts, and sign out (RFC 7009 revocation, then local removal).
 * Credentials live in the file storage (encrypted when `MCP_OAUTH_STORAGE_KEY` or
 * `MCP_OAUTH_STORAGE_KEY_FILE` is set), or with `--storage keychain|auto` in the OS keychain,
 * coordinated with other processes by the file TokenLock.
 *
 * Exit codes: 0 ok, 1 error, 2 usage, 3 not signed in.
 *
 * @since 0.1.0
 */
import { Args, type CliApp, Command, Options } from "@effect/cli"
import * as Arr from "effect/Array"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Authorizer from "../Authorizer.js"
import * as Discovery from "../Discovery.js"
import { AuthorizationError, type OAuthError } from "../Errors.js"
import { OAuthLayer } from "../HttpAuth.js"
import * as OAuth from "../OAuth.js"
import * as DeviceCodeDisplay from "./DeviceCodeDisplay.js"
import * as Progress from "./Progress.js"
import * as Proxy from "./Proxy.js"
import * as Revocation from "../Revocation.js"
import * as Storage from "./Storage.js"
import type { StoredToken } from "../Schemas.js"
import * as TokenStorage from "../TokenStorage.js"

/**
 * The process exit codes of the CLI.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = { Ok: 0, Error: 1, Usage: 2, NotSignedIn: 3 } as const

/**
 * A failure that ends the CLI with a given exit code and message.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number; readonly message: string }> {}

// ---------------------------------------------------------------------------------------------
// shared options and environment
// ---------------------------------------------------------------------------------------------

const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON on stdout"))
const dir = Options.directory("dir").pipe(
  Options.withDescription("Credential directory (default: the per-user cache directory, e.g. ~/.cache/effect-mcp-oauth)"),
  Options.optional
)
const storage = Storage.option
const url = Args.text({ name: "url" }).pipe(Args.withDescription("The MCP server URL, e.g. https://api.example.com/mcp"))

const directoryOf = (d: Option.Option<string>) =>
  Option.match(d, {
    onNone: () => Effect.orElseSucceed(TokenStorage.defaultDirectory, () => "."),
    onSome: Effect.succeed
  })

const checkUrl = (u: string) =>
  URL.canParse(u) && /^https?:$/.test(new URL(u).protocol)
    ? Effect.succeed(u)
    : Effect.fail(new CliExit({ code: ExitCode.Usage, message: `Not an http(s) URL: ${u}` }))

/** The undici HTTP client, loaded only by the commands that talk to a server (not by `--help`). */
const undiciHttpClient = Layer.unwrapEffect(
  Effect.map(Effect.promise(() => import("@effect/platform-node/NodeHttpClient")), (m) => m.layerUndici)
)

const progress = (line: string) => Console.error(line)

const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const describeExpiry = (token: StoredToken, now: number): string => {
  if (token.expiresAt === undefined) return "no expiry"
  const left = Math.round((token.expiresAt - now) / 1000)
  const when = new Date(token.expiresAt).toISOString()
  return left > 0 ? `expires ${when} (in ${Duration.format(Duration.seconds(left))})` : `expired ${when}`
}

const notSignedIn = (server: string) =>
  new CliExit({
    code: ExitCode.NotSignedIn,
    message: `Not signed in to ${server}. Run: effect-mcp-oauth login ${server}`
  })

/** What `status` shows of one server: never a secret. */
const summary = (key: string, tokens: Option.Option<StoredToken>, clientId: Option.Option<string>, now: number) => ({
  server: key,
  signedIn: Option.isSome(tokens) && (tokens.value.refreshToken !== undefined || !tokens.value.isExpired(now)),
  issuer: Option.getOrNull(Option.map(tokens, (t) => t.issuer)),
  scopes: Option.getOrElse(Option.map(tokens, (t) => t.scopes), () => []),
  expiresAt: Option.getOrNull(Option.flatMap(tokens, (t) => Option.fromNullable(t.expiresAt))),
  expired: Option.match(tokens, { onNone: () => null, onSome: (t) => t.isExpired(now) }),
  refreshable: Option.match(tokens, { onNone: () => false, onSome: (t) => t.refreshToken !== undefined }),
  obtainedAt: Option.getOrNull(Option.map(tokens, (t) => t.obtainedAt)),
  clientId: Option.getOrNull(clientId)
})

// ---------------------------------------------------------------------------------------------
// login
// ---------------------------------------------------------------------------------------------

const loginCommand = Command.make(
  "login",
  {
    url,
    json,
    dir,
    storage,
    browser: Options.boolean("browser").pipe(Options.withDescription("Open the browser and wait on a loopback callback")),
    manual: Options.boolean("manual").pipe(
      Options.withDescription("Print the authorization URL and paste the redirect URL back (SSH, no display)")
    ),
    device: Options.boolean("device").pipe(
      Options.withDescription("Sign in on another device: show an address and a code, then wait (RFC 8628)")
    ),
    headless: Options.boolean("headless").pipe(
      Options.withDescription("Follow the authorization redirect without a browser (servers that approve without a user)")
    ),
    scopes: Options.text("scopes").pipe(Options.withDescription("Space-separated scopes to request"), Options.optional),
    clientId: Options.text("client-id").pipe(Options.withDescription("A pre-registered client id"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const server = yield* checkUrl(o.url)
      const modes = [o.browser && "browser", o.manual && "manual", o.device && "device", o.headless && "headless"]
        .filter((m) => m !== false)
      if (modes.length > 1) {
        return yield* new CliExit({
          code: ExitCode.Usage,
          message: `Choose one of --browser, --manual, --device, --headless (got ${modes.join(", ")})`
        })
      }
      const mode = o.browser ? "browser" : o.manual ? "manual" : o.headless ? "headless" : "auto"
      const directory = yield* directoryOf(o.dir)
      // The paste-back prompt goes to stderr and ends at end of input (Cancelled): stdout keeps the result.
      const authorizer = mode === "headless"
        ? Authorizer.layerHeadless()
        : Authorizer.layerAuto({ mode: mode === "auto" ? "auto" : mode })
      // The progress lines ("Signing in to …", "Signed in …") come from SignInEvents, as in a GUI.
      const token = yield* Effect.flatMap(OAuth.OAuth, (oauth) => oauth.login).pipe(
        Effect.provide(
          OAuthLayer({
            mcpUrl: server,
            // The address and the code (and a QR code on a terminal) go to stderr; stdout keeps the result.
            ...(o.device ? { grant: "device_code" as const } : {}),
            onDeviceCode: DeviceCodeDisplay.showOnStderr,
            ...(Option.isSome(o.scopes) ? { scopes: o.scopes.value } : {}),
            ...(Option.isSome(o.clientId) ? { clientId: o.clientId.value } : {})
          }).pipe(
            Layer.provide(Layer.merge(Storage.layer(directory, o.storage), authorizer)),
            Layer.provide(undiciHttpClient)
          )
        ),
        Effect.provide(Progress.layer(mode === "auto" ? "browser, or manual without a display" : mode))
      )
      const now = Date.now()
      const stored = yield* clientIdOf(directory, o.storage, TokenStorage.serverKey(server))
      if (o.json) {
        yield* printJson(summary(TokenStorage.serverKey(server), Option.some(token), stored, now))
      } else {
        yield* Console.log(
          `Signed in to ${server}\n  issuer  ${token.issuer}\n  scopes  ${token.scopes.join(" ") || "(none)"}\n  token   ${
            describeExpiry(token, now)
          }${token.refreshToken === undefined ? "" : ", refreshable"}`
        )
      }
    })
).pipe(Command.withDescription("Sign in to an MCP server and store the credentials"))

const clientIdOf = (directory: string, kind: Storage.StorageKind, key: string) =>
  Effect.flatMap(TokenStorage.TokenStorage, (s) => s.getClient(key)).pipe(
    Effect.map(Option.map((c) => c.clientId)),
    Effect.provide(Storage.layer(directory, kind))
  )

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

const statusCommand = Command.make(
  "status",
  { url: Args.text({ name: "url" }).pipe(Args.optional), json, dir, storage },
  (o) =>
    Effect.gen(function*() {
      const directory = yield* directoryOf(o.dir)
      const storage = yield* TokenStorage.TokenStorage
      const stored = yield* storage.keys
      const keys = Option.isSome(o.url)
        ? [TokenStorage.serverKey(yield* checkUrl(o.url.value))]
        : stored.filter((key) => !TokenStorage.isClientKey(key))
      const now = Date.now()
      const rows = yield* Effect.forEach(keys, (key) =>
        Effect.zipWith(storage.getTokens(key), storage.getClient(key), (t, c) =>
          summary(key, t, Option.map(c, (x) => x.clientId), now)))
      if (Option.isSome(o.url) && !rows[0]?.signedIn) {
        if (o.json) yield* printJson(rows)
        return yield* notSignedIn(keys[0]!)
      }
      if (o.json) return yield* printJson(rows)
      // The registrations shared by every server on one authorization server (kept on logout).
      const shared = Option.isSome(o.url) ? [] : Arr.getSomes(
        yield* Effect.forEach(stored.filter(TokenStorage.isClientKey), (key) => storage.getClient(key))
      )
      if (rows.length === 0 && shared.length === 0) {
        return yield* Console.log(`No stored credentials in ${Storage.describe(directory, o.storage)}`)
      }
      for (const c of shared) {
        yield* Console.log(`client ${c.clientId} at ${c.issuer} (${c.source}, shared by its servers)`)
      }
      for (const r of rows) {
        const expiry = r.expiresAt === null
          ? "no expiry"
          : `${r.expired === true ? "expired" : "expires"} ${new Date(r.expiresAt).toISOString()}`
        yield* Console.log(
          `${r.server}\n  ${r.signedIn ? "signed in" : "not signed in"}${r.refreshable ? " (refreshable)" : ""}, ${expiry}\n` +
            `  issuer  ${r.issuer ?? "-"}\n  scopes  ${r.scopes.join(" ") || "-"}\n  client  ${r.clientId ?? "-"}`
        )
      }
    }).pipe(Effect.provide(Layer.unwrapEffect(Effect.map(directoryOf(o.dir), (d) => Storage.layer(d, o.storage)))))
).pipe(Command.withDescription("List servers with stored credentials: expiry, scopes, client id (never secrets)"))

// ---------------------------------------------------------------------------------------------
// token
// ---------------------------------------------------------------------------------------------

/** An authorizer that never signs in: `token` must not open a browser behind a script's back. */
const noInteractiveSignIn = Layer.succeed(
  Authorizer.Authorizer,
  Authorizer.Authorizer.of({
    session: Effect.fail(
      new AuthorizationError({ reason: "Cancelled", detail: "a new sign-in is needed (run effect-mcp-oauth login)" })
    )
  })
)

const tokenCommand = Command.make(
  "token",
  { url, json, dir, storage },
  (o) =>
    Effect.gen(function*() {
      const server = yield* checkUrl(o.url)
      const directory = yield* directoryOf(o.dir)
      const key = TokenStorage.serverKey(server)
      const stored = yield* Effect.flatMap(TokenStorage.TokenStorage, (s) => s.getTokens(key)).pipe(
        Effect.provide(Storage.layer(directory, o.storage))
      )
      const now = Date.now()
      if (Option.isNone(stored) || (stored.value.refreshToken === undefined && stored.value.isExpired(now))) {
        return yield* notSignedIn(server)
      }
      const result = yield* Effect.gen(function*() {
        const oauth = yield* OAuth.OAuth
        const access = yield* oauth.accessToken
        const current = yield* oauth.tokens
        return { access, current }
      }).pipe(
        Effect.provide(
          OAuthLayer({ mcpUrl: server }).pipe(
            Layer.provide(Layer.merge(Storage.layer(directory, o.storage), noInteractiveSignIn)),
            Layer.provide(undiciHttpClient)
          )
        ),
        Effect.provide(Progress.layer("token")),
        Effect.catchIf(
          (e): e is AuthorizationError => e._tag === "AuthorizationError" && e.reason === "Cancelled",
          () => Effect.fail(notSignedIn(server))
        )
      )
      if (o.json) {
        return yield* printJson({
          access_token: Redacted.value(result.access),
          token_type: Option.getOrElse(Option.map(result.current, (t) => t.tokenType), () => "Bearer"),
          expires_at: Option.getOrNull(Option.flatMap(result.current, (t) => Option.fromNullable(t.expiresAt)))
        })
      }
      if (Option.exists(result.current, (t) => t.tokenType === "DPoP")) {
        // RFC 9449 §7.1: without a proof of its key the server refuses it; stdout stays the token.
        yield* Console.error(
          "This token is DPoP-bound (RFC 9449): a server accepts it only as `Authorization: DPoP` with a proof " +
            "signed by the key stored with it, not as a Bearer token. Use `effect-mcp-oauth proxy` or the fetch bridge."
        )
      }
      yield* Console.log(Redacted.value(result.access))
    })
).pipe(Command.withDescription("Print a valid access token (refreshed if needed) for scripts: TOKEN=$(effect-mcp-oauth token URL)"))

// ---------------------------------------------------------------------------------------------
// logout
// ---------------------------------------------------------------------------------------------

interface LogoutResult {
  readonly server: string
  readonly revoked: ReadonlyArray<"refresh_token" | "access_token">
  readonly warnings: ReadonlyArray<string>
  readonly clientDeleted?: boolean | undefined
}

/**
 * Revokes what can be revoked (RFC 7009), with `forgetClient` deletes the client registration
 * at the authorization server (RFC 7592 §2.3), then clears the server's credentials.
 */
const logoutOne = (key: string, forgetClient: boolean) =>
  Effect.map(Revocation.signOut(key, { deleteClient: forgetClient }), (r): LogoutResult => ({ server: key, ...r }))

const logoutCommand = Command.make(
  "logout",
  {
    url: Args.text({ name: "url" }).pipe(Args.optional),
    all: Options.boolean("all").pipe(Options.withDescription("Sign out of every server with stored credentials")),
    forgetClient: Options.boolean("forget-client").pipe(
      Options.withDescription(
        "Also delete the registered client at the authorization server (RFC 7592), when it allows that"
      )
    ),
    json,
    dir,
    storage
  },
  (o) =>
    Effect.gen(function*() {
      if (o.all === Option.isSome(o.url)) {
        return yield* new CliExit({ code: ExitCode.Usage, message: "Give either a server URL or --all" })
      }
      const storage = yield* TokenStorage.TokenStorage
      const stored = yield* storage.keys
      // A registration shared by every server on one authorization server stays unless --forget-client.
      const keys = Option.isSome(o.url)
        ? [TokenStorage.serverKey(yield* checkUrl(o.url.value))]
        : stored.filter((key) => !TokenStorage.isClientKey(key))
      if (Option.isSome(o.url)) {
        const has = Option.isSome(yield* storage.getTokens(keys[0]!)) || Option.isSome(yield* storage.getClient(keys[0]!))
        if (!has) return yield* notSignedIn(keys[0]!)
      }
      const signedOut = yield* Effect.forEach(keys, (key) => logoutOne(key, o.forgetClient))
      const remaining = o.all && o.forgetClient ? yield* storage.keys : []
      const forgotten = yield* Effect.forEach(
        remaining.filter(TokenStorage.isClientKey),
        (key) => logoutOne(key, true)
      )
      const results = [...signedOut, ...forgotten]
      for (const r of results) for (const w of r.warnings) yield* progress(`warning: ${r.server}: ${w}`)
      if (o.json) return yield* printJson(results)
      if (results.length === 0) return yield* Console.log("No stored credentials")
      for (const r of results) {
        yield* Console.log(
          `Signed out of ${r.server}${r.revoked.length === 0 ? "" : ` (revoked: ${r.revoked.join(", ")})`}` +
            (r.clientDeleted === true ? "; client deleted at the authorization server" : "")
        )
      }
    }).pipe(
      Effect.provide(
        Layer.merge(
          Layer.unwrapEffect(Effect.map(directoryOf(o.dir), (d) => Storage.layer(d, o.storage))),
          Discovery.layer().pipe(Layer.provideMerge(undiciHttpClient))
        )
      )
    )
).pipe(Command.withDescription("Revoke (RFC 7009) and remove the credentials of a server, or of all with --all"))

// ---------------------------------------------------------------------------------------------
// the app
// ---------------------------------------------------------------------------------------------

/**
 * The root command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("effect-mcp-oauth").pipe(
  Command.withDescription("OAuth 2.1 credentials for MCP servers: sign in, inspect, print tokens, sign out"),
  Command.withSubcommands([loginCommand, statusCommand, tokenCommand, logoutCommand, Proxy.command])
)

const cli = Command.run(command, { name: "effect-mcp-oauth", version: "0.1.0" })

const isOAuthFailure = (e: unknown): e is OAuthError =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" && e instanceof Error

const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g
const withoutAnsi = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((a) => (typeof a === "string" ? a.replace(ANSI_ESCAPE, "") : a))

/**
 * The console with colour only where it is wanted: @effect/cli always styles its help and usage
 * errors; the escapes are dropped from a stream that is not a terminal, or everywhere when
 * `NO_COLOR` is set to anything but the empty string (https://no-color.org).
 */
const colourAware = (console: Console.Console): Effect.Effect<Console.Console> =>
  Effect.map(Config.withDefault(Config.string("NO_COLOR"), "").pipe(Effect.orElseSucceed(() => "")), (noColor) => {
    const stdoutColour = noColor === "" && process.stdout.isTTY === true
    const stderrColour = noColor === "" && process.stderr.isTTY === true
    const out = (args: ReadonlyArray<unknown>) => (stdoutColour ? args : withoutAnsi(args))
    const err = (args: ReadonlyArray<unknown>) => (stderrColour ? args : withoutAnsi(args))
    return {
      ...console,
      log: (...args) => console.log(...out(args)),
      info: (...args) => console.info(...out(args)),
      error: (...args) => console.error(...err(args)),
      warn: (...args) => console.warn(...err(args)),
      unsafe: {
        ...console.unsafe,
        log: (...args) => console.unsafe.log(...out(args)),
        info: (...args) => console.unsafe.info(...out(args)),
        error: (...args) => console.unsafe.error(...err(args)),
        warn: (...args) => console.unsafe.warn(...err(args))
      }
    }
  })

/**
 * Runs the CLI on `argv` (without the node and script paths) and returns the exit code:
 * 0 ok, 1 error, 2 usage, 3 not signed in. Errors and log lines are printed on stderr; colour
 * only on a terminal and without `NO_COLOR`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  Effect.flatMap(Effect.flatMap(Effect.console, colourAware), (console) =>
    Effect.withConsole(runWith(argv).pipe(Effect.provide(logsOnStderr)), console))

/** The library's log lines (e.g. "Registered client …") go to stderr: stdout is the result. */
const logsOnStderr = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))

const runWith = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  cli(["node", "effect-mcp-oauth", ...argv]).pipe(
    Effect.as<number>(ExitCode.Ok),
    Effect.catchAll((e) => {
      if (e instanceof CliExit) return Effect.as(Console.error(e.message), e.code)
      if (e instanceof Proxy.ProxyUsage) return Effect.as(Console.error(e.message), ExitCode.Usage)
      if (typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" && e._tag in validationTags) {
        return Effect.succeed(ExitCode.Usage) // @effect/cli printed the problem and the usage
      }
      return Effect.as(Console.error(`error: ${isOAuthFailure(e) ? e.message : String(e)}`), ExitCode.Error)
    })
  )

const validationTags: Readonly<Record<string, true>> = {
  CommandMismatch: true,
  CorrectedFlag: true,
  HelpRequested: true,
  InvalidArgument: true,
  InvalidValue: true,
  MissingValue: true,
  MissingFlag: true,
  MultipleValuesDetected: true,
  MissingSubcommand: true,
  NoBuiltInMatch: true,
  UnclusteredFlag: true
}

