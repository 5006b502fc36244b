/**
 * A Server-Sent Events parser (the `text/event-stream` format of the HTML Living Standard):
 * lines end with CRLF, LF or CR; `data` lines accumulate (joined by LF); `event`, `id` and `retry`
 * fields; lines starting with `:` are comments; an event is dispatched on a blank line, and an
 * unterminated event at the end of the stream is dropped.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
 * @since 0.1.0
 */
import * as Stream from "effect/Stream"

/**
 * One dispatched block of fields. `data` is `""` when the block had only `id`/`retry`/`event`
 * fields (a "priming" event); `id` and `retry` are what this block set, if anything.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#dispatchMessage
 * @since 0.1.0
 * @category models
 */
export interface SseEvent {
  readonly event: string
  readonly data: string
  readonly id: string | undefined
  readonly retry: number | undefined
}

/**
 * An incremental parser: feed it text chunks, get back the events completed by each chunk.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 * @since 0.1.0
 * @category constructors
 */
export const makeParser = (): { readonly feed: (chunk: string) => ReadonlyArray<SseEvent> } => {
  let buffer = ""
  let first = true
  let data: Array<string> = []
  let event = ""
  let id: string | undefined = undefined
  let retry: number | undefined = undefined
  let seen = false

  const processLine = (line: string, out: Array<SseEvent>): void => {
    if (line === "") {
      if (seen) {
        out.push({ event: event === "" ? "message" : event, data: data.join("\n"), id, retry })
      }
      data = []
      event = ""
      id = undefined
      retry = undefined
      seen = false
      return
    }
    if (line.startsWith(":")) return
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (field) {
      case "data":
        data.push(value)
        seen = true
        return
      case "event":
        event = value
        seen = true
        return
      case "id":
        if (!value.includes("\u0000")) {
          id = value
          seen = true
        }
        return
      case "retry":
        if (/^\d+$/.test(value)) {
          retry = Number(value)
          seen = true
        }
        return
      default:
        return
    }
  }

  const feed = (chunk: string): ReadonlyArray<SseEvent> => {
    buffer += chunk
    if (first && buffer.length > 0) {
      first = false
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1)
    }
    const out: Array<SseEvent> = []
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i)
      if (c === 10) {
        processLine(buffer.slice(start, i), out)
        start = i + 1
      } else if (c === 13) {
        if (i + 1 === buffer.length) break // might be the CR of a CRLF split across chunks
        processLine(buffer.slice(start, i), out)
        if (buffer.charCodeAt(i + 1) === 10) i++
        start = i + 1
      }
    }
    buffer = buffer.slice(start)
    return out
  }

  return { feed }
}

/**
 * Parse a byte stream (UTF-8) into SSE events.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
 * @since 0.1.0
 * @category combinators
 */
export const decode = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<SseEvent, E, R> =>
  Stream.suspend(() => {
    const parser = makeParser()
    return bytes.pipe(Stream.decodeText(), Stream.mapConcat(parser.feed))
  })
