/**
 * The MCP messages this client uses, as `Schema`s. Results are decoded with
 * `onExcessProperty: "preserve"`, so fields a newer server adds survive decoding; the declared
 * fields follow the 2025-11-25 schema and stay optional where older revisions lack them.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The protocol revision this client offers in `initialize`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 * @since 0.1.0
 * @category constants
 */
export const LATEST_PROTOCOL_VERSION = "2025-11-25"

/**
 * Every revision the client accepts from a server, newest first.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 * @since 0.1.0
 * @category constants
 */
export const SUPPORTED_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const

/**
 * Stateless revisions (MCP SEP-2575, the 2026-07-28 draft): no `initialize`; every request
 * carries `MCP-Protocol-Version` and, in `_meta`, the protocol version, client info and client
 * capabilities.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/lifecycle
 * @since 0.1.0
 * @category constants
 */
export const STATELESS_PROTOCOL_VERSIONS = ["2026-07-28"] as const

/**
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#version-negotiation
 * @since 0.1.0
 * @category schemas
 */
export const ProtocolVersion = Schema.Literal(...STATELESS_PROTOCOL_VERSIONS, ...SUPPORTED_PROTOCOL_VERSIONS)

/**
 * @since 0.1.0
 * @category models
 */
export type ProtocolVersion = typeof ProtocolVersion.Type

const Meta = Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * `Icon` (2025-11-25).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#icon
 * @since 0.1.0
 * @category schemas
 */
export const Icon = Schema.Struct({
  src: Schema.String,
  mimeType: Schema.optional(Schema.String),
  sizes: Schema.optional(Schema.Array(Schema.String))
})

/**
 * `Implementation`: name and version of a client or server.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#implementation
 * @since 0.1.0
 * @category schemas
 */
export const Implementation = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  title: Schema.optional(Schema.String),
  websiteUrl: Schema.optional(Schema.String),
  icons: Schema.optional(Schema.Array(Icon))
})

/**
 * @since 0.1.0
 * @category models
 */
export type Implementation = typeof Implementation.Type

/**
 * `ServerCapabilities`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#servercapabilities
 * @since 0.1.0
 * @category schemas
 */
