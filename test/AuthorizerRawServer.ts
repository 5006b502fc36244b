/**
 * A raw node:http server on 127.0.0.1 for the Authorizer tests, closed with the scope. Used for
 * the answers a real authorization server is not meant to give (stray redirects, error pages,
 * silence).
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

export interface RawServer {
  readonly url: string
  readonly port: number
  /** Paths (with query) requested so far, in order. */
  readonly requests: Array<string>
}

export const rawServer = (
  handler: (req: Http.IncomingMessage, res: Http.ServerResponse, server: RawServer) => void
): Effect.Effect<RawServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly raw: RawServer }>((resume) => {
      const requests: Array<string> = []
      let raw: RawServer | undefined
      const server = Http.createServer((req, res) => {
        requests.push(req.url ?? "")
        if (raw !== undefined) handler(req, res, raw)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        raw = { url: `http://127.0.0.1:${port}`, port, requests }
        resume(Effect.succeed({ server, raw }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ raw }) => raw))

/** Resolves when a TCP connection to 127.0.0.1:port is refused (true) or accepted (false). */
export const connectionRefused = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const request = Http.get({ host: "127.0.0.1", port, path: "/callback", agent: false }, (res) => {
      res.resume()
      resume(Effect.succeed(false))
    })
    request.on("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code === "ECONNREFUSED")))
    request.setTimeout(5000, () => {
      request.destroy()
      resume(Effect.succeed(false))
    })
  })

/** A plain GET on loopback with node:http (no redirects), returning status, headers and body. */
export const httpGet = (
  url: string
): Effect.Effect<
  { readonly status: number; readonly headers: Http.IncomingHttpHeaders; readonly body: string },
  Error
> =>
  Effect.async((resume) => {
    const request = Http.get(url, { agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8")
        })))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
  })
