/**
 * The persisted form of a storage entry, shared by the file-system and key-value stores: a JSON
 * envelope with a format name, a format version, the kind of entry, the server key it belongs to
 * and the schema-*encoded* value (so `Redacted` fields are written as plain strings — the reason
 * the file store keeps its files private). Anything that does not decode is reported with a
 * reason that never quotes the content, because the content may hold a secret.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { StorageError } from "../Errors.js"
import { ClientInformation, PendingAuthorization, StoredToken } from "../Schemas.js"

/** @internal */
export const FORMAT = "effect-mcp-oauth/token-storage"

/** @internal */
export const VERSION = 1

/** @internal */
export type Kind = "tokens" | "client" | "pending"

/** @internal */
export const kinds: ReadonlyArray<Kind> = ["tokens", "client"]

/** @internal */
export interface Entry<A, I> {
  readonly kind: Kind
  readonly schema: Schema.Schema<A, I>
}

/** @internal */
export const tokensEntry: Entry<StoredToken, typeof StoredToken.Encoded> = { kind: "tokens", schema: StoredToken }

/** @internal */
export const clientEntry: Entry<ClientInformation, typeof ClientInformation.Encoded> = { kind: "client", schema: ClientInformation }

/** @internal */
export const pendingEntry: Entry<PendingAuthorization, typeof PendingAuthorization.Encoded> = {
  kind: "pending",
  schema: PendingAuthorization
}

const Header = Schema.Struct({
  format: Schema.Literal(FORMAT),
  version: Schema.Number,
  kind: Schema.Literal("tokens", "client", "pending"),
  key: Schema.String,
  /** Monotonic per key and kind; absent in records written before revisions existed (read as 0). */
  revision: Schema.optional(Schema.NonNegativeInt),
  value: Schema.Unknown
})

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())
const decodeHeader = Schema.decodeUnknownEither(Header)

/**
 * Encodes `value` into the envelope JSON. An encoding failure is a `StorageError` whose detail
 * does not quote the value.
 *
 * @internal
 */
export const encode = <A, I>(
  entry: Entry<A, I>,
  key: string,
  value: A,
  revision?: number
): Effect.Effect<string, StorageError> =>
  Schema.encode(entry.schema)(value).pipe(
    Effect.map((encoded) =>
      JSON.stringify(
        revision === undefined
          ? { format: FORMAT, version: VERSION, kind: entry.kind, key, value: encoded }
          : { format: FORMAT, version: VERSION, kind: entry.kind, key, revision, value: encoded },
        null,
        2
      ) + "\n"
    ),
    Effect.mapError(() =>
      new StorageError({ reason: "Encoding", key, detail: `the ${entry.kind} entry could not be encoded` })
    )
  )

/** Why an envelope was rejected; never contains the content. @internal */
export type Rejection = string

/**
 * Decodes an envelope without knowing its key in advance: the header must be this library's
 * format and version, the kind must match, the value must decode.
 *
 * @internal
 */
export const decodeAny = <A, I>(
  entry: Entry<A, I>,
  text: string): Either.Either<{ key: string; value: A; revision: number }, Rejection> => {
  if (text.trim().length === 0) return Either.left("the entry is empty")
  const json = decodeJson(text)
  if (Either.isLeft(json)) return Either.left("the entry is not valid JSON (truncated or corrupted)")
  const header = decodeHeader(json.right)
  if (Either.isLeft(header)) return Either.left(`the entry is not in the ${FORMAT} format`)
  if (header.right.version !== VERSION) {
    return Either.left(
      header.right.version > VERSION
        ? `the entry has format version ${String(header.right.version)}, expected ${VERSION} (written by a newer version of this library)`
        : `the entry has format version ${String(header.right.version)}, expected ${VERSION}`
    )
  }
  if (header.right.kind !== entry.kind) return Either.left(`the entry holds ${header.right.kind}, not ${entry.kind}`)
  const value = Schema.decodeUnknownEither(entry.schema)(header.right.value)
  if (Either.isLeft(value)) return Either.left(`the ${entry.kind} value does not match its schema`)
  return Either.right({ key: header.right.key, value: value.right, revision: header.right.revision ?? 0 })
}

/**
 * Decodes the envelope stored for `key`; an envelope written for another key is rejected.
 *
 * @internal
 */
export const decodeFor = <A, I>(entry: Entry<A, I>, key: string, text: string): Either.Either<A, Rejection> =>
  Either.map(decodeVersionedFor(entry, key, text), (decoded) => decoded.value)

/**
 * {@link decodeFor} with the record's revision (0 for records written before revisions existed).
 *
 * @internal
 */
export const decodeVersionedFor = <A, I>(
  entry: Entry<A, I>,
  key: string,
  text: string
): Either.Either<{ readonly value: A; readonly revision: number }, Rejection> =>
  Either.flatMap(
    decodeAny(entry, text),
    (decoded) =>
      decoded.key === key
        ? Either.right({ value: decoded.value, revision: decoded.revision })
        : Either.left("the entry belongs to another server key")
  )

/**
 * Where a serialized record is kept. A codec binds its output to it (e.g. as AES-GCM additional data), so a record moved to another key or kind is
 * rejected.
 *
 * @internal
 */
export interface RecordContext {
  /** The backend's name for the record (file name, key-value entry key): derived from key and kind. */
  readonly location: string
}

/**
 * A transformation of the serialized record between the envelope JSON and what the backend
 * stores (encryption at rest). `decode` yields the envelope JSON, or a `Rejection` for content
 * that is corrupt (read as absent, like a corrupt plain record), or fails with a `StorageError`
 * (reason `"Decryption"`) for content that is intact but cannot be opened (wrong key, tampered).
 *
 * @internal
 */
export interface RecordCodec {
  readonly name: string
  readonly encode: (plain: string, context: RecordContext) => Effect.Effect<string, StorageError>
  readonly decode: (
    stored: string,
    context: RecordContext
  ) => Effect.Effect<Either.Either<string, Rejection>, StorageError>
}

/**
 * The identity codec: records are stored as the envelope JSON.
 *
 * @internal
 */
export const plainCodec: RecordCodec = {
  name: "plain",
  encode: (plain) => Effect.succeed(plain),
  decode: (stored) => Effect.succeed(Either.right(stored))
}

/**
 * Logs a rejected entry: a warning naming the server key and where it was found, never the
 * content.
 *
 * @internal
 */
export const warnRejected = (
  rejection: Rejection,
  annotations: { readonly key?: string; readonly location: string }
): Effect.Effect<void> =>
  Effect.logWarning(`Ignoring unreadable token storage entry: ${rejection}; it reads as absent`).pipe(
    Effect.annotateLogs({ ...annotations })
  )

/**
 * The codec the file-system and key-value storages are built with; `TokenStorage.encrypted`
 * provides an encrypting one to the storage layer it wraps.
 *
 * @internal
 */
export class CurrentCodec extends Context.Reference<CurrentCodec>()("effect-mcp-oauth/internal/RecordCodec", {
  defaultValue: (): RecordCodec => plainCodec
}) {}
