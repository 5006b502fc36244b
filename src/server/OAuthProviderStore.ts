/**
 * The state of the embedded authorization server — registered clients, authorization codes,
 * access and refresh tokens, pending consent requests — behind a small storage service. The
 * in-memory implementation is the default; the records are `Schema` classes so that a
 * persistent implementation can encode them.
 *
 * @since 0.1.0
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { typed } from "../internal/typed.js"

const StringArray = Schema.Array(Schema.String)

/**
 * The token endpoint client authentication methods the embedded server accepts.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category models
 */
export const ClientAuthMethod = Schema.Literal("none", "client_secret_basic", "client_secret_post")

/**
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-2
 * @since 0.1.0
 * @category models
 */
export type ClientAuthMethod = typeof ClientAuthMethod.Type

/**
 * A client known to the authorization server, registered dynamically (RFC 7591 §3.2.1) or
 * pre-registered. `clientSecret` is absent for public clients (`token_endpoint_auth_method`
 * `none`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1
 * @since 0.1.0
 * @category models
 */
export class RegisteredClient extends Schema.Class<RegisteredClient>("RegisteredClient")({
  clientId: Schema.String,
  clientSecret: Schema.optional(Schema.Redacted(Schema.String)),
  tokenEndpointAuthMethod: ClientAuthMethod,
  redirectUris: StringArray,
  grantTypes: StringArray,
  responseTypes: StringArray,
  clientName: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  /** Seconds since the epoch (RFC 7591 §3.2.1 `client_id_issued_at`). */
  clientIdIssuedAt: Schema.Number,
  /** `application_type` (OpenID Connect Registration §2; default `web`): `native` may use private-use schemes. */
  applicationType: Schema.optional(Schema.Literal("web", "native")),
  /**
   * How the server came to know the client: `operator` (pre-registered in process),
   * `dynamic` (RFC 7591) or `metadataDocument` (CIMD). Only operator clients are trusted to
   * receive error redirects to non-loopback URIs (RFC 9700 §4.11.2); absent means untrusted.
   */
  origin: Schema.optional(Schema.Literal("operator", "dynamic", "metadataDocument")),
  /** SHA-256 (base64url) of the RFC 7592 registration access token of a dynamically registered client. */
  registrationAccessTokenHash: Schema.optional(Schema.String)
}) {}

/**
 * An issued authorization code (RFC 6749 §4.1.2) with the PKCE challenge (RFC 7636 §4.4) and
 * everything the token request must be consistent with. Kept after use (`used`) until it expires,
 * so that a replay can be detected and the tokens issued from it revoked (OAuth 2.1 §4.1.3).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.4
 * @since 0.1.0
 * @category models
 */
export class AuthorizationCode extends Schema.Class<AuthorizationCode>("AuthorizationCode")({
  code: Schema.Redacted(Schema.String),
  clientId: Schema.String,
  redirectUri: Schema.String,
  codeChallenge: Schema.String,
  subject: Schema.String,
  scopes: StringArray,
  resource: Schema.optional(Schema.String),
  /** Epoch milliseconds. */
  expiresAt: Schema.Number,
  used: Schema.Boolean,
  /** The token family issued from this code (set when it is redeemed). */
  familyId: Schema.String
}) {}

/**
 * An issued access token. `familyId` ties it to the grant it came from (one authorization, all
 * of its refreshes), so that a replayed code or refresh token revokes the whole family.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-1.4
 * @since 0.1.0
 * @category models
 */
export class AccessTokenRecord extends Schema.Class<AccessTokenRecord>("AccessTokenRecord")({
  token: Schema.Redacted(Schema.String),
  clientId: Schema.String,
  subject: Schema.String,
  scopes: StringArray,
  resource: Schema.optional(Schema.String),
  /** Epoch milliseconds. */
  expiresAt: Schema.Number,
  familyId: Schema.String
}) {}

/**
 * An issued refresh token. Rotated on every use (OAuth 2.1 §4.3.1): the used token stays
 * recorded with `used: true` so that presenting it again is recognised as reuse.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.3.1
 * @since 0.1.0
 * @category models
 */
