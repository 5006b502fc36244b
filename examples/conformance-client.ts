/**
 * An MCP client for the public MCP conformance suite (@modelcontextprotocol/conformance), built
 * only from the library's public API: `McpClient` over Streamable HTTP, signed in by `OAuthLayer`
 * with the headless authorizer. It behaves like a small host: it declares roots, sampling,
 * elicitation and the skills extension (SEP-2640), calls every tool, reads a resource and gets a
 * prompt when the server offers them, lists skills and loads them (verified) only when its task
 * needs them.
 *
 *   npx tsx examples/conformance-client.ts http://localhost:PORT/mcp
 *
 * The suite appends the server URL as the last argument and describes the scenario in
 * MCP_CONFORMANCE_SCENARIO and (for pre-registered / machine-to-machine scenarios)
 * MCP_CONFORMANCE_CONTEXT. Exit status 0 means the client did its job.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Redacted } from "effect"
import { pathToFileURL } from "node:url"
import { Authorizer, OAuth, type OAuthLayerOptions, Schemas } from "../src/index.js"
import { Elicitation, McpClient, McpError, Skills } from "../src/mcp/index.js"
import type { McpSchema } from "../src/mcp/index.js"

const serverUrl = process.argv.at(-1) ?? ""
const scenario = process.env["MCP_CONFORMANCE_SCENARIO"] ?? ""
const protocolVersion = process.env["MCP_CONFORMANCE_PROTOCOL_VERSION"]
const context: Record<string, string | undefined> & {
  /** Tool calls a scenario asks for (name and exact arguments), e.g. http-custom-headers. */
  readonly toolCalls?: ReadonlyArray<{ readonly name: string; readonly arguments?: Record<string, unknown> }>
} = JSON.parse(process.env["MCP_CONFORMANCE_CONTEXT"] ?? "{}")

/** The conformance suite's fixed Client ID Metadata Document URL (SEP-991). */
const CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"

/**
 * SEP-990 enterprise-managed authorization: an RFC 8693 token exchange at the enterprise IdP
 * turns the user's ID token into an ID-JAG, then an RFC 7523 JWT bearer grant at the MCP
 * server's authorization server turns that into an access token.
 */
const identityAssertionGrant: OAuth.CustomGrant = (grant) =>
  Effect.gen(function*() {
    const idpClient = new Schemas.ClientInformation({
      clientId: context["idp_client_id"] ?? "",
      tokenEndpointAuthMethod: "none",
      source: "preregistered",
      issuer: context["idp_issuer"] ?? "",
      redirectUris: []
    })
    const jag = yield* grant.exchange.grant(
      { ...grant, client: idpClient, tokenEndpoint: context["idp_token_endpoint"] },
      {
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        requested_token_type: "urn:ietf:params:oauth:token-type:id-jag",
        audience: grant.discovery.issuer,
        subject_token: context["idp_id_token"] ?? "",
        subject_token_type: "urn:ietf:params:oauth:token-type:id_token"
      }
    )
    return yield* grant.exchange.grant(
      { ...grant, resource: undefined },
      {
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion: Redacted.value(jag.accessToken)
      }
    )
  })

/**
 * SEP-1933 workload identity federation: the workload's own JWT is the RFC 7523 §2.1
 * authorization grant.
 */
const workloadIdentityGrant: OAuth.CustomGrant = (grant) =>
  grant.exchange.grant(grant, {
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion: context["valid_jwt"] ?? ""
  })

/** The OAuth options a well-behaved client would use for what the scenario gives it. */
const oauthOptions = (): Omit<OAuthLayerOptions, "mcpUrl"> => {
  const base = { clientMetadataUrl: CLIENT_METADATA_URL, clientName: "effect-mcp-oauth conformance" }
  if (context["idp_id_token"] !== undefined) {
    return {
      ...base,
      clientId: context["client_id"],
      clientSecret: context["client_secret"],
      tokenEndpointAuthMethod: "client_secret_basic",
      grant: identityAssertionGrant
    }
  }
  if (context["valid_jwt"] !== undefined) {
    return { ...base, clientId: context["client_id"], grant: workloadIdentityGrant }
  }
  if (context["private_key_pem"] !== undefined) {
    return {
      ...base,
      clientId: context["client_id"],
      tokenEndpointAuthMethod: "private_key_jwt",
      privateKeyJwt: {
        privateKeyPem: Redacted.make(context["private_key_pem"]),
        algorithm: context["signing_algorithm"] ?? "ES256"
      },
      grant: "client_credentials"
    }
  }
  if (scenario.startsWith("auth/client-credentials")) {
    return { ...base, clientId: context["client_id"], clientSecret: context["client_secret"], grant: "client_credentials" }
  }
  if (context["client_id"] !== undefined) {
    return { ...base, clientId: context["client_id"], clientSecret: context["client_secret"] }
  }
  return base
}

/** Arguments for a tool call, from its input schema (numbers 1…, strings "test", booleans true). */
const argumentsFor = (tool: McpSchema.Tool): Record<string, unknown> => {
  if (tool.name === "add_numbers") return { a: 5, b: 10 }
  const properties = (tool.inputSchema["properties"] ?? {}) as Record<string, { type?: string }>
  return Object.fromEntries(
    Object.entries(properties).map(([name, property], i) => [
      name,
      property.type === "number" || property.type === "integer"
        ? i + 1
        : property.type === "boolean"
        ? true
        : "test"
    ])
  )
}

