/**
 * JSON-RPC 2.0 messages as `Schema`s, the framing every MCP transport carries. Decoded messages
 * get a `_tag` ("Request" | "Notification" | "Success" | "Failure") that is not on the wire.
 *
 * @see https://www.jsonrpc.org/specification
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#messages
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Describe from "./internal/describe.js"
import { McpTransportError } from "./McpErrors.js"

/**
 * A request id: a string or an integer (MCP forbids `null`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#requests
 * @since 0.1.0
 * @category schemas
 */
export const RequestId = Schema.Union(Schema.String, Schema.Number)

/**
 * @since 0.1.0
 * @category models
 */
export type RequestId = typeof RequestId.Type

const Version = Schema.Literal("2.0")

/**
 * A request: `{ jsonrpc: "2.0", id, method, params? }`.
 *
 * @see https://www.jsonrpc.org/specification#request_object
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcRequest = Schema.Struct({
  jsonrpc: Version,
  id: RequestId,
  method: Schema.String,
  params: Schema.optional(Schema.Unknown)
}).pipe(Schema.attachPropertySignature("_tag", "Request"))

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcRequest = typeof JsonRpcRequest.Type

/**
 * A notification: a request without an `id`, which gets no answer.
 *
 * @see https://www.jsonrpc.org/specification#notification
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcNotification = Schema.Struct({
  jsonrpc: Version,
  method: Schema.String,
  params: Schema.optional(Schema.Unknown)
}).pipe(Schema.attachPropertySignature("_tag", "Notification"))

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcNotification = typeof JsonRpcNotification.Type

/**
 * A successful response: `{ jsonrpc: "2.0", id, result }`.
 *
 * @see https://www.jsonrpc.org/specification#response_object
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcSuccess = Schema.Struct({
  jsonrpc: Version,
  id: RequestId,
  result: Schema.Unknown.pipe(Schema.filter((value) => value === undefined ? "result is missing" : true))
}).pipe(Schema.attachPropertySignature("_tag", "Success"))

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcSuccess = typeof JsonRpcSuccess.Type

/**
 * The error object of a failed response.
 *
 * @see https://www.jsonrpc.org/specification#error_object
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcErrorObject = Schema.Struct({
  code: Schema.Number,
  message: Schema.String,
  data: Schema.optional(Schema.Unknown)
})

/**
 * A failed response: `{ jsonrpc: "2.0", id, error: { code, message, data? } }`; `id` is `null`
 * when the peer could not read the request's id.
 *
 * @see https://www.jsonrpc.org/specification#response_object
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcFailure = Schema.Struct({
  jsonrpc: Version,
  id: Schema.NullOr(RequestId),
  error: JsonRpcErrorObject
}).pipe(Schema.attachPropertySignature("_tag", "Failure"))

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcFailure = typeof JsonRpcFailure.Type

/**
 * Any single JSON-RPC message.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#messages
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcMessage = Schema.Union(JsonRpcRequest, JsonRpcNotification, JsonRpcSuccess, JsonRpcFailure)

/**
 * @since 0.1.0
 * @category models
 */
export type JsonRpcMessage = typeof JsonRpcMessage.Type

/**
 * A response of either kind.
 *
 * @see https://www.jsonrpc.org/specification#response_object
 * @since 0.1.0
 * @category models
 */
export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure

/**
 * One message or a batch (batches were allowed by the 2025-03-26 revision; receivers accept them).
 *
 * @see https://modelcontextprotocol.io/specification/2025-03-26/basic#batching
 * @since 0.1.0
 * @category schemas
 */
export const JsonRpcPayload = Schema.Union(JsonRpcMessage, Schema.NonEmptyArray(JsonRpcMessage))

const decodeMessage = Schema.decodeUnknownEither(JsonRpcMessage, { onExcessProperty: "preserve" })
const decodeBatch = Schema.decodeUnknownEither(Schema.NonEmptyArray(JsonRpcMessage), { onExcessProperty: "preserve" })
const encodeMessage = Schema.encodeSync(JsonRpcMessage)

/**
 * The common answer, `{ "jsonrpc": "2.0", "id": 1, "result": … }` and nothing that could make
 * it another member of the union, checked without the schema (what `JsonRpcMessage` would decode
 * it to: unknown fields kept); anything else goes through the schema.
 */
const plainSuccess = (value: unknown): JsonRpcSuccess | undefined => {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) || !("jsonrpc" in value) ||
    value.jsonrpc !== "2.0" || !("id" in value) || !("result" in value) || "method" in value || "error" in value ||
    "_tag" in value
  ) return undefined
  const { id, result } = value
  if ((typeof id !== "string" && typeof id !== "number") || result === undefined) return undefined
  return { ...value, _tag: "Success", jsonrpc: "2.0", id, result }
}

const excerpt = (text: string): string => text.length > 200 ? `${text.slice(0, 200)}…` : text

/**
 * Decode an already-parsed JSON value (one message or a batch) into messages, or fail with a
 * `Decode` transport error.
 *
 * @see https://www.jsonrpc.org/specification#batch
 * @since 0.1.0
 * @category decoding
 */
