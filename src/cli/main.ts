#!/usr/bin/env node
/**
 * Entry point of the `effect-mcp-oauth` command (see `Cli.ts`). Runs with tsx from the sources
 * and as `dist/cli/main.js` once built.
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

Cli.run(process.argv.slice(2)).pipe(
  Effect.flatMap((code) => Effect.sync(() => void (process.exitCode = code))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
