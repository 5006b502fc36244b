/**
 * The client side of the MCP skills extension (`io.modelcontextprotocol/skills`, SEP-2640): list
 * the skills a server serves (`skills/list`, `skills/get`), then read a skill's files on demand
 * through `resources/read`, each verified against the skill's listed entry before it is used.
 *
 * Nothing is read ahead of need: {@link list} and {@link get} fetch entries only; a host calls
 * {@link load} when a task needs the skill and {@link readFile} for each supporting file it then
 * needs. Every file read is checked against its entry (size, then `sha256:` digest) and a
 * SKILL.md's YAML frontmatter is compared field by field with the entry's `frontmatter`; a
 * mismatch is a {@link SkillVerificationError} and the content is not returned.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Schema from "effect/Schema"
import { parse as parseYaml } from "yaml"
import type { McpClient, McpClientError, RequestOptions } from "./McpClient.js"
import { McpTransportError, SkillVerificationError } from "./McpErrors.js"
import type * as McpSchema from "./McpSchema.js"

/**
 * The extension's identifier, the key under `capabilities.extensions`.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#capability
 * @since 0.1.0
 * @category constants
 */
export const EXTENSION_ID = "io.modelcontextprotocol/skills"

/**
 * The client capabilities that declare support for the extension (merge them into
 * `McpClientOptions.capabilities`).
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#capability
 * @since 0.1.0
 * @category constants
 */
export const clientCapabilities: McpSchema.ClientCapabilities = { extensions: { [EXTENSION_ID]: {} } }

/**
 * One file of a skill as listed: its URI, the SHA-256 of its raw bytes (`sha256:{64 hex}`) and
 * its length in bytes.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#skill-entries
 * @since 0.1.0
 * @category schemas
 */
export const SkillResource = Schema.Struct({
  uri: Schema.String,
  digest: Schema.String,
  size: Schema.NonNegativeInt
})

/**
 * @since 0.1.0
 * @category models
 */
export type SkillResource = typeof SkillResource.Type

/**
 * A skill's SKILL.md frontmatter as a JSON object; `name` and `description` are always present.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#skill-entries
 * @since 0.1.0
 * @category schemas
 */
