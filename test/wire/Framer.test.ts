import { Framer, Handshake, InfoHash, Message, PeerId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"
import { message, split } from "./arbitraries.js"

/** Pushes every chunk, collecting all messages; throws (fails the test) on a Left. */
const drain = (framer: Framer.Framer, chunks: Iterable<Uint8Array>) => {
  const out: Array<Message.Message> = []
  for (const chunk of chunks) out.push(...Either.getOrThrow(framer.push(chunk)))
  return out
}

const bytesOf = (...chunks: ReadonlyArray<ArrayLike<number>>) => new Uint8Array(chunks.flatMap((c) => Array.from(c)))
const prefix = (length: number) => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, length)
  return bytes
}

describe("Framer", () => {
  it.prop(
    "any chunking of a stream of messages yields exactly those messages",
    [fc.array(message, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 })],
    ([ms, cuts]) => {
      const stream = Message.encodeAll(ms)
      expect(drain(Framer.make(), split(stream, cuts))).toEqual(ms)
    }
  )

  it.prop("one-byte chunks yield the same messages", [fc.array(message, { maxLength: 10 })], ([ms]) => {
    const stream = Message.encodeAll(ms)
    const chunks = Array.from(stream, (_, i) => stream.subarray(i, i + 1))
    expect(drain(Framer.make(), chunks)).toEqual(ms)
  })

  it("decodes a frame that lies inside one chunk in place", () => {
    const chunk = Message.encodeAll([Message.Have(1), Message.Piece(3, 0, Uint8Array.of(1, 2, 3)), Message.KeepAlive])
    const [have, piece, keepAlive] = drain(Framer.make(), [chunk])
    expect(have).toEqual(Message.Have(1))
    expect(keepAlive).toBe(Message.KeepAlive)
    expect(piece?._tag === "Piece" && piece.block.buffer === chunk.buffer).toBe(true)
  })

  it.prop(
    "with chunksReused, messages survive their chunks being overwritten after each push",
    [fc.array(message, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 })],
    ([ms, cuts]) => {
      const framer = Framer.make({ chunksReused: true })
      const out: Array<Message.Message> = []
      // Buffers, as sockets give: their `slice` is a view, not a copy.
      for (const chunk of split(Message.encodeAll(ms), cuts).map((c) => Buffer.from(c))) {
        out.push(...Either.getOrThrow(framer.push(chunk)))
        // What a network's reused receive buffer does before the next read.
        chunk.fill(0xee)
      }
      expect(out).toEqual(ms)
    }
  )

  it("fails with MessageTooLarge on a 4 GB length prefix without allocating", () => {
    const before = process.memoryUsage().arrayBuffers
    const result = Framer.make().push(Uint8Array.of(0xff, 0xff, 0xff, 0xff))
    expect(Either.getOrThrow(Either.flip(result))).toMatchObject({
      reason: "MessageTooLarge",
      length: 0xffffffff,
      limit: Framer.DEFAULT_MAX_MESSAGE_LENGTH
    })
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20)
  })

  it("checks the limit as soon as a split prefix is complete", () => {
    const framer = Framer.make({ maxMessageLength: 100 })
    for (const byte of [0, 0, 0]) expect(Either.getOrThrow(framer.push(Uint8Array.of(byte)))).toEqual([])
    expect(Either.getOrThrow(Either.flip(framer.push(Uint8Array.of(101))))).toMatchObject({ reason: "MessageTooLarge", length: 101, limit: 100 })
  })

  it("accepts a frame exactly at the limit", () => {
    const bitfield = Message.Bitfield(new Uint8Array(99).fill(0xff))
    expect(drain(Framer.make({ maxMessageLength: 100 }), [Message.encode(bitfield)])).toEqual([bitfield])
  })

  it("skips frames with unknown ids by default and keeps decoding after them", () => {
    const stream = bytesOf(prefix(3), [42, 1, 2], Message.encode(Message.Unchoke))
    expect(drain(Framer.make(), split(stream, [5]))).toEqual([Message.Unchoke])
    const strict = Framer.make({ failOnUnknown: true }).push(stream)
    expect(Either.getOrThrow(Either.flip(strict))).toMatchObject({ reason: "UnknownMessage", messageId: 42 })
  })

  it("fails on a known id with a payload of the wrong size", () => {
    const stream = bytesOf(Message.encode(Message.Choke), prefix(3), [4, 0, 0])
    expect(Either.getOrThrow(Either.flip(Framer.make().push(stream)))).toMatchObject({ reason: "BadLength", messageId: 4 })
  })

  it.prop(
    "random bytes in random chunks only ever give messages or a typed error",
    [fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 })],
    ([bytes, cuts]) => {
      const framer = Framer.make({ maxMessageLength: 64 })
      for (const chunk of split(bytes, cuts)) {
        const result = framer.push(chunk)
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("ProtocolError")
          break
        }
      }
    }
  )
})

describe("Framer.makeHandshakeReader", () => {
  const handshake = Handshake.make({
    infoHash: InfoHash.unsafeFromBytes(new Uint8Array(20).fill(7)),
    peerId: PeerId.generate(),
    extensionProtocol: true
  })
  const opening = [Message.Bitfield(Uint8Array.of(0xf0)), Message.Unchoke, Message.Piece(0, 0, Uint8Array.of(1))]
  const stream = bytesOf(Handshake.encode(handshake), Message.encodeAll(opening))

  it.prop("returns the handshake and hands the bytes after it to the message framer", [fc.array(fc.nat(), { maxLength: 6 })], ([cuts]) => {
    const reader = Framer.makeHandshakeReader()
    const framer = Framer.make()
    const messages: Array<Message.Message> = []
    let received: Handshake.Handshake | undefined
    for (const chunk of split(stream, cuts)) {
      if (received !== undefined) {
        messages.push(...drain(framer, [chunk]))
        continue
      }
      const result = Either.getOrThrow(reader.push(chunk))
      if (Option.isSome(result)) {
        received = result.value.handshake
        messages.push(...drain(framer, [result.value.rest]))
      }
    }
    expect(received).toEqual(Either.getOrThrow(Handshake.decode(Handshake.encode(handshake))))
    expect(messages).toEqual(opening)
  })

  it("fails on the first byte that is not the protocol header", () => {
    expect(Either.isLeft(Framer.makeHandshakeReader().push(Uint8Array.of(0x47)))).toBe(true)
    const reader = Framer.makeHandshakeReader()
    expect(Either.getOrThrow(reader.push(Handshake.PROTOCOL_HEADER.subarray(0, 5)))).toEqual(Option.none())
    expect(Either.getOrThrow(Either.flip(reader.push(Buffer.from("x"))))).toMatchObject({ reason: "BadHandshake" })
  })
})