export const decodeValue = (value: unknown): Effect.Effect<ReadonlyArray<JsonRpcMessage>, McpTransportError> => {
  const success = plainSuccess(value)
  if (success !== undefined) return Effect.succeed([success])
  let result: Either.Either<ReadonlyArray<JsonRpcMessage>, ParseResult.ParseError | undefined>
  try {
    result = Array.isArray(value)
      ? decodeBatch(value)
      : Either.map(decodeMessage(value), (message) => [message])
  } catch {
    // Schema.Union converts a discriminant with `String(…)`, which throws for an object whose
    // `toString` is not callable (`{"jsonrpc":{"toString":null}}`) or nests too deep: outside
    // input, so a Decode error, never a defect.
    result = Either.left(undefined)
  }
  return Either.match(result, {
    onLeft: (error) => {
      const { cause } = error === undefined ? { cause: undefined } : Describe.parseError(error)
      return Effect.fail(
        new McpTransportError({
          reason: "Decode",
          description: `Not a JSON-RPC 2.0 message: ${excerpt(Describe.stringify(value))}`,
          ...(cause === undefined ? {} : { cause })
        })
      )
    },
    onRight: Effect.succeed
  })
}

/**
 * Parse JSON text and decode it into messages, or fail with a `Decode` transport error.
 *
 * @see https://www.jsonrpc.org/specification#batch
 * @since 0.1.0
 * @category decoding
 */
export const decodeText = (text: string): Effect.Effect<ReadonlyArray<JsonRpcMessage>, McpTransportError> =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: () =>
      new McpTransportError({
        reason: "Decode",
        description: `Invalid JSON: ${excerpt(text)}`
      })
  }).pipe(Effect.flatMap(decodeValue))

/**
 * Encode a message to its wire JSON text (drops the `_tag`).
 *
 * @see https://www.jsonrpc.org/specification
 * @since 0.1.0
 * @category encoding
 */
export const encode = (message: JsonRpcMessage): string => JSON.stringify(wire(message))

/**
 * The wire object of a message, as `JsonRpcMessage`'s encoder makes it (no `_tag`, no other
 * fields) but without running the schema: a message is built by the constructors below or
 * decoded, so only what the encoder would refuse needs checking.
 */
const wire = (message: JsonRpcMessage): object => {
  switch (message._tag) {
    case "Request":
      return message.params === undefined
        ? { jsonrpc: "2.0", id: message.id, method: message.method }
        : { jsonrpc: "2.0", id: message.id, method: message.method, params: message.params }
    case "Notification":
      return message.params === undefined
        ? { jsonrpc: "2.0", method: message.method }
        : { jsonrpc: "2.0", method: message.method, params: message.params }
    case "Success":
      // the schema's rule: a response without a result is not one
      return message.result === undefined ? encodeMessage(message) : {
        jsonrpc: "2.0",
        id: message.id,
        result: message.result
      }
    case "Failure":
      return encodeMessage(message)
  }
}

/**
 * Encode a message to its wire JSON text, or fail with a `Protocol` transport error when it
 * cannot be (a value nested deeper than the encoder's stack, a `BigInt`, a cycle).
 *
 * @see https://www.jsonrpc.org/specification
 * @since 0.1.0
 * @category encoding
 */
export const encodeText = (message: JsonRpcMessage): Effect.Effect<string, McpTransportError> =>
  Effect.try({
    try: () => encode(message),
    catch: (cause) =>
      new McpTransportError({
        reason: "Protocol",
        description: `The ${
          message._tag === "Request" || message._tag === "Notification" ? `${message.method} message` : "response"
        } cannot be encoded as JSON: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

/**
 * Build a request message.
 *
 * @see https://www.jsonrpc.org/specification#request_object
 * @since 0.1.0
 * @category constructors
 */
export const request = (id: RequestId, method: string, params?: unknown): JsonRpcRequest =>
  params === undefined
    ? { _tag: "Request", jsonrpc: "2.0", id, method }
    : { _tag: "Request", jsonrpc: "2.0", id, method, params }

/**
 * Build a notification message.
 *
 * @see https://www.jsonrpc.org/specification#notification
 * @since 0.1.0
 * @category constructors
 */
export const notification = (method: string, params?: unknown): JsonRpcNotification =>
  params === undefined
    ? { _tag: "Notification", jsonrpc: "2.0", method }
    : { _tag: "Notification", jsonrpc: "2.0", method, params }

/**
 * Build a success message.
 *
 * @see https://www.jsonrpc.org/specification#response_object
 * @since 0.1.0
 * @category constructors
 */
export const success = (id: RequestId, result: unknown): JsonRpcSuccess => ({
  _tag: "Success",
  jsonrpc: "2.0",
  id,
  result
})

/**
 * Build a failure message.
 *
 * @see https://www.jsonrpc.org/specification#error_object
 * @since 0.1.0
 * @category constructors
 */
export const failure = (
  id: RequestId | null,
  error: { readonly code: number; readonly message: string; readonly data?: unknown }
): JsonRpcFailure => ({
  _tag: "Failure",
  jsonrpc: "2.0",
  id,
  error: error.data === undefined ? { code: error.code, message: error.message } : error
})
