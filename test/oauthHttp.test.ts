/**
 * How the library reads answers from OAuth endpoints (src/internal/oauthHttp.ts), over loopback:
 * hostile bodies (deep nesting, secrets in a non-JSON body) give typed errors that never quote
 * the body.
 */
import { FetchHttpClient, HttpClient as HttpClientModule, HttpClientRequest } from "@effect/platform"
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Logger, LogLevel, Option, Redacted, Schema } from "effect"
import * as Discovery from "../src/Discovery.js"
import * as OAuthHttp from "../src/internal/oauthHttp.js"
import * as Registration from "../src/Registration.js"
import * as Revocation from "../src/Revocation.js"
import { AuthorizationServerMetadata, ClientInformation } from "../src/Schemas.js"
import * as TokenExchange from "../src/TokenExchange.js"
import { asMetadata, rawOAuthServer, type RawOAuthServer, type RecordedRequest, type Reply } from "./oauthRawServer.js"

const HttpClientTag = HttpClientModule.HttpClient

const REDIRECT = "http://127.0.0.1:33418/callback"

/** `n` bytes of `[[[…]]]`. */
const nestedArrays = (bytes: number): string => "[".repeat(bytes / 2) + "]".repeat(bytes / 2)

/** A JSON object whose `field` holds `bytes` of nested arrays. */
const nestedIn = (field: string, bytes: number): string => `{"${field}":${nestedArrays(bytes)}}`

const rawDiscovery = (server: RawOAuthServer): Discovery.DiscoveryResult => ({
  mcpUrl: `${server.url}/mcp`,
  protectedResource: Option.none(),
  resource: `${server.url}/mcp`,
  authorizationServer: Schema.decodeUnknownSync(AuthorizationServerMetadata)(
    asMetadata(server.url, { revocation_endpoint: `${server.url}/revoke` })
  ),
  issuer: server.url,
  legacy: false
})

const publicClient = (issuer: string) =>
  new ClientInformation({
    clientId: "client-1",
    tokenEndpointAuthMethod: "none",
    source: "preregistered",
    issuer,
    redirectUris: [REDIRECT]
  })

const codeGrant = { code: "the-code", codeVerifier: Redacted.make("v".repeat(43)), redirectUri: REDIRECT }

/** A body served as JSON text (the raw server would re-serialise a `json` reply). */
const jsonText = (text: string, status = 200): Reply => ({ status, text, contentType: "application/json" })

/** The one call of each OAuth endpoint, against `server` answering `reply` at that endpoint. */
type Endpoint = {
  readonly name: string
  readonly path: string
  readonly call: (server: RawOAuthServer) => Effect.Effect<unknown, unknown, HttpClient.HttpClient>
  /** Any other route the call needs, besides `path`. */
  readonly others?: (request: RecordedRequest, server: RawOAuthServer) => Reply | undefined
}

const endpoints: ReadonlyArray<Endpoint> = [
  {
    name: "protected-resource metadata",
    path: "/.well-known/oauth-protected-resource/mcp",
    call: (server) => Effect.flatMap(Discovery.make(), (d) => d.discover(`${server.url}/mcp`))
  },
  {
    name: "authorization-server metadata",
    path: "/.well-known/oauth-authorization-server",
    call: (server) => Effect.flatMap(Discovery.make(), (d) => d.discover(`${server.url}/mcp`)),
    others: (request, server) =>
      request.path === "/.well-known/oauth-protected-resource/mcp"
        ? { json: { resource: `${server.url}/mcp`, authorization_servers: [server.url] } }
        : undefined
  },
  {
    name: "token",
    path: "/token",
    call: (server) =>
      Effect.flatMap(TokenExchange.make(), (exchange) =>
        exchange.authorizationCode({
          ...codeGrant,
          discovery: rawDiscovery(server),
          client: publicClient(server.url)
        }))
  },
  {
    name: "registration",
    path: "/register",
    call: (server) =>
      Effect.flatMap(Registration.make(), (registration) =>
        registration.register({ discovery: rawDiscovery(server), redirectUri: REDIRECT }))
  },
  {
    name: "revocation",
    path: "/revoke",
    call: (server) =>
      Revocation.revoke({
        endpoint: `${server.url}/revoke`,
        token: Redacted.make("a-token"),
        client: publicClient(server.url)
      })
  }
]