export const ServerCapabilities = Schema.Struct({
  experimental: Schema.optional(JsonObject),
  logging: Schema.optional(JsonObject),
  completions: Schema.optional(JsonObject),
  prompts: Schema.optional(Schema.Struct({ listChanged: Schema.optional(Schema.Boolean) })),
  resources: Schema.optional(
    Schema.Struct({ subscribe: Schema.optional(Schema.Boolean), listChanged: Schema.optional(Schema.Boolean) })
  ),
  tools: Schema.optional(Schema.Struct({ listChanged: Schema.optional(Schema.Boolean) })),
  tasks: Schema.optional(JsonObject),
  /** Extensions the server supports, by identifier (e.g. `io.modelcontextprotocol/skills`, SEP-2640). */
  extensions: Schema.optional(Schema.Record({ key: Schema.String, value: JsonObject }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ServerCapabilities = typeof ServerCapabilities.Type

/**
 * `ClientCapabilities`, as sent in `initialize`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#clientcapabilities
 * @since 0.1.0
 * @category schemas
 */
export const ClientCapabilities = Schema.Struct({
  experimental: Schema.optional(JsonObject),
  roots: Schema.optional(Schema.Struct({ listChanged: Schema.optional(Schema.Boolean) })),
  sampling: Schema.optional(JsonObject),
  elicitation: Schema.optional(JsonObject),
  tasks: Schema.optional(JsonObject),
  /** Extensions the client supports, by identifier (e.g. `io.modelcontextprotocol/skills`, SEP-2640). */
  extensions: Schema.optional(Schema.Record({ key: Schema.String, value: JsonObject }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClientCapabilities = typeof ClientCapabilities.Type

/**
 * `InitializeResult`. `protocolVersion` is kept as a plain string here: the client checks it
 * against {@link SUPPORTED_PROTOCOL_VERSIONS} and fails with a typed error otherwise.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle#initialization
 * @since 0.1.0
 * @category schemas
 */
export const InitializeResult = Schema.Struct({
  protocolVersion: Schema.String,
  capabilities: ServerCapabilities,
  serverInfo: Implementation,
  instructions: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type InitializeResult = typeof InitializeResult.Type

/**
 * `server/discover` result of the stateless revisions (SEP-2575): supported versions,
 * capabilities and (in `_meta` or at the top level) server info. Unknown fields are kept.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/lifecycle
 * @since 0.1.0
 * @category schemas
 */
export const DiscoverResult = Schema.Struct({
  supportedVersions: Schema.optional(Schema.Array(Schema.String)),
  capabilities: Schema.optional(ServerCapabilities),
  serverInfo: Schema.optional(Implementation),
  instructions: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * The methods on which a server may answer with an `InputRequiredResult` (MRTR, SEP-2322).
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/patterns/mrtr#supported-requests
 * @since 0.1.0
 * @category constants
 */
export const INPUT_REQUIRED_METHODS = ["tools/call", "prompts/get", "resources/read"] as const

/**
 * One server→client request embedded in an `InputRequiredResult`: `elicitation/create`,
 * `sampling/createMessage` or `roots/list` with its params.
 *
 * @see https://modelcontextprotocol.io/specification/draft/schema#inputrequests
 * @since 0.1.0
 * @category schemas
 */
export const InputRequest = Schema.Struct({
  method: Schema.String,
  params: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type InputRequest = typeof InputRequest.Type

/**
 * `InputRequiredResult` (2026-07-28, SEP-2322): the server needs input before it can answer.
 * The client fulfils every `inputRequests` entry and retries the original request, with a new
 * JSON-RPC id, carrying `inputResponses` (same keys) and `requestState` exactly as received (and
 * none when none was received). A result without `resultType` is complete.
 *
 * @see https://modelcontextprotocol.io/specification/draft/basic/patterns/mrtr#inputrequiredresult
 * @since 0.1.0
 * @category schemas
 */
export const InputRequiredResult = Schema.Struct({
  resultType: Schema.Literal("input_required"),
  inputRequests: Schema.optional(Schema.Record({ key: Schema.String, value: InputRequest })),
  requestState: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type InputRequiredResult = typeof InputRequiredResult.Type

/**
 * The empty result (`ping`, `logging/setLevel`, …).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/ping
 * @since 0.1.0
 * @category schemas
 */
export const EmptyResult = Schema.Struct({ _meta: Meta })

/**
 * `Annotations` on content and resources.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#annotations
 * @since 0.1.0
 * @category schemas
 */
export const Annotations = Schema.Struct({
  audience: Schema.optional(Schema.Array(Schema.String)),
  priority: Schema.optional(Schema.Number),
  lastModified: Schema.optional(Schema.String)
})

/**
 * `Tool`: a tool the server offers. `inputSchema` is a JSON Schema object.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool
 * @since 0.1.0
 * @category schemas
 */
export const Tool = Schema.Struct({
  name: Schema.String,
  title: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  inputSchema: JsonObject,
  outputSchema: Schema.optional(JsonObject),
  annotations: Schema.optional(JsonObject),
  icons: Schema.optional(Schema.Array(Icon)),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type Tool = typeof Tool.Type

/**
 * One page of `tools/list`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#listing-tools
 * @since 0.1.0
 * @category schemas
 */
export const ListToolsResult = Schema.Struct({
  tools: Schema.Array(Tool),
  nextCursor: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ListToolsResult = typeof ListToolsResult.Type

/**
 * `TextResourceContents` / `BlobResourceContents`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#resource-contents
 * @since 0.1.0
 * @category schemas
 */
export const ResourceContents = Schema.Struct({
  uri: Schema.String,
  mimeType: Schema.optional(Schema.String),
  text: Schema.optional(Schema.String),
  blob: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ResourceContents = typeof ResourceContents.Type

/**
 * `ContentBlock`: text, image, audio, resource link or embedded resource. Unknown content types
 * are kept (with their fields) rather than rejected.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/schema#contentblock
 * @since 0.1.0
 * @category schemas
 */
export const ContentBlock = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("text"),
    text: Schema.String,
    annotations: Schema.optional(Annotations),
    _meta: Meta
  }),
  Schema.Struct({
    type: Schema.Literal("image", "audio"),
    data: Schema.String,
    mimeType: Schema.String,
    annotations: Schema.optional(Annotations),
    _meta: Meta
  }),
  Schema.Struct({
    type: Schema.Literal("resource_link"),
    uri: Schema.String,
    name: Schema.String,
    title: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String),
    mimeType: Schema.optional(Schema.String),
    annotations: Schema.optional(Annotations),
    _meta: Meta
  }),
  Schema.Struct({
    type: Schema.Literal("resource"),
    resource: ResourceContents,
    annotations: Schema.optional(Annotations),
    _meta: Meta
  })
)

/**
 * @since 0.1.0
 * @category models
 */
export type ContentBlock = typeof ContentBlock.Type

/**
 * `CallToolResult`. A tool that failed reports `isError: true` here (not a JSON-RPC error).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/tools#tool-result
 * @since 0.1.0
 * @category schemas
 */
export const CallToolResult = Schema.Struct({
  content: Schema.Array(ContentBlock),
  structuredContent: Schema.optional(JsonObject),
  isError: Schema.optional(Schema.Boolean),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type CallToolResult = typeof CallToolResult.Type

/**
 * `Resource`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#resource
 * @since 0.1.0
 * @category schemas
 */
export const Resource = Schema.Struct({
  uri: Schema.String,
  name: Schema.String,
  title: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  mimeType: Schema.optional(Schema.String),
  size: Schema.optional(Schema.Number),
  annotations: Schema.optional(Annotations),
  icons: Schema.optional(Schema.Array(Icon)),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type Resource = typeof Resource.Type

/**
 * One page of `resources/list`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#listing-resources
 * @since 0.1.0
 * @category schemas
 */
export const ListResourcesResult = Schema.Struct({
  resources: Schema.Array(Resource),
  nextCursor: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * `ResourceTemplate` (RFC 6570 URI template).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#resource-templates
 * @since 0.1.0
 * @category schemas
 */
export const ResourceTemplate = Schema.Struct({
  uriTemplate: Schema.String,
  name: Schema.String,
  title: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  mimeType: Schema.optional(Schema.String),
  annotations: Schema.optional(Annotations),
  icons: Schema.optional(Schema.Array(Icon)),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ResourceTemplate = typeof ResourceTemplate.Type

/**
 * One page of `resources/templates/list`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#resource-templates
 * @since 0.1.0
 * @category schemas
 */
export const ListResourceTemplatesResult = Schema.Struct({
  resourceTemplates: Schema.Array(ResourceTemplate),
  nextCursor: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * `resources/read` result.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/resources#reading-resources
 * @since 0.1.0
 * @category schemas
 */
export const ReadResourceResult = Schema.Struct({
  contents: Schema.Array(ResourceContents),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ReadResourceResult = typeof ReadResourceResult.Type

/**
 * `PromptArgument`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#data-types
 * @since 0.1.0
 * @category schemas
 */
export const PromptArgument = Schema.Struct({
  name: Schema.String,
  title: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  required: Schema.optional(Schema.Boolean)
})

/**
 * `Prompt`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#data-types
 * @since 0.1.0
 * @category schemas
 */
export const Prompt = Schema.Struct({
  name: Schema.String,
  title: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  arguments: Schema.optional(Schema.Array(PromptArgument)),
  icons: Schema.optional(Schema.Array(Icon)),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type Prompt = typeof Prompt.Type

/**
 * One page of `prompts/list`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#listing-prompts
 * @since 0.1.0
 * @category schemas
 */
export const ListPromptsResult = Schema.Struct({
  prompts: Schema.Array(Prompt),
  nextCursor: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * `PromptMessage`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#promptmessage
 * @since 0.1.0
 * @category schemas
 */
export const PromptMessage = Schema.Struct({
  role: Schema.Literal("user", "assistant"),
  content: ContentBlock
})

/**
 * `prompts/get` result.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/prompts#getting-a-prompt
 * @since 0.1.0
 * @category schemas
 */
export const GetPromptResult = Schema.Struct({
  description: Schema.optional(Schema.String),
  messages: Schema.Array(PromptMessage),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type GetPromptResult = typeof GetPromptResult.Type

/**
 * RFC 5424 severities used by `logging/setLevel` and `notifications/message`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/utilities/logging#log-levels
 * @since 0.1.0
 * @category schemas
 */
export const LoggingLevel = Schema.Literal(
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency"
)

/**
 * @since 0.1.0
 * @category models
 */
export type LoggingLevel = typeof LoggingLevel.Type

/**
 * Params of `notifications/message`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/server/utilities/logging#log-message-notifications
 * @since 0.1.0
 * @category schemas
 */
export const LoggingMessageParams = Schema.Struct({
  level: LoggingLevel,
  logger: Schema.optional(Schema.String),
  data: Schema.Unknown
})

/**
 * Params of `notifications/progress`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/utilities/progress
 * @since 0.1.0
 * @category schemas
 */
export const ProgressParams = Schema.Struct({
  progressToken: Schema.Union(Schema.String, Schema.Number),
  progress: Schema.Number,
  total: Schema.optional(Schema.Number),
  message: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ProgressParams = typeof ProgressParams.Type

/**
 * Params of `elicitation/create` (form mode; `url` mode requests carry `mode: "url"` and `url`).
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation
 * @since 0.1.0
 * @category schemas
 */
export const ElicitRequestParams = Schema.Struct({
  mode: Schema.optional(Schema.Literal("form", "url")),
  message: Schema.String,
  requestedSchema: Schema.optional(JsonObject),
  url: Schema.optional(Schema.String),
  elicitationId: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ElicitRequestParams = typeof ElicitRequestParams.Type

/**
 * `ElicitResult`: the user's answer.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation#response-actions
 * @since 0.1.0
 * @category schemas
 */
export const ElicitResult = Schema.Struct({
  action: Schema.Literal("accept", "decline", "cancel"),
  content: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ElicitResult = typeof ElicitResult.Type

/**
 * Params of `sampling/createMessage`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/sampling
 * @since 0.1.0
 * @category schemas
 */
export const CreateMessageRequestParams = Schema.Struct({
  messages: Schema.Array(Schema.Struct({ role: Schema.Literal("user", "assistant"), content: Schema.Unknown })),
  maxTokens: Schema.Number,
  systemPrompt: Schema.optional(Schema.String),
  modelPreferences: Schema.optional(JsonObject),
  includeContext: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Number),
  stopSequences: Schema.optional(Schema.Array(Schema.String)),
  metadata: Schema.optional(JsonObject),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type CreateMessageRequestParams = typeof CreateMessageRequestParams.Type

/**
 * `CreateMessageResult`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/sampling
 * @since 0.1.0
 * @category schemas
 */
export const CreateMessageResult = Schema.Struct({
  role: Schema.Literal("user", "assistant"),
  content: Schema.Unknown,
  model: Schema.String,
  stopReason: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type CreateMessageResult = typeof CreateMessageResult.Type

/**
 * `Root`: a directory or file the client exposes.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/roots
 * @since 0.1.0
 * @category schemas
 */
export const Root = Schema.Struct({
  uri: Schema.String,
  name: Schema.optional(Schema.String),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type Root = typeof Root.Type

/**
 * `roots/list` result.
 *
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/roots#listing-roots
 * @since 0.1.0
 * @category schemas
 */
export const ListRootsResult = Schema.Struct({
  roots: Schema.Array(Root),
  _meta: Meta
})

/**
 * @since 0.1.0
 * @category models
 */
export type ListRootsResult = typeof ListRootsResult.Type
