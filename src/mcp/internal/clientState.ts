/**
 * The MCP client's model, shared by the steps `McpClient.make` wires together: the error union,
 * per-request options, handlers, and the mutable state of one client (pending requests, the
 * current session). `McpClient` re-exports the public types.
 *
 * @internal
 */
import type * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import type * as ParseResult from "effect/ParseResult"
import type * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { OAuthError } from "../../Errors.js"
import { isOAuthError } from "../../HttpAuth.js"
import type { JsonRpcNotification, RequestId } from "../JsonRpc.js"
import { McpError, McpTransportError } from "../McpErrors.js"
import * as McpSchema from "../McpSchema.js"
import type { McpTransport } from "../McpTransport.js"
import * as Describe from "./describe.js"

/** See `McpClient.McpClientError`. @internal */
export type McpClientError = McpError | McpTransportError | OAuthError

/** See `McpClient.RequestOptions`. @internal */
export interface RequestOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly onProgress?: ((progress: McpSchema.ProgressParams) => Effect.Effect<void>) | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** See `McpClient.McpClientHandlers`. @internal */
export interface McpClientHandlers {
  readonly elicitation?:
    | ((params: McpSchema.ElicitRequestParams) => Effect.Effect<McpSchema.ElicitResult, McpError>)
    | undefined
  readonly sampling?:
    | ((params: McpSchema.CreateMessageRequestParams) => Effect.Effect<McpSchema.CreateMessageResult, McpError>)
    | undefined
  readonly roots?: {
    readonly list: Effect.Effect<ReadonlyArray<McpSchema.Root>, McpError>
    readonly listChanged?: boolean | undefined
  } | undefined
}

/** The handshake of the current session. @internal */
export interface Session {
  readonly initializeResult: McpSchema.InitializeResult
  readonly protocolVersion: McpSchema.ProtocolVersion
}

/**
 * One client's state. `session` and `stateless` change when a session restarts or a stateless
 * server asks for another version; everything else is fixed at `make`.
 *
 * @internal
 */
export interface ClientState {
  readonly transport: McpTransport
  /** The client's scope: background fibers (the reader, answers, cancellations) live in it. */
  readonly scope: Scope.Scope
  readonly defaultTimeout: Duration.DurationInput
  readonly handlers: McpClientHandlers
  /** Requests awaiting their answer, by id. */
  readonly pending: Map<RequestId, Deferred.Deferred<unknown, McpClientError>>
  /** Progress callbacks, by progress token (= the request id). */
  readonly progress: Map<RequestId, (progress: McpSchema.ProgressParams) => Effect.Effect<void>>
  /** Answers being computed to server→client requests, by id (a `notifications/cancelled` interrupts them). */
  readonly running: Map<RequestId, Fiber.RuntimeFiber<void>>
  readonly notifications: PubSub.PubSub<JsonRpcNotification>
  /** Set once the connection died: every later request fails with it. */
  closed: McpTransportError | undefined
  nextId: number
  /** The current session's handshake (replaced when the server ends a session and a new one starts). */
  session: Session | undefined
  /** The `_meta` every request carries on a stateless (SEP-2575) session; `undefined` when stateful. */
  stateless: Record<string, unknown> | undefined
  /** Bumped by every fresh `initialize` after the first; a 404 seen in an older session needs no new one. */
  sessionGeneration: number
}

/**
 * What `McpClient` fails with for a transport error: the OAuth error itself when obtaining a
 * token failed, the transport error otherwise.
 *
 * @internal
 */
export const surface = (error: McpClientError): McpClientError =>
  error._tag === "McpTransportError" && error.reason === "Authorization" && isOAuthError(error.cause)
    ? error.cause
    : error

/** @internal */
export const decodeOptions = { onExcessProperty: "preserve" } as const

/**
 * A decoder of `what` that fails with a `Decode` transport error. The parser is built once, here,
 * and runs synchronously; a schema it cannot run that way (an async transformation) or input
 * it throws on goes through `Schema.decodeUnknown` instead.
 *
 * @internal
 */
export const decodeWith = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decodeSync = Schema.decodeUnknownEither(schema, decodeOptions)
  const decode = Schema.decodeUnknown(schema, decodeOptions)
  const fail = (error: ParseResult.ParseError) => {
    const { text, cause } = Describe.parseError(error)
    return new McpTransportError({
      reason: "Decode",
      description: `Unexpected ${what}: ${text}`,
      ...(cause === undefined ? {} : { cause })
    })
  }
  return (value: unknown): Effect.Effect<A, McpTransportError> => {
    let result: Either.Either<A, ParseResult.ParseError>
    try {
      result = decodeSync(value)
    } catch {
      return Effect.mapError(decode(value), fail)
    }
    return Either.isRight(result) ? Effect.succeed(result.right) : Effect.fail(fail(result.left))
  }
}

/** `params` with `extra` merged into its `_meta`. @internal */
export const withParams = (params: unknown, extra: Record<string, unknown>): Record<string, unknown> => {
  const base = typeof params === "object" && params !== null ? { ...params } : {}
  const meta = "_meta" in base && typeof base._meta === "object" && base._meta !== null ? base._meta : {}
  return { ...base, _meta: { ...meta, ...extra } }
}

/** Whether `version` is a stateless (SEP-2575) revision. @internal */
export const isStateless = (version: string): boolean =>
  McpSchema.STATELESS_PROTOCOL_VERSIONS.some((v) => v === version)

/** @internal */
export const invalidParams = (method: string) => (error: ParseResult.ParseError) =>
  new McpError({
    code: McpError.InvalidParams,
    message: `Invalid params for ${method}: ${Describe.parseError(error).text}`
  })