/**
 * One call per listed tool. json-schema-2020-12-preservation asks the client to hand the focal
 * tool's inputSchema, exactly as it received it, to the echo tool.
 */
const plannedCalls = (tools: ReadonlyArray<McpSchema.Tool>) => {
  const focal = tools.find((t) => t.name === "json_schema_2020_12_tool")
  return tools.map((tool) => ({
    name: tool.name,
    arguments: tool.name === "json_schema_echo" && focal !== undefined
      ? { schema: focal.inputSchema }
      : argumentsFor(tool)
  }))
}

/** The first resource that is not a skill's file (those are read only when a skill is loaded). */
const readOneResource = (client: McpClient.McpClient) =>
  Effect.gen(function*() {
    const resources = yield* client.listResources()
    yield* Console.log(`resources: ${resources.map((r) => r.uri).join(", ") || "(none)"}`)
    const first = resources.find((r) => !r.uri.startsWith("skill://"))
    if (first !== undefined) {
      const read = yield* client.readResource(first.uri)
      yield* Console.log(`${first.uri}: ${read.contents.length} content(s)`)
    }
  })

/** The first prompt, with "test" for each of its arguments. */
const getOnePrompt = (client: McpClient.McpClient) =>
  Effect.gen(function*() {
    const prompts = yield* client.listPrompts()
    yield* Console.log(`prompts: ${prompts.map((p) => p.name).join(", ") || "(none)"}`)
    const first = prompts[0]
    if (first !== undefined) {
      const args = Object.fromEntries((first.arguments ?? []).map((a) => [a.name, "test"]))
      const prompt = yield* client.getPrompt(first.name, args)
      yield* Console.log(`${first.name}: ${prompt.messages.length} message(s)`)
    }
  })

/**
 * SEP-2640: list the skills; load each one (its SKILL.md, then its other files), every file
 * verified against the listed entry. A host loads a skill only when a task needs it: the
 * no-prefetch scenario's task needs none, so there the client lists and reads nothing. A file
 * that fails verification is refused and nothing more of that skill is read.
 */
const useSkills = (client: McpClient.McpClient) =>
  Effect.gen(function*() {
    const skills = yield* Skills.list(client)
    yield* Console.log(`skills: ${skills.map((s) => s.frontmatter.name).join(", ") || "(none)"}`)
    if (scenario === "sep-2640-client-no-prefetch") return
    for (const entry of skills) {
      yield* Effect.gen(function*() {
        const skill = yield* Skills.load(client, entry)
        const others = entry.resources === "dynamic" ? [] : entry.resources.filter((r) => r.uri !== entry.uri)
        for (const file of others) yield* Skills.readFile(client, entry, file.uri)
        yield* Console.log(`skill ${skill.frontmatter["name"]}: loaded, ${others.length} more file(s) verified`)
      }).pipe(
        Effect.catchTag("SkillVerificationError", (error) => Console.log(`skill ${entry.uri}: refused: ${error.message}`))
      )
    }
  })

const program = Effect.gen(function*() {
  const client = yield* McpClient.connect(new URL(serverUrl), {
    auth: { oauth: oauthOptions() },
    clientInfo: { name: "effect-mcp-oauth-conformance", version: "0.1.0" },
    // The suite names the wire to speak (alpha.x); 2026-07-28 is the stateless one (SEP-2575).
    ...(protocolVersion === undefined ? {} : { protocolVersion }),
    capabilities: Skills.clientCapabilities,
    handlers: {
      // SEP-1034: accept elicitations with the defaults of the requested schema.
      elicitation: (params) => Effect.succeed(Elicitation.acceptWithDefaults(params)),
      // The working directory is the one root; there is no model to sample, so the user declines.
      roots: { list: Effect.sync(() => [{ uri: pathToFileURL(process.cwd()).href, name: "working directory" }]) },
      sampling: () => Effect.fail(new McpError({ code: -1, message: "User rejected sampling request" }))
    }
  })
  // listTools also learns each tool's x-mcp-header parameters (SEP-2243) and leaves out tools
  // whose annotations are invalid.
  const tools = yield* client.listTools()
  yield* Console.log(`tools: ${tools.map((t) => t.name).join(", ") || "(none)"}`)
  const calls = context.toolCalls ?? plannedCalls(tools)
  for (const call of calls) {
    // A JSON-RPC error answering one call is reported; the client goes on with the others.
    const outcome = yield* client.callTool(call.name, call.arguments).pipe(
      Effect.map((result) => result.isError === true ? "error" : "ok"),
      Effect.catchTag("McpError", (error) => Effect.succeed(`failed (${error.code} ${error.message})`))
    )
    yield* Console.log(`${call.name}: ${outcome}`)
  }
  if (client.serverCapabilities.resources !== undefined) yield* readOneResource(client)
  if (client.serverCapabilities.prompts !== undefined) yield* getOnePrompt(client)
  if (Skills.isSupported(client)) yield* useSkills(client)
}).pipe(Effect.scoped)

// `auth: { oauth }` builds OAuthLayer for the server's URL over this HttpClient. It finds the
// headless authorizer here and uses it instead of the browser: the suite's authorization
// endpoint redirects at once, with no user.
const MainLive = Authorizer.layerHeadless({ redirectUri: "http://localhost:3000/callback" }).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

program.pipe(
  Effect.provide(MainLive),
  Effect.tapErrorCause((cause) => Console.error(`conformance client failed: ${cause}`)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
