import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Sse from "../../src/mcp/Sse.js"

const parseChunks = (chunks: ReadonlyArray<string>) => {
  const encoder = new TextEncoder()
  return Sse.decode(Stream.fromIterable(chunks.map((c) => encoder.encode(c)))).pipe(
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )
}

describe("SSE parser (HTML Living Standard event-stream)", () => {
  it.effect("multi-line data, event names, ids, retry and comments", () =>
    Effect.gen(function*() {
      const events = yield* parseChunks([
        ": a comment\n",
        "event: message\nid: 7\ndata: {\"a\":\ndata: 1}\n\n",
        "retry: 1500\n\n",
        "data:no-space\n\n",
        "data\n\n"
      ])
      expect(events).toEqual([
        { event: "message", data: "{\"a\":\n1}", id: "7", retry: undefined },
        { event: "message", data: "", id: undefined, retry: 1500 },
        { event: "message", data: "no-space", id: undefined, retry: undefined },
        { event: "message", data: "", id: undefined, retry: undefined }
      ])
    }))

  it.effect("CRLF, lone CR and LF line endings, split anywhere, multi-byte characters across chunks", () =>
    Effect.gen(function*() {
      const text = "id: a\r\ndata: é€\r\rdata: x\n\nevent: endpoint\rdata: /m?s=1\r\n\r\n"
      const bytes = new TextEncoder().encode(text)
      // split every byte (multi-byte characters and CRLF pairs end up in different chunks)
      const events = yield* Sse.decode(Stream.fromIterable(Array.from(bytes, (b) => new Uint8Array([b])))).pipe(
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      expect(events.map((e) => [e.event, e.data, e.id])).toEqual([
        ["message", "é€", "a"],
        ["message", "x", undefined],
        ["endpoint", "/m?s=1", undefined]
      ])
    }))

  it.effect("ignores an invalid retry and a NUL id, strips a leading BOM, drops an unterminated event", () =>
    Effect.gen(function*() {
      const events = yield* parseChunks(["\uFEFFretry: soon\nid: a\u0000b\ndata: 1\n\n", "data: never dispatched"])
      expect(events).toEqual([{ event: "message", data: "1", id: undefined, retry: undefined }])
    }))

  it.effect("the conformance priming event: id and retry with empty data", () =>
    Effect.gen(function*() {
      const events = yield* parseChunks(["id: event-1\nretry: 500\ndata: \n\n"])
      expect(events).toEqual([{ event: "message", data: "", id: "event-1", retry: 500 }])
    }))
})
