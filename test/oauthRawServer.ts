/**
 * A raw node:http server on 127.0.0.1 (port 0) for the Discovery / Registration / TokenExchange
 * module tests: it answers exactly what the test's route function says (including answers a real
 * authorization server is not meant to give) and records every request with its full body.
 * Closed with the scope.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

/** One request as received. Header names are lower-case. */
export interface RecordedRequest {
  readonly method: string
  /** Path without the query. */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: Http.IncomingHttpHeaders
  /** The raw body text. */
  readonly body: string
  /** The body parsed as `application/x-www-form-urlencoded`. */
  readonly form: URLSearchParams
  /** The body parsed as JSON, or `undefined`. */
  readonly json: unknown
}

/** What to answer: a JSON value (default status 200), a text body, or never answer. */
export type Reply =
  | { readonly status?: number; readonly json: unknown; readonly headers?: Record<string, string> }
  | {
    readonly status?: number
    readonly text: string
    readonly contentType?: string
    readonly headers?: Record<string, string>
  }
  | { readonly status: number; readonly headers?: Record<string, string> }
  | "hang"

export interface RawOAuthServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string
  readonly port: number
  /** Every request so far, in arrival order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** The paths requested so far, in order. */
  readonly paths: () => ReadonlyArray<string>
}

/** A 404 without body. */
export const notFound: Reply = { status: 404 }

/**
 * Starts a server whose answers come from `route`; `undefined` from `route` is a 404.
 */
export const rawOAuthServer = (
  route: (request: RecordedRequest, server: RawOAuthServer) => Reply | undefined
): Effect.Effect<RawOAuthServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly raw: RawOAuthServer }>((resume) => {
      const requests: Array<RecordedRequest> = []
      let raw: RawOAuthServer | undefined
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          let json: unknown = undefined
          try {
            json = body.length === 0 ? undefined : JSON.parse(body)
          } catch {
            json = undefined
          }
          const recorded: RecordedRequest = {
            method: req.method ?? "GET",
            path: url.pathname,
            query: url.searchParams,
            headers: req.headers,
            body,
            form: new URLSearchParams(body),
            json
          }
          requests.push(recorded)
          const reply = raw === undefined ? notFound : route(recorded, raw) ?? notFound
          if (reply === "hang") return
          const headers: Record<string, string> = { ...reply.headers }
          if ("json" in reply) {
            res.writeHead(reply.status ?? 200, { "content-type": "application/json", ...headers })
            res.end(JSON.stringify(reply.json))
          } else if ("text" in reply) {
            res.writeHead(reply.status ?? 200, { "content-type": reply.contentType ?? "text/plain", ...headers })
            res.end(reply.text)
          } else {
            res.writeHead(reply.status, headers)
            res.end()
          }
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        raw = {
          url: `http://127.0.0.1:${port}`,
          port,
          requests,
          paths: () => requests.map((r) => r.path)
        }
        resume(Effect.succeed({ server, raw }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ raw }) => raw))

/** A loopback port nothing listens on (a server is bound to it, then closed). */
export const deadPort: Effect.Effect<number> = Effect.scoped(
  Effect.map(rawOAuthServer(() => undefined), (s) => s.port)
)

/** RFC 8414 metadata for `issuer` with endpoints under it and S256. */
export const asMetadata = (issuer: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  registration_endpoint: `${issuer}/register`,
  response_types_supported: ["code"],
  code_challenge_methods_supported: ["S256"],
  ...extra
})
