/**
 * Encryption at rest of serialized storage records: AES-256-GCM through WebCrypto, a fresh
 * 96-bit IV per write, the record's location (file name / entry key) as additional
 * authenticated data, and a versioned JSON envelope naming the key by id so that keys can be
 * rotated (new records with the newest key, old ones readable with any listed key).
 *
 * Envelope: `{"format":"effect-mcp-oauth/encrypted","version":1,"alg":"A256GCM","kid":"…","iv":"…","ct":"…"}`
 * (`iv` and `ct` base64url; `ct` includes the 128-bit tag).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { StorageError } from "../Errors.js"
import type { RecordCodec, RecordContext, Rejection } from "./storageFormat.js"

/** @internal */
export const ENCRYPTED_FORMAT = "effect-mcp-oauth/encrypted"

const Envelope = Schema.Struct({
  format: Schema.Literal(ENCRYPTED_FORMAT),
  version: Schema.Number,
  alg: Schema.String,
  kid: Schema.String,
  iv: Schema.String,
  ct: Schema.String
})
const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))
const PlainHeader = Schema.parseJson(Schema.Struct({ format: Schema.String }))
const decodePlainHeader = Schema.decodeUnknownEither(PlainHeader)

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * Parses a 256-bit key written as 64 hex digits or as base64 / base64url (43–44 characters).
 *
 * @internal
 */
export const parseKey = (text: string): Either.Either<Uint8Array, string> => {
  const t = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Either.mapLeft(Encoding.decodeHex(t), () => "invalid hex")
  const b64 = /^[A-Za-z0-9+/]{43}=?$/.test(t)
    ? Encoding.decodeBase64(t)
    : /^[A-Za-z0-9_-]{43}$/.test(t)
    ? Encoding.decodeBase64Url(t)
    : Either.left(undefined)
  return Either.match(b64, {
    onLeft: () =>
      Either.left(`a storage key must be 32 bytes written as 64 hex digits or base64 (got ${t.length} characters)`),
    onRight: (bytes) =>
      bytes.length === 32 ? Either.right(bytes) : Either.left(`a storage key must be 32 bytes, got ${bytes.length}`)
  })
}

/** The id of a key: the first 12 base64url characters of SHA-256("effect-mcp-oauth/kid" ‖ key). @internal */
export const keyId = (key: Uint8Array): Effect.Effect<string> =>
  Effect.promise(() => {
    const prefix = encoder.encode("effect-mcp-oauth/kid")
    const data = new Uint8Array(prefix.length + key.length)
    data.set(prefix)
    data.set(key, prefix.length)
    return globalThis.crypto.subtle.digest("SHA-256", data)
  }).pipe(Effect.map((digest) => Encoding.encodeBase64Url(new Uint8Array(digest)).slice(0, 12)))

interface LoadedKey {
  readonly kid: string
  readonly key: CryptoKey
}

const importKey = (raw: Uint8Array): Effect.Effect<LoadedKey> =>
  Effect.zipWith(
    keyId(raw),
    Effect.promise(() => globalThis.crypto.subtle.importKey("raw", new Uint8Array(raw), { name: "AES-GCM" }, false, ["encrypt", "decrypt"])),
    (kid, key) => ({ kid, key })
  )

/** @internal */
export interface CodecOptions {
  /** The newest key first, then older ones (raw 32-byte keys). */
  readonly keys: ReadonlyArray<Redacted.Redacted<Uint8Array>>
  /** What to do with a record found unencrypted: read it (it is encrypted on its next write) or reject it. */
  readonly plaintext: "read" | "reject"
}

const decryptionError = (detail: string) => new StorageError({ reason: "Decryption", detail })

/** The configured keys: by id, and their ids listed for an error message. */
interface Keys {
  readonly byId: ReadonlyMap<string, CryptoKey>
  readonly known: string
}

type Decoded = Effect.Effect<Either.Either<string, Rejection>, StorageError>