export class RefreshTokenRecord extends Schema.Class<RefreshTokenRecord>("RefreshTokenRecord")({
  token: Schema.Redacted(Schema.String),
  clientId: Schema.String,
  subject: Schema.String,
  scopes: StringArray,
  resource: Schema.optional(Schema.String),
  /** Epoch milliseconds. */
  expiresAt: Schema.Number,
  familyId: Schema.String,
  used: Schema.Boolean,
  /** When it was first used (rotated), epoch milliseconds. */
  usedAt: Schema.optional(Schema.Number)
}) {}

/**
 * A validated authorization request waiting for the user's decision on the consent page.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @since 0.1.0
 * @category models
 */
export class PendingAuthorization extends Schema.Class<PendingAuthorization>("PendingAuthorization")({
  id: Schema.Redacted(Schema.String),
  clientId: Schema.String,
  redirectUri: Schema.String,
  codeChallenge: Schema.String,
  state: Schema.optional(Schema.String),
  scopes: StringArray,
  resource: Schema.optional(Schema.String),
  subject: Schema.String,
  /** Epoch milliseconds. */
  expiresAt: Schema.Number,
  /**
   * The PKCE verifier of the OAuth proxy's own request to its upstream server (RFC 7636 §4.1),
   * while the user signs in there; absent for the embedded server's consent page.
   */
  upstreamCodeVerifier: Schema.optional(Schema.Redacted(Schema.String))
}) {}

/**
 * Storage of the embedded authorization server. Operations that must be atomic for security
 * (`consumeCode`, `useRefreshToken`, `takePending`) mark or remove the record and return what it
 * was before, in one step.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @since 0.1.0
 * @category models
 */
export interface OAuthProviderStore {
  readonly getClient: (clientId: string) => Effect.Effect<Option.Option<RegisteredClient>>
  readonly putClient: (client: RegisteredClient) => Effect.Effect<void>
  readonly deleteClient: (clientId: string) => Effect.Effect<void>
  readonly clearClients: Effect.Effect<void>
  readonly putCode: (code: AuthorizationCode) => Effect.Effect<void>
  /** The code as stored, without marking it used (to check who may redeem it first). */
  readonly getCode: (code: string) => Effect.Effect<Option.Option<AuthorizationCode>>
  /** Marks the code used (recording the family its tokens belong to); returns it as it was. */
  readonly consumeCode: (code: string, familyId: string) => Effect.Effect<Option.Option<AuthorizationCode>>
  readonly putAccessToken: (token: AccessTokenRecord) => Effect.Effect<void>
  readonly getAccessToken: (token: string) => Effect.Effect<Option.Option<AccessTokenRecord>>
  readonly deleteAccessToken: (token: string) => Effect.Effect<void>
  readonly putRefreshToken: (token: RefreshTokenRecord) => Effect.Effect<void>
  readonly getRefreshToken: (token: string) => Effect.Effect<Option.Option<RefreshTokenRecord>>
  /** Marks the refresh token used; returns it as it was. */
  readonly useRefreshToken: (token: string, now?: number) => Effect.Effect<Option.Option<RefreshTokenRecord>>
  /** Deletes every access and refresh token of a family. */
  readonly revokeFamily: (familyId: string) => Effect.Effect<void>
  /**
   * Deletes every access and refresh token issued to a client (RFC 7592 §2.3: a deleted
   * client's grants end with it).
   */
  readonly revokeClientTokens: (clientId: string) => Effect.Effect<void>
  readonly clearRefreshTokens: Effect.Effect<void>
  readonly putPending: (pending: PendingAuthorization) => Effect.Effect<void>
  /** Removes and returns a pending authorization (single use). */
  readonly takePending: (id: string) => Effect.Effect<Option.Option<PendingAuthorization>>
}

/**
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @since 0.1.0
 * @category tags
 */
export const OAuthProviderStore: Context.Tag<OAuthProviderStore, OAuthProviderStore> = Context.GenericTag<
  OAuthProviderStore
>("effect-mcp-oauth/server/OAuthProviderStore")