/** Runs `endpoint` against a server answering `reply` there; the exit, never a defect. */
const exitOf = (endpoint: Endpoint, reply: Reply) =>
  Effect.scoped(
    Effect.gen(function*() {
      const server = yield* rawOAuthServer((request, s) =>
        request.path === endpoint.path ? reply : endpoint.others?.(request, s)
      )
      return yield* Effect.exit(endpoint.call(server))
    })
  ).pipe(Effect.provide(NodeHttpClient.layerUndici))

/** A value or a typed error, never a defect. */
const expectNoDefect = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isFailure(exit)) {
    expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause).slice(0, 500)).toBe(false)
    const failure = Cause.failureOption(exit.cause)
    expect(Option.isSome(failure)).toBe(true)
    // Our errors are tagged Schema errors: they serialise without a stack overflow too.
    expect(typeof JSON.stringify(Option.getOrUndefined(failure))).toBe("string")
  }
}

const expectTypedFailure = (exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isFailure(exit)).toBe(true)
  expectNoDefect(exit)
}

describe("deeply nested JSON from an OAuth endpoint is a typed error, never a defect (issue 10 item 2)", () => {
  for (const endpoint of endpoints) {
    for (const bytes of [10_000, 100_000, 1_000_000]) {
      it.effect(`${endpoint.name}: ${bytes} bytes of nested arrays (200 and 400)`, () =>
        Effect.gen(function*() {
          // RFC 7009 §2.2: a 200 from the revocation endpoint is success, whatever its body.
          const ok = endpoint.name === "revocation" ? expectNoDefect : expectTypedFailure
          ok(yield* exitOf(endpoint, jsonText(nestedArrays(bytes))))
          // A 4xx metadata document means "not published here" (try the next URL): a value is fine.
          expectNoDefect(yield* exitOf(endpoint, jsonText(nestedArrays(bytes), 400)))
          // Nested inside the field the schema reads first.
          const field = endpoint.name === "token"
            ? "access_token"
            : endpoint.name === "registration"
            ? "client_id"
            : endpoint.name === "revocation"
            ? "error"
            : endpoint.name === "protected-resource metadata"
            ? "resource"
            : "issuer"
          ok(yield* exitOf(endpoint, jsonText(nestedIn(field, bytes))))
          expectNoDefect(yield* exitOf(endpoint, jsonText(nestedIn(field, bytes), 400)))
        }), 60_000)
    }
  }
})

/** Runs `effect` with every log line (any level) captured; returns its exit and the lines. */
const withCapturedLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.make(({ cause, message }) => {
      lines.push(`${JSON.stringify(message)} ${Cause.pretty(cause)}`)
    })
    const exit = yield* Effect.exit(effect).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return { exit, lines }
  })

const SECRETS = ["SECRET-AT-4f9d", "SECRET-RT-77aa", "SECRET-CS-01bc"]

/** Everything a user, a log or a trace could see of a failure. */
const visibleText = (exit: Exit.Exit<unknown, unknown>, lines: ReadonlyArray<string>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  return [
    Cause.pretty(exit.cause),
    JSON.stringify(failure),
    String(failure),
    failure instanceof Error ? failure.message : "",
    ...lines
  ].join("\n")
}

describe("a token or registration body is never quoted in an error, its JSON or a log (issue 10 item 6)", () => {
  const bodies: ReadonlyArray<readonly [string, Reply]> = [
    [
      "a form-encoded 200 (GitHub style)",
      {
        text: `access_token=${SECRETS[0]}&refresh_token=${SECRETS[1]}&token_type=bearer`,
        contentType: "application/x-www-form-urlencoded"
      }
    ],
    ["a text/plain 200", { text: `client_id=c1&client_secret=${SECRETS[2]}` }],
    ["a JSON array of the secrets", { json: SECRETS }],
    ["a JSON object with a secret in a field of the wrong type", {
      json: { access_token: [SECRETS[0]], client_id: [SECRETS[2]], token_type: 1, refresh_token: SECRETS[1] }
    }],
    ["an empty access token beside a refresh token", {
      json: { access_token: "", token_type: "Bearer", refresh_token: SECRETS[1], client_secret: SECRETS[2] }
    }],
    ["a 201 form body", { status: 201, text: `client_id=c1&client_secret=${SECRETS[2]}` }]
  ]
  for (const endpoint of endpoints.filter((e) => e.name === "token" || e.name === "registration")) {
    for (const [what, reply] of bodies) {
      it.effect(`${endpoint.name}: ${what}`, () =>
        Effect.gen(function*() {
          const { exit, lines } = yield* withCapturedLogs(exitOf(endpoint, reply).pipe(Effect.flatten))
          expectTypedFailure(exit)
          const seen = visibleText(exit, lines)
          for (const secret of SECRETS) expect(seen).not.toContain(secret)
          // What it does say: the media type and the size, enough to diagnose.
          if (typeof reply === "object" && "text" in reply && reply.status === undefined) expect(seen).toMatch(/\d+ bytes/)
        }))
    }
  }
})

