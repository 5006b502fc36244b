/**
 * Spans only when someone records them. Effect's built-in tracer exports nothing, yet every span
 * still costs a stack trace, attributes and, in the HTTP client below, a `traceparent` header
 * and one attribute per header. With that tracer in place a hot path runs with tracing off; with
 * any other tracer (OpenTelemetry, a test's recorder) it gets its span as before.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"

/** The tracer of the default services: Effect's own, which exports nothing. */
const builtInTracer: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * `Effect.withSpan(name, options)` when the app installed a tracer; otherwise the effect runs with
 * tracing disabled (no span here nor below it).
 *
 * @internal
 */
export const withSpanIfTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) =>
    tracer === builtInTracer ? Effect.withTracerEnabled(effect, false) : Effect.withSpan(effect, name, options)
  )

/**
 * Whether `fiber` has a tracer other than Effect's own (one that records spans).
 *
 * @internal
 */
export const isTraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  Context.get(fiber.currentDefaultServices, Tracer.Tracer) !== builtInTracer

/**
 * `Effect.withSpan(name, options)` when the app installed a tracer; otherwise the effect as it
 * is (the caller turns tracing off where the work happens, e.g. in a fiber it forks).
 *
 * @internal
 */
export const spanIfTraced = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === builtInTracer ? effect : Effect.withSpan(effect, name, options))
