import { Effect } from "effect"
import type { Hosted } from "./fixtures/sdkServer.js"

/** Start a fixture server for the test's scope. */
export const hosted = (start: () => Promise<Hosted>) =>
  Effect.acquireRelease(Effect.promise(start), (server) => Effect.promise(() => server.close()))