/** AES-256-GCM with a fresh 96-bit IV, the record's location as additional data, under `current`. */
const encrypt = (current: LoadedKey, plain: string, context: RecordContext): Effect.Effect<string, StorageError> =>
  Effect.gen(function*() {
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12))
    const ct = yield* Effect.tryPromise({
      try: () =>
        globalThis.crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: encoder.encode(context.location), tagLength: 128 },
          current.key,
          encoder.encode(plain)
        ),
      catch: () => new StorageError({ reason: "Encoding", detail: "the record could not be encrypted" })
    })
    return JSON.stringify({
      format: ENCRYPTED_FORMAT,
      version: 1,
      alg: "A256GCM",
      kid: current.kid,
      iv: Encoding.encodeBase64Url(iv),
      ct: Encoding.encodeBase64Url(new Uint8Array(ct))
    }) + "\n"
  })

/** Not an encrypted envelope: an older plain record (read or refused, as configured), or corrupt content. */
const readUnencrypted = (stored: string, context: RecordContext, plaintext: CodecOptions["plaintext"]): Decoded =>
  Effect.gen(function*() {
    const header = decodePlainHeader(stored)
    if (Either.isRight(header) && header.right.format !== ENCRYPTED_FORMAT) {
      if (plaintext === "reject") {
        return yield* Effect.fail(
          decryptionError("the record is not encrypted, and unencrypted records are refused")
        )
      }
      yield* Effect.logWarning("Reading an unencrypted token storage record; it is encrypted on its next write")
        .pipe(Effect.annotateLogs({ location: context.location }))
      return Either.right(stored)
    }
    return Either.left(
      Either.isRight(header)
        ? "the encrypted record is malformed (truncated or corrupted)"
        : "the record is not valid JSON (truncated or corrupted)"
    )
  })

/**
 * Decrypt an envelope with the key it names. An unknown key or a failed authentication is a
 * `StorageError` "Decryption"; a malformed envelope a rejection (the record reads as absent).
 */
const decrypt = (e: typeof Envelope.Type, keys: Keys, context: RecordContext): Decoded =>
  Effect.gen(function*() {
    if (e.version !== 1 || e.alg !== "A256GCM") {
      return Either.left(`the encrypted record has version ${e.version} / algorithm ${e.alg}, which this version cannot read`)
    }
    const key = keys.byId.get(e.kid)
    if (key === undefined) {
      return yield* Effect.fail(
        decryptionError(
          `the record was encrypted with key ${e.kid}, which is not among the configured keys (${keys.known}); ` +
            "configure that key (as a previous key) or sign in again"
        )
      )
    }
    const iv = Either.getOrUndefined(Encoding.decodeBase64Url(e.iv))
    const ct = Either.getOrUndefined(Encoding.decodeBase64Url(e.ct))
    if (iv === undefined || ct === undefined || iv.length !== 12 || ct.length < 16) {
      return Either.left("the encrypted record is malformed (bad IV or ciphertext encoding)")
    }
    const plain = yield* Effect.tryPromise({
      try: () =>
        globalThis.crypto.subtle.decrypt(
          { name: "AES-GCM", iv: new Uint8Array(iv), additionalData: encoder.encode(context.location), tagLength: 128 },
          key,
          new Uint8Array(ct)
        ),
      catch: () =>
        decryptionError(
          `authentication failed for a record encrypted with key ${e.kid}: ` +
            "the data was tampered with, or moved from another entry"
        )
    })
    const text = Option.liftThrowable(() => decoder.decode(plain))()
    return Option.match(text, {
      onNone: () => Either.left("the decrypted record is not UTF-8"),
      onSome: Either.right
    })
  })

/**
 * Builds the AES-256-GCM codec. Fails with `StorageError` "Decryption" when no key is given.
 *
 * @internal
 */
export const makeCodec = (options: CodecOptions): Effect.Effect<RecordCodec, StorageError> =>
  Effect.gen(function*() {
    if (options.keys.length === 0) return yield* Effect.fail(decryptionError("no encryption key was configured"))
    const loaded = yield* Effect.forEach(options.keys, (k) => importKey(Redacted.value(k)))
    const current = loaded[0]!
    const keys: Keys = {
      byId: new Map(loaded.map((k) => [k.kid, k.key])),
      known: loaded.map((k) => k.kid).join(", ")
    }
    return {
      name: "aes-256-gcm",
      encode: (plain, context) => encrypt(current, plain, context),
      decode: (stored, context) =>
        Effect.suspend(() => {
          const envelope = decodeEnvelope(stored)
          return Either.isLeft(envelope)
            ? readUnencrypted(stored, context, options.plaintext)
            : decrypt(envelope.right, keys, context)
        })
    }
  })
