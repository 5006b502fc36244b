/**
 * Typed errors of the MCP client: a JSON-RPC error answered by the peer (`McpError`) and every
 * way the transport below it can fail (`McpTransportError`).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A JSON-RPC 2.0 error object received in answer to a request (or raised by a handler of a
 * server→client request, to be sent back as one).
 *
 * @see https://www.jsonrpc.org/specification#error_object
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic#responses
 * @since 0.1.0
 * @category errors
 */
export class McpError extends Schema.TaggedError<McpError>("effect-mcp-oauth/McpError")("McpError", {
  code: Schema.Number,
  message: Schema.String,
  data: Schema.optional(Schema.Unknown)
}) {
  /**
   * `-32700`: invalid JSON was received.
   *
   * @see https://www.jsonrpc.org/specification#error_object
   */
  static readonly ParseError = -32700
  /** `-32600`: the JSON sent is not a valid request object. */
  static readonly InvalidRequest = -32600
  /** `-32601`: the method does not exist or is not available. */
  static readonly MethodNotFound = -32601
  /** `-32602`: invalid method parameters. */
  static readonly InvalidParams = -32602
  /** `-32603`: internal JSON-RPC error. */
  static readonly InternalError = -32603
  /** SEP-2575: the server does not support the requested protocol version; `data.supported` lists those it does. */
  static readonly UnsupportedProtocolVersion = -32022
  /** SEP-2243: the HTTP headers do not match the body, or required headers are missing. */
  static readonly HeaderMismatch = -32001
}

/**
 * Why a transport failed:
 * - `Http`: an HTTP status outside 2xx (an HTML error page, a 5xx, a refused session…);
 * - `Protocol`: the peer broke the MCP / JSON-RPC / SSE contract (wrong content type, a body
 *   with no response for the request, an unexpected message);
 * - `Decode`: a message or a result that is not valid JSON / JSON-RPC / the expected schema;
 * - `Closed`: the connection, stream or process ended before the answer arrived, or the client
 *   is already closed;
 * - `Timeout`: no answer within the request timeout;
 * - `Spawn`: a stdio server process could not be started;
 * - `SessionExpired`: the server answered 404 to a request carrying `Mcp-Session-Id` (the
 *   client starts a new session and retries once; this is the second 404);
 * - `UnsupportedVersion`: the server chose a protocol version this client does not speak;
 * - `Authorization`: obtaining a token failed (sign-in denied or timed out, registration,
 *   discovery…); `cause` is the typed OAuth error. `McpClient` fails with that OAuth error itself;
 *   this reason is seen only below it, on a transport used directly.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category errors
 */
export const McpTransportErrorReason = Schema.Literal(
  "Http",
  "Protocol",
  "Decode",
  "Closed",
  "Timeout",
  "Spawn",
  "SessionExpired",
  "UnsupportedVersion",
  "Authorization"
)

/**
 * @since 0.1.0
 * @category errors
 */
export type McpTransportErrorReason = typeof McpTransportErrorReason.Type

/**
 * A failure below JSON-RPC: HTTP, SSE, process or decoding trouble. `status` is the HTTP status
 * when there was one.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
 * @since 0.1.0
 * @category errors
 */
export class McpTransportError
  extends Schema.TaggedError<McpTransportError>("effect-mcp-oauth/McpTransportError")("McpTransportError", {
    reason: McpTransportErrorReason,
    description: Schema.String,
    status: Schema.optional(Schema.Number),
    cause: Schema.optional(Schema.Defect)
  })
{
  override get message(): string {
    return `MCP transport error (${this.reason}${this.status === undefined ? "" : ` ${this.status}`}): ${this.description}`
  }
}

/**
 * Why a skill file was refused (SEP-2640, "Integrity and verification"):
 * - `Size`: the byte length read differs from the `size` of the file's entry;
 * - `Digest`: the SHA-256 of the bytes read differs from the entry's `digest` (or the digest is
 *   not `sha256:{64 hex}`);
 * - `Frontmatter`: the SKILL.md read has no YAML frontmatter, or its frontmatter differs, field by
 *   field, from the `frontmatter` of the skill's entry;
 * - `NotListed`: the file is not among the `resources` of the skill's entry;
 * - `Content`: `resources/read` returned no text or blob for the file.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category errors
 */
export const SkillVerificationReason = Schema.Literal("Size", "Digest", "Frontmatter", "NotListed", "Content")

/**
 * @since 0.1.0
 * @category errors
 */
export type SkillVerificationReason = typeof SkillVerificationReason.Type

/**
 * A skill file that failed verification against the skill's listed entry (MCP skills
 * extension, SEP-2640): its content was not used. `skill` is the skill's SKILL.md URI, `uri` the
 * file read; `expected` / `actual` are the listed and observed values when there are any.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category errors
 */
export class SkillVerificationError
  extends Schema.TaggedError<SkillVerificationError>("effect-mcp-oauth/SkillVerificationError")(
    "SkillVerificationError",
    {
      reason: SkillVerificationReason,
      skill: Schema.String,
      uri: Schema.String,
      description: Schema.String,
      expected: Schema.optional(Schema.Unknown),
      actual: Schema.optional(Schema.Unknown)
    }
  )
{
  override get message(): string {
    return `Skill file ${this.uri} failed verification (${this.reason}): ${this.description}`
  }
}