/**
 * An in-memory store. Every operation is a single synchronous step, so the atomic operations
 * are atomic. Expired codes, tokens and pending requests are swept at most once a minute, when
 * something new is stored.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<OAuthProviderStore> = Effect.sync(() => {
  const clients = new Map<string, RegisteredClient>()
  const codes = new Map<string, AuthorizationCode>()
  const accessTokens = new Map<string, AccessTokenRecord>()
  const refreshTokens = new Map<string, RefreshTokenRecord>()
  const pending = new Map<string, PendingAuthorization>()
  let lastSweep = 0
  const sweep = (now: number) => {
    if (now - lastSweep < 60_000) return
    lastSweep = now
    for (const map of [codes, accessTokens, refreshTokens, pending] as const) {
      for (const [k, v] of map) if (v.expiresAt <= now) map.delete(k)
    }
  }
  /** Stores a record after sweeping expired ones. */
  const put = <A>(map: Map<string, A>, key: string, value: A) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      sweep(now)
      map.set(key, value)
    })
  return OAuthProviderStore.of({
    getClient: (clientId) => Effect.sync(() => Option.fromNullable(clients.get(clientId))),
    putClient: (client) => Effect.sync(() => void clients.set(client.clientId, client)),
    deleteClient: (clientId) => Effect.sync(() => void clients.delete(clientId)),
    clearClients: Effect.sync(() => clients.clear()),
    putCode: (code) => put(codes, Redacted.value(code.code), code),
    getCode: (code) => Effect.sync(() => Option.fromNullable(codes.get(code))),
    consumeCode: (code, familyId) =>
      Effect.sync(() => {
        const found = codes.get(code)
        if (found === undefined) return Option.none()
        if (!found.used) codes.set(code, new AuthorizationCode({ ...found, used: true, familyId }, typed))
        return Option.some(found)
      }),
    putAccessToken: (token) => put(accessTokens, Redacted.value(token.token), token),
    getAccessToken: (token) => Effect.sync(() => Option.fromNullable(accessTokens.get(token))),
    deleteAccessToken: (token) => Effect.sync(() => void accessTokens.delete(token)),
    putRefreshToken: (token) => put(refreshTokens, Redacted.value(token.token), token),
    getRefreshToken: (token) => Effect.sync(() => Option.fromNullable(refreshTokens.get(token))),
    useRefreshToken: (token, now) =>
      Effect.sync(() => {
        const found = refreshTokens.get(token)
        if (found === undefined) return Option.none()
        if (!found.used) {
          refreshTokens.set(
            token,
            new RefreshTokenRecord({ ...found, used: true, ...(now === undefined ? {} : { usedAt: now }) }, typed)
          )
        }
        return Option.some(found)
      }),
    revokeFamily: (familyId) =>
      Effect.sync(() => {
        for (const [k, v] of accessTokens) if (v.familyId === familyId) accessTokens.delete(k)
        for (const [k, v] of refreshTokens) if (v.familyId === familyId) refreshTokens.delete(k)
      }),
    revokeClientTokens: (clientId) =>
      Effect.sync(() => {
        for (const [k, v] of accessTokens) if (v.clientId === clientId) accessTokens.delete(k)
        for (const [k, v] of refreshTokens) if (v.clientId === clientId) refreshTokens.delete(k)
      }),
    clearRefreshTokens: Effect.sync(() => refreshTokens.clear()),
    putPending: (p) => put(pending, Redacted.value(p.id), p),
    takePending: (id) =>
      Effect.sync(() => {
        const found = pending.get(id)
        pending.delete(id)
        return Option.fromNullable(found)
      })
  })
})

/**
 * The in-memory store as a layer.
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<OAuthProviderStore> = Layer.effect(OAuthProviderStore, makeMemory)

const FamilyIndex = Schema.Struct({ access: StringArray, refresh: StringArray })
const KeyList = StringArray

const digest = (value: string): string => createHash("sha256").update(value).digest("base64url")

/** The key-value store and its typed views, one per kind of record. */
interface Records {
  readonly kv: KeyValueStore.KeyValueStore
  readonly clients: KeyValueStore.SchemaStore<RegisteredClient, never>
  readonly codes: KeyValueStore.SchemaStore<AuthorizationCode, never>
  readonly access: KeyValueStore.SchemaStore<AccessTokenRecord, never>
  readonly refresh: KeyValueStore.SchemaStore<RefreshTokenRecord, never>
  readonly pendings: KeyValueStore.SchemaStore<PendingAuthorization, never>
  readonly families: KeyValueStore.SchemaStore<typeof FamilyIndex.Type, never>
  readonly lists: KeyValueStore.SchemaStore<typeof KeyList.Type, never>
}

