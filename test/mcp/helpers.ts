import { Effect } from "effect"
import type { Hosted } from "./fixtures/sdkServer.js"

/** Start a fixture server for the test's scope. */
export const hosted = <H extends Hosted>(start: () => Promise<H>) =>
  Effect.acquireRelease(Effect.promise(start), (server) => Effect.promise(() => server.close()))
