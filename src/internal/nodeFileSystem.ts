/**
 * Node's `FileSystem` and `Path`, loaded when a file-backed layer is built rather than when the
 * module that offers it is imported: an app that keeps its tokens in memory, Redis or its own
 * store never loads Node's file system implementation.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** @internal */
export const layer: Layer.Layer<FileSystem.FileSystem | Path.Path> = Layer.unwrapEffect(
  Effect.promise(async () => {
    const [NodeFileSystem, NodePath] = await Promise.all([
      import("@effect/platform-node/NodeFileSystem"),
      import("@effect/platform-node/NodePath")
    ])
    return Layer.merge(NodeFileSystem.layer, NodePath.layer)
  })
)