const records = (kv: KeyValueStore.KeyValueStore): Records => ({
  kv,
  clients: kv.forSchema(RegisteredClient),
  codes: kv.forSchema(AuthorizationCode),
  access: kv.forSchema(AccessTokenRecord),
  refresh: kv.forSchema(RefreshTokenRecord),
  pendings: kv.forSchema(PendingAuthorization),
  families: kv.forSchema(FamilyIndex),
  lists: kv.forSchema(KeyList)
})

const listGet = (r: Records, key: string) =>
  Effect.map(r.lists.get(key), Option.getOrElse((): ReadonlyArray<string> => []))

const listAdd = (r: Records, key: string, item: string) =>
  Effect.flatMap(listGet(r, key), (items) => items.includes(item) ? Effect.void : r.lists.set(key, [...items, item]))

/** Remove every key `keyOf(item)` for the items listed under `index`, then the list. */
const clearListed = (r: Records, index: string, keyOf: (item: string) => string) =>
  Effect.gen(function*() {
    for (const item of yield* listGet(r, index)) yield* r.kv.remove(keyOf(item))
    yield* r.kv.remove(index)
  })

const familyAdd = (r: Records, familyId: string, kind: "access" | "refresh", hash: string) =>
  Effect.flatMap(r.families.get(`family:${familyId}`), (found) => {
    const current = Option.getOrElse(found, () => ({ access: [], refresh: [] }))
    return r.families.set(`family:${familyId}`, { ...current, [kind]: [...current[kind], hash] })
  })

const removeFamily = (r: Records, familyId: string) =>
  Effect.gen(function*() {
    const found = yield* r.families.get(`family:${familyId}`)
    if (Option.isNone(found)) return
    for (const hash of found.value.access) yield* r.kv.remove(`access:${hash}`)
    for (const hash of found.value.refresh) yield* r.kv.remove(`refresh:${hash}`)
    yield* r.kv.remove(`family:${familyId}`)
  })

/** A record, or `None` (deleted) once it has expired. */
const live = <A extends { readonly expiresAt: number }>(store: KeyValueStore.SchemaStore<A, never>, key: string) =>
  Effect.gen(function*() {
    const found = yield* store.get(key)
    if (Option.isNone(found)) return found
    const now = yield* Clock.currentTimeMillis
    if (found.value.expiresAt > now) return found
    yield* store.remove(key)
    return Option.none<A>()
  })

/** The live code, marked used (in `familyId`) unless it already was; the caller sees whether it was. */
const consumeCode = (r: Records, code: string, familyId: string) =>
  Effect.gen(function*() {
    const key = `code:${digest(code)}`
    const found = yield* live(r.codes, key)
    if (Option.isSome(found) && !found.value.used) {
      yield* r.codes.set(key, new AuthorizationCode({ ...found.value, used: true, familyId }, typed))
    }
    return found
  })

const putAccessToken = (r: Records, token: AccessTokenRecord) =>
  Effect.gen(function*() {
    const hash = digest(Redacted.value(token.token))
    yield* r.access.set(`access:${hash}`, token)
    yield* familyAdd(r, token.familyId, "access", hash)
    yield* listAdd(r, `client-families:${token.clientId}`, token.familyId)
  })

const putRefreshToken = (r: Records, token: RefreshTokenRecord) =>
  Effect.gen(function*() {
    const hash = digest(Redacted.value(token.token))
    yield* r.refresh.set(`refresh:${hash}`, token)
    yield* familyAdd(r, token.familyId, "refresh", hash)
    yield* listAdd(r, `client-families:${token.clientId}`, token.familyId)
    yield* listAdd(r, "index:refresh", hash)
  })

/** The live refresh token, marked used (at `now`) unless it already was; the caller sees whether it was. */
const useRefreshToken = (r: Records, token: string, now: number | undefined) =>
  Effect.gen(function*() {
    const key = `refresh:${digest(token)}`
    const found = yield* live(r.refresh, key)
    if (Option.isSome(found) && !found.value.used) {
      yield* r.refresh.set(
        key,
        new RefreshTokenRecord({ ...found.value, used: true, ...(now === undefined ? {} : { usedAt: now }) }, typed)
      )
    }
    return found
  })

const revokeClientTokens = (r: Records, clientId: string) =>
  Effect.gen(function*() {
    for (const familyId of yield* listGet(r, `client-families:${clientId}`)) yield* removeFamily(r, familyId)
    yield* r.kv.remove(`client-families:${clientId}`)
  })

