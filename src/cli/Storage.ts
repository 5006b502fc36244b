/**
 * The CLI's `--storage file|keychain|auto` option and the storage layers it names, shared by the
 * `login` / `status` / `token` / `logout` commands and `proxy`.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Layer from "effect/Layer"
import * as TokenLock from "../TokenLock.js"
import * as TokenStorage from "../TokenStorage.js"

/**
 * Where credentials live: `file` (the credential directory, encrypted when
 * `MCP_OAUTH_STORAGE_KEY` is set), `keychain` (the OS keychain) or `auto` (the keychain when the
 * machine has one — moving the files into it — else the files).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category models
 */
export type StorageKind = "file" | "keychain" | "auto"

/**
 * The `--storage` option (default `file`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.6
 * @since 0.1.0
 * @category options
 */
export const option: Options.Options<StorageKind> = Options.choice("storage", ["file", "keychain", "auto"]).pipe(
  Options.withDescription(
    "Where credentials live: file (the credential directory), keychain (the OS keychain), " +
      "auto (the keychain when there is one, moving the files into it; else the files)"
  ),
  Options.withDefault("file" as const)
)

/**
 * The storage `kind` names (its lock files, if any, in `directory`) and the file `TokenLock` in
 * `directory`, which every process using that directory shares.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 * @since 0.1.0
 * @category layers
 */
export const layer = (directory: string, kind: StorageKind) =>
  Layer.merge(
    kind === "keychain"
      ? TokenStorage.layerKeychain({ lockDirectory: directory })
      : kind === "auto"
      ? TokenStorage.layerAuto({ directory })
      : TokenStorage.encryptedFromConfig(TokenStorage.layerFileSystem(directory)),
    TokenLock.layerFile(directory)
  ).pipe(Layer.provide(NodeContext.layer))

/**
 * Where `kind` keeps credentials, in words (for "no stored credentials in …").
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (directory: string, kind: StorageKind): string =>
  kind === "keychain" ? "the OS keychain" : kind === "auto" ? `the OS keychain or ${directory}` : directory