describe("OAuthHttp.execute reads a bounded body", () => {
  /** A loopback server answering every request with `answer`. */
  const rawServer = (answer: (res: import("node:http").ServerResponse) => void) =>
    Effect.acquireRelease(
      Effect.promise(async () => {
        const Http = await import("node:http")
        const server = Http.createServer((_req, res) => answer(res))
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        return { server, url: `http://127.0.0.1:${port}/token` }
      }),
      ({ server }) => Effect.sync(() => server.closeAllConnections()).pipe(Effect.zipRight(Effect.promise(() => new Promise((r) => server.close(r)))))
    )
  const execute = (url: string, maxBodyBytes: number) =>
    Effect.flatMap(
      HttpClientTag,
      (client) => OAuthHttp.execute(client, HttpClientRequest.get(url), { timeout: "3 seconds", maxBodyBytes })
    ).pipe(Effect.provide(NodeHttpClient.layerUndici))

  it.scopedLive("a declared Content-Length over the limit fails at once, before any of the body arrives", () =>
    Effect.gen(function*() {
      // headers only, then nothing: reading would wait for the timeout
      const { url } = yield* rawServer((res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": String(2 * 1024 * 1024) })
        res.flushHeaders()
      })
      const error = yield* Effect.flip(execute(url, 1024 * 1024))
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Decode", status: 200 })
      expect(error.message).toContain("larger than 1048576 bytes")
    }))

  it.scopedLive("a chunked body (no Content-Length) is counted as it arrives: over the limit fails, under it is read", () =>
    Effect.gen(function*() {
      const { url } = yield* rawServer((res) => {
        res.writeHead(200, { "content-type": "application/json" })
        const piece = " ".repeat(64 * 1024)
        for (let i = 0; i < 8; i++) res.write(piece)
        res.end("{}")
      })
      const over = yield* Effect.flip(execute(url, 256 * 1024))
      expect(over).toMatchObject({ _tag: "OAuthRequestError", reason: "Decode" })
      const fits = yield* execute(url, 1024 * 1024)
      expect(fits.text.length).toBe(8 * 64 * 1024 + 2)
      expect(fits.headers["content-length"]).toBeUndefined()
    }))
})

describe("OAuthHttp.execute and compressed bodies", () => {
  it.scopedLive("a gzip body whose declared length fits but whose inflated size does not fails as too large (fetch inflates it)", () =>
    Effect.gen(function*() {
      const Zlib = yield* Effect.promise(() => import("node:zlib"))
      const Http = yield* Effect.promise(() => import("node:http"))
      // 4 MiB of spaces inflate from ~4 KiB
      const bomb = Zlib.gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20))
      const server = Http.createServer((_req, res) => {
        res.writeHead(200, {
          "content-type": "application/json",
          "content-encoding": "gzip",
          "content-length": String(bomb.length)
        })
        res.end(bomb)
      })
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))),
        () =>
          Effect.promise(() =>
            new Promise((resolve) => {
              server.closeAllConnections()
              server.close(resolve)
            })
          )
      )
      const address = server.address()
      const url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/token`
      expect(bomb.length).toBeLessThan(1024 * 1024)
      const error = yield* Effect.flip(
        Effect.flatMap(
          HttpClientTag,
          (client) => OAuthHttp.execute(client, HttpClientRequest.get(url), { timeout: "5 seconds" })
        ).pipe(Effect.provide(FetchHttpClient.layer))
      )
      expect(error).toMatchObject({ _tag: "OAuthRequestError", reason: "Decode" })
      expect(error.message).toContain("larger than 1048576 bytes")
    }))
})