export const SkillFrontmatter = Schema.Struct(
  { name: Schema.String, description: Schema.String },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category models
 */
export type SkillFrontmatter = typeof SkillFrontmatter.Type

/**
 * A skill entry of `skills/list` / `skills/get`: the URI of its SKILL.md, its frontmatter, and
 * either every file of the skill (SKILL.md included) or `"dynamic"` when the server does not
 * enumerate them.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#skill-entries
 * @since 0.1.0
 * @category schemas
 */
export const SkillEntry = Schema.Struct({
  uri: Schema.String,
  frontmatter: SkillFrontmatter,
  resources: Schema.Union(Schema.Array(SkillResource), Schema.Literal("dynamic")),
  _meta: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type SkillEntry = typeof SkillEntry.Type

/**
 * The result of `skills/list` (one page).
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#listing-skills
 * @since 0.1.0
 * @category schemas
 */
export const ListSkillsResult = Schema.Struct({
  skills: Schema.Array(SkillEntry),
  nextCursor: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ListSkillsResult = typeof ListSkillsResult.Type

/**
 * The result of `skills/get`.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#getting-a-skill
 * @since 0.1.0
 * @category schemas
 */
export const GetSkillResult = Schema.Struct({ skill: SkillEntry })

/**
 * @since 0.1.0
 * @category models
 */
export type GetSkillResult = typeof GetSkillResult.Type

/**
 * A skill file read and verified: its raw bytes, its text (UTF-8) and its `sha256:` digest.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category models
 */
export interface SkillFile {
  readonly uri: string
  readonly mimeType: string | undefined
  readonly bytes: Uint8Array
  readonly text: string
  readonly digest: string
}

/**
 * A loaded skill: its entry, its verified SKILL.md, the frontmatter read from it and the
 * Markdown body after the frontmatter.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category models
 */
export interface LoadedSkill {
  readonly entry: SkillEntry
  readonly manifest: SkillFile
  readonly frontmatter: Readonly<Record<string, unknown>>
  readonly body: string
}

/**
 * Whether the server declared the skills extension (`capabilities.extensions`).
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#capability
 * @since 0.1.0
 * @category predicates
 */
export const isSupported = (client: McpClient): boolean =>
  client.serverCapabilities.extensions?.[EXTENSION_ID] !== undefined

/**
 * Every skill the server serves, following `nextCursor` through every page. Reads no file.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#listing-skills
 * @since 0.1.0
 * @category operations
 */
export const list = Effect.fn("Skills.list")(function*(client: McpClient, options?: RequestOptions) {
  const skills: Array<SkillEntry> = []
  const seen = new Set<string>()
  let cursor: string | undefined = undefined
  do {
    const page: ListSkillsResult = yield* client.request(
      "skills/list",
      cursor === undefined ? {} : { cursor },
      ListSkillsResult,
      options
    )
    skills.push(...page.skills)
    cursor = page.nextCursor
    if (cursor !== undefined) {
      if (seen.has(cursor)) {
        return yield* new McpTransportError({ reason: "Protocol", description: `skills/list repeated cursor "${cursor}"` })
      }
      seen.add(cursor)
    }
  } while (cursor !== undefined)
  const all: ReadonlyArray<SkillEntry> = skills
  return all
})

/**
 * The entry of one skill, named by the URI of its SKILL.md. Reads no file.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#getting-a-skill
 * @since 0.1.0
 * @category operations
 */
export const get = Effect.fn("Skills.get")(function*(client: McpClient, uri: string, options?: RequestOptions) {
  const result = yield* client.request("skills/get", { uri }, GetSkillResult, options)
  return result.skill
})

/**
 * `sha256:{hex}` of `bytes`, the digest format of skill entries.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category digests
 */
export const sha256Digest = (bytes: Uint8Array): Effect.Effect<string> =>
  Effect.map(
    Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", new Uint8Array(bytes))),
    (hash) => `sha256:${Encoding.encodeHex(new Uint8Array(hash))}`
  )

const FRONTMATTER = /^---\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/

/**
 * The YAML frontmatter at the start of a SKILL.md (a leading BOM ignored) and the Markdown body
 * after it; `Left` with the reason when there is none or it is not a YAML mapping.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#skill-format
 * @since 0.1.0
 * @category frontmatter
 */
export const parseFrontmatter = (
  text: string
): Either.Either<{ readonly frontmatter: Readonly<Record<string, unknown>>; readonly body: string }, string> => {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const match = FRONTMATTER.exec(source)
  if (match === null) return Either.left("SKILL.md does not begin with YAML frontmatter")
  return Either.flatMap(
    Either.try({ try: (): unknown => parseYaml(match[1]!), catch: (error) => `frontmatter is not valid YAML: ${String(error)}` }),
    (value) =>
      isRecord(value)
        ? Either.right({ frontmatter: value, body: source.slice(match[0].length) })
        : Either.left("frontmatter is not a YAML mapping")
  )
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Structural equality of JSON values (key order ignored). */
const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  if (isRecord(a) && isRecord(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]))
  }
  return false
}

/**
 * The top-level fields on which two frontmatters differ (present in one only, or with different
 * values).
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category frontmatter
 */
export const frontmatterDifferences = (
  listed: Readonly<Record<string, unknown>>,
  read: Readonly<Record<string, unknown>>
): ReadonlyArray<string> =>
  [...new Set([...Object.keys(listed), ...Object.keys(read)])].filter((key) =>
    !(key in listed && key in read && jsonEqual(listed[key], read[key]))
  )

const DIGEST = /^sha256:[0-9a-f]{64}$/i

/** The bytes of the content `resources/read` returned for `uri`. */
const contentBytes = (result: McpSchema.ReadResourceResult, uri: string) => {
  const content = result.contents.find((c) => c.uri === uri) ?? (result.contents.length === 1 ? result.contents[0] : undefined)
  if (content?.text !== undefined) {
    return Either.right({ bytes: new TextEncoder().encode(content.text), mimeType: content.mimeType })
  }
  if (content?.blob !== undefined) {
    return Either.map(
      Either.mapLeft(Encoding.decodeBase64(content.blob), () => "the blob is not valid base64"),
      (bytes) => ({ bytes, mimeType: content.mimeType })
    )
  }
  return Either.left("resources/read returned no text or blob for it")
}

/**
 * Read one file of a skill (by default its SKILL.md) with `resources/read` and verify it against
 * the skill's entry before returning it: the file must be listed, its byte length must equal the
 * listed `size` and its SHA-256 the listed `digest`; a SKILL.md's frontmatter must equal the
 * entry's `frontmatter` field by field. For an entry whose `resources` is `"dynamic"` there is no
 * size or digest to check; a SKILL.md is still compared with the frontmatter.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category operations
 */
export const readFile = Effect.fn("Skills.readFile")(function*(
  client: McpClient,
  entry: SkillEntry,
  uri: string = entry.uri,
  options?: RequestOptions
) {
  const refuse = (
    reason: SkillVerificationError["reason"],
    description: string,
    values: { readonly expected?: unknown; readonly actual?: unknown } = {}
  ) => new SkillVerificationError({ reason, skill: entry.uri, uri, description, ...values })
  const listed = entry.resources === "dynamic" ? undefined : entry.resources.find((r) => r.uri === uri)
  if (entry.resources !== "dynamic" && listed === undefined) {
    return yield* refuse("NotListed", `${uri} is not among the resources of the skill ${entry.uri}`)
  }
  const result = yield* client.readResource(uri, options)
  const content = contentBytes(result, uri)
  if (Either.isLeft(content)) return yield* refuse("Content", content.left)
  const { bytes, mimeType } = content.right
  const digest = yield* sha256Digest(bytes)
  if (listed !== undefined) {
    if (bytes.byteLength !== listed.size) {
      return yield* refuse("Size", `read ${bytes.byteLength} bytes, the entry lists ${listed.size}`, {
        expected: listed.size,
        actual: bytes.byteLength
      })
    }
    if (!DIGEST.test(listed.digest)) {
      return yield* refuse("Digest", `the entry's digest ${JSON.stringify(listed.digest)} is not sha256:{64 hex}`, {
        expected: listed.digest
      })
    }
    if (digest !== listed.digest.toLowerCase()) {
      return yield* refuse("Digest", `the content's digest differs from the entry's`, {
        expected: listed.digest,
        actual: digest
      })
    }
  }
  const text = new TextDecoder().decode(bytes)
  if (uri === entry.uri) {
    const parsed = parseFrontmatter(text)
    if (Either.isLeft(parsed)) return yield* refuse("Frontmatter", parsed.left)
    const differences = frontmatterDifferences(entry.frontmatter, parsed.right.frontmatter)
    if (differences.length > 0) {
      return yield* refuse("Frontmatter", `the SKILL.md frontmatter differs from the entry's in ${differences.join(", ")}`, {
        expected: entry.frontmatter,
        actual: parsed.right.frontmatter
      })
    }
  }
  const file: SkillFile = { uri, mimeType, bytes, text, digest }
  return file
})

/**
 * Load a skill when a task needs it: read its SKILL.md, verified as {@link readFile} does, and
 * return it with its frontmatter and Markdown body. Supporting files are not read; read each with
 * {@link readFile} when it is needed.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension#integrity-and-verification
 * @since 0.1.0
 * @category operations
 */
export const load = Effect.fn("Skills.load")(function*(client: McpClient, entry: SkillEntry, options?: RequestOptions) {
  const manifest = yield* readFile(client, entry, entry.uri, options)
  // readFile has already parsed and compared the frontmatter of this SKILL.md
  const parsed = Either.getOrElse(parseFrontmatter(manifest.text), () => ({ frontmatter: {}, body: manifest.text }))
  const loaded: LoadedSkill = { entry, manifest, frontmatter: parsed.frontmatter, body: parsed.body }
  return loaded
})

/**
 * Every way a skills operation can fail.
 *
 * @see https://modelcontextprotocol.io/seps/2640-skills-extension
 * @since 0.1.0
 * @category errors
 */
export type SkillsError = McpClientError | SkillVerificationError