const takePending = (r: Records, id: string) =>
  Effect.gen(function*() {
    const key = `pending:${digest(id)}`
    const found = yield* live(r.pendings, key)
    yield* r.kv.remove(key)
    return found
  })

/**
 * A store over any `@effect/platform` `KeyValueStore` (files, Redis, browser storage, …), so
 * that clients and grants survive a restart. Codes, tokens and pending requests are stored under
 * the SHA-256 of their value (a listing of keys reveals no token); records are `Schema`-encoded
 * JSON, and expired ones are deleted when read.
 *
 * The atomic operations (`consumeCode`, `useRefreshToken`, `takePending`) and every write are
 * serialised by a semaphore, so they are atomic within one process; a store shared by several
 * processes needs a backend with compare-and-set. A failing backend is a defect (HTTP 500).
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.3.1
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyValueStore = (
  options: { readonly prefix?: string | undefined } = {}
): Effect.Effect<OAuthProviderStore, never, KeyValueStore.KeyValueStore> =>
  Effect.gen(function*() {
    const kv = yield* KeyValueStore.KeyValueStore
    const r = records(KeyValueStore.prefix(kv, options.prefix ?? "effect-mcp-oauth/as/"))
    const lock = yield* Effect.makeSemaphore(1)
    const serial = <A, E, R>(effect: Effect.Effect<A, E, R>) => lock.withPermits(1)(effect)

    return OAuthProviderStore.of({
      getClient: (clientId) => r.clients.get(`client:${clientId}`).pipe(Effect.orDie),
      putClient: (client) =>
        serial(Effect.zipRight(
          r.clients.set(`client:${client.clientId}`, client),
          listAdd(r, "index:clients", client.clientId)
        )).pipe(Effect.orDie),
      deleteClient: (clientId) => serial(r.kv.remove(`client:${clientId}`)).pipe(Effect.orDie),
      clearClients: serial(clearListed(r, "index:clients", (id) => `client:${id}`)).pipe(Effect.orDie),
      putCode: (code) => serial(r.codes.set(`code:${digest(Redacted.value(code.code))}`, code)).pipe(Effect.orDie),
      getCode: (code) => live(r.codes, `code:${digest(code)}`).pipe(Effect.orDie),
      consumeCode: (code, familyId) => serial(consumeCode(r, code, familyId)).pipe(Effect.orDie),
      putAccessToken: (token) => serial(putAccessToken(r, token)).pipe(Effect.orDie),
      getAccessToken: (token) => live(r.access, `access:${digest(token)}`).pipe(Effect.orDie),
      deleteAccessToken: (token) => serial(r.kv.remove(`access:${digest(token)}`)).pipe(Effect.orDie),
      putRefreshToken: (token) => serial(putRefreshToken(r, token)).pipe(Effect.orDie),
      getRefreshToken: (token) => live(r.refresh, `refresh:${digest(token)}`).pipe(Effect.orDie),
      useRefreshToken: (token, now) => serial(useRefreshToken(r, token, now)).pipe(Effect.orDie),
      revokeFamily: (familyId) => serial(removeFamily(r, familyId)).pipe(Effect.orDie),
      revokeClientTokens: (clientId) => serial(revokeClientTokens(r, clientId)).pipe(Effect.orDie),
      clearRefreshTokens: serial(clearListed(r, "index:refresh", (hash) => `refresh:${hash}`)).pipe(Effect.orDie),
      putPending: (p) => serial(r.pendings.set(`pending:${digest(Redacted.value(p.id))}`, p)).pipe(Effect.orDie),
      takePending: (id) => serial(takePending(r, id)).pipe(Effect.orDie)
    })
  })

/**
 * {@link makeKeyValueStore} as a layer, on the `KeyValueStore` in context (for example
 * `KeyValueStore.layerMemory` or `NodeKeyValueStore.layerFileSystem(dir)`).
 *
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1#section-4.1.3
 * @since 0.1.0
 * @category layers
 */
export const layerKeyValueStore = (
  options: { readonly prefix?: string | undefined } = {}
): Layer.Layer<OAuthProviderStore, never, KeyValueStore.KeyValueStore> =>
  Layer.effect(OAuthProviderStore, makeKeyValueStore(options))
