/**
 * HTTP request metadata of the Streamable HTTP transport (SEP-2243): the standard `Mcp-Method` /
 * `Mcp-Name` headers, tool parameters mirrored into `Mcp-Param-{Name}` headers as a tool's
 * `x-mcp-header` annotations ask, and the value encoding (plain ASCII, else
 * `=?base64?…?=`).
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#request-metadata
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"

/**
 * The JSON Schema types an `x-mcp-header` parameter may have (`number` is not permitted).
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#schema-extension
 * @since 0.1.0
 * @category models
 */
export type ParamType = "string" | "integer" | "boolean"

/**
 * One parameter mirrored into a header: `Mcp-Param-{name}` carries the argument at `path`
 * (property names from the top of `arguments`; annotations may sit at any nesting depth).
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#custom-headers-from-tool-parameters
 * @since 0.1.0
 * @category models
 */
export interface ParamHeader {
  readonly name: string
  readonly path: ReadonlyArray<string>
  readonly type: ParamType | undefined
}

const SENTINEL = /^=\?base64\?.*\?=$/
/** RFC 9110 §5.1 field-name: `1*tchar`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isPlain = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code > 0x7e) return false
  }
  return value === value.trim() && !SENTINEL.test(value)
}

/**
 * Encode a header value: visible ASCII and inner spaces as they are; anything else (non-ASCII,
 * control characters including tab, leading or trailing whitespace, or a value that looks like
 * the sentinel itself) as `=?base64?{base64 of the UTF-8 bytes}?=`.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#value-encoding
 * @since 0.1.0
 * @category encoding
 */
export const encodeValue = (value: string): string =>
  isPlain(value) ? value : `=?base64?${Encoding.encodeBase64(value)}?=`

/**
 * Decode a header value written by {@link encodeValue}.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#value-encoding
 * @since 0.1.0
 * @category encoding
 */
export const decodeValue = (header: string): string => {
  const match = /^=\?base64\?(.*)\?=$/.exec(header)
  if (match === null) return header
  return Either.getOrElse(Encoding.decodeBase64String(match[1] ?? ""), () => header)
}

const allowedType = (type: unknown): Either.Either<ParamType | undefined, string> => {
  if (type === undefined) return Either.right(undefined)
  const types = Array.isArray(type) ? type.filter((t) => t !== "null") : [type]
  if (types.length === 1 && (types[0] === "string" || types[0] === "integer" || types[0] === "boolean")) {
    return Either.right(types[0])
  }
  return Either.left(`type ${JSON.stringify(type)} is not string, integer or boolean`)
}

/**
 * The `x-mcp-header` parameters of a tool's `inputSchema`, checked against the constraints of
 * SEP-2243: a non-empty RFC 9110 token (no spaces, colons, control or non-ASCII characters),
 * case-insensitively unique, on a `string`, `integer` or `boolean` property. `Left` carries the
 * reason the tool definition must be rejected.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#schema-extension
 * @since 0.1.0
 * @category parsing
 */
export const paramHeaders = (
  inputSchema: Readonly<Record<string, unknown>>
): Either.Either<ReadonlyArray<ParamHeader>, string> => {
  const found: Array<ParamHeader> = []
  const seen = new Set<string>()
  const walk = (schema: Readonly<Record<string, unknown>>, path: ReadonlyArray<string>): string | undefined => {
    const properties = schema["properties"]
    if (!isRecord(properties)) return undefined
    for (const [key, property] of Object.entries(properties)) {
      if (!isRecord(property)) continue
      const here = [...path, key]
      if ("x-mcp-header" in property) {
        const name = property["x-mcp-header"]
        const where = `x-mcp-header of "${here.join(".")}"`
        if (typeof name !== "string") return `${where} is not a string`
        if (name === "") return `${where} is empty`
        if (!TOKEN.test(name)) return `${where} ("${name}") is not an HTTP token`
        if (seen.has(name.toLowerCase())) return `${where} ("${name}") is not unique`
        const type = allowedType(property["type"])
        if (Either.isLeft(type)) return `${where}: ${type.left}`
        seen.add(name.toLowerCase())
        found.push({ name, path: here, type: type.right })
      }
      const nested = walk(property, here)
      if (nested !== undefined) return nested
    }
    return undefined
  }
  const problem = walk(inputSchema, [])
  return problem === undefined ? Either.right(found) : Either.left(problem)
}

const valueAt = (args: Readonly<Record<string, unknown>>, path: ReadonlyArray<string>): unknown => {
  let current: unknown = args
  for (const key of path) {
    if (!isRecord(current)) return undefined
    current = current[key]
  }
  return current
}

/**
 * The `Mcp-Param-{Name}` headers of one `tools/call`: strings as they are, integers in decimal,
 * booleans as `true` / `false`, each encoded by {@link encodeValue}; a parameter that is absent
 * or `null` gets no header. `Left` names an argument that cannot be mirrored (an object or array
 * where the schema names a primitive).
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#client-behavior
 * @since 0.1.0
 * @category encoding
 */
export const paramHeaderValues = (
  params: ReadonlyArray<ParamHeader>,
  args: Readonly<Record<string, unknown>>
): Either.Either<Record<string, string>, string> => {
  const headers: Record<string, string> = {}
  for (const param of params) {
    const value = valueAt(args, param.path)
    if (value === undefined || value === null) continue
    const where = `argument "${param.path.join(".")}" (Mcp-Param-${param.name})`
    if (typeof value === "string") headers[`mcp-param-${param.name}`] = encodeValue(value)
    else if (typeof value === "boolean") headers[`mcp-param-${param.name}`] = value ? "true" : "false"
    else if (typeof value === "number" && Number.isFinite(value)) {
      if (param.type === "integer" && !Number.isSafeInteger(value)) {
        return Either.left(`${where} is not an integer in the safe range`)
      }
      headers[`mcp-param-${param.name}`] = encodeValue(String(value))
    } else return Either.left(`${where} is not a string, integer or boolean`)
  }
  return Either.right(headers)
}

/**
 * The standard headers of one POST: `Mcp-Method` for every request and notification, and
 * `Mcp-Name` (from `params.name`, or `params.uri` for `resources/read`) for `tools/call`,
 * `resources/read` and `prompts/get`.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/transports/streamable-http#standard-request-headers
 * @since 0.1.0
 * @category encoding
 */
export const standardHeaders = (method: string, params: unknown): Record<string, string> => {
  const headers: Record<string, string> = { "mcp-method": encodeValue(method) }
  const field = method === "tools/call" || method === "prompts/get"
    ? "name"
    : method === "resources/read"
    ? "uri"
    : undefined
  if (field !== undefined && isRecord(params)) {
    const name = params[field]
    if (typeof name === "string") headers["mcp-name"] = encodeValue(name)
  }
  return headers
}
