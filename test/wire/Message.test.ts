import { Message } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { message } from "./arbitraries.js"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const decodeError = (frame: Uint8Array) => Either.getOrThrow(Either.flip(Message.decode(frame)))

describe("Message", () => {
  it("encodes the BEP 3 byte layouts", () => {
    expect(hex(Message.encode(Message.KeepAlive))).toBe("00000000")
    expect(hex(Message.encode(Message.Choke))).toBe("0000000100")
    expect(hex(Message.encode(Message.Interested))).toBe("0000000102")
    expect(hex(Message.encode(Message.Have(0x01020304)))).toBe("000000050401020304")
    expect(hex(Message.encode(Message.Bitfield(Uint8Array.of(0xff, 0x80))))).toBe("0000000305ff80")
    expect(hex(Message.encode(Message.Request(1, 0x4000, 0x4000)))).toBe("0000000d06000000010000400000004000")
    expect(hex(Message.encode(Message.Piece(0xffffffff, 2, Uint8Array.of(9, 8))))).toBe("0000000b07ffffffff000000020908")
    expect(hex(Message.encode(Message.Port(6881)))).toBe("00000003091ae1")
    expect(hex(Message.encode(Message.HaveAll))).toBe("000000010e")
    expect(hex(Message.encode(Message.Reject(1, 2, 3)))).toBe("0000000d10000000010000000200000003")
    expect(hex(Message.encode(Message.Extended(0, Uint8Array.of(0x64, 0x65))))).toBe("0000000414006465")
  })

  it.prop("every message round-trips through encode and decode", [message], ([m]) => {
    const bytes = Message.encode(m)
    expect(bytes.length).toBe(Message.encodedLength(m))
    expect(Buffer.from(bytes).readUInt32BE(0)).toBe(bytes.length - 4)
    expect(Either.getOrThrow(Message.decode(bytes.subarray(4)))).toEqual(m)
  })

  it.prop("encodeAll is the concatenation of encode", [fc.array(message, { maxLength: 20 })], ([ms]) => {
    expect(hex(Message.encodeAll(ms))).toBe(ms.map((m) => hex(Message.encode(m))).join(""))
  })

  it("a piece header followed by the block is the piece message", () => {
    const block = Uint8Array.from({ length: 100 }, (_, i) => i)
    const gathered = Buffer.concat([Message.encodePieceHeader(7, 16384, block.length), block])
    expect(hex(gathered)).toBe(hex(Message.encode(Message.Piece(7, 16384, block))))
    expect(Message.encodePieceHeader(0, 0, 0).length).toBe(Message.PIECE_HEADER_LENGTH)
  })

  it("decodes a piece's block as a view of the frame, not a copy", () => {
    const frame = Message.encode(Message.Piece(1, 2, Uint8Array.of(5, 6, 7))).subarray(4)
    const piece = Either.getOrThrow(Message.decode(frame))
    expect(piece._tag).toBe("Piece")
    if (piece._tag !== "Piece") return
    expect(piece.block.buffer).toBe(frame.buffer)
    expect(piece.block.byteOffset).toBe(frame.byteOffset + 9)
  })

  it("rejects payloads of the wrong size for their id", () => {
    const cases: ReadonlyArray<[id: number, length: number]> = [
      [0, 1], [1, 4], [2, 1], [3, 2], [4, 3], [4, 5], [6, 11], [6, 13], [7, 7], [8, 0], [9, 1], [9, 3],
      [13, 0], [14, 1], [15, 1], [16, 12 + 1], [17, 8], [20, 0]
    ]
    for (const [id, length] of cases) {
      expect(decodeError(new Uint8Array([id, ...new Uint8Array(length)]))).toMatchObject({
        reason: "BadLength",
        messageId: id,
        length
      })
    }
  })

  it("reports unknown ids with the id, so a caller may skip them", () => {
    for (const id of [10, 11, 12, 18, 19, 21, 255]) {
      expect(decodeError(Uint8Array.of(id, 1, 2))).toMatchObject({ reason: "UnknownMessage", messageId: id, length: 2 })
    }
  })

  it("accepts an empty bitfield and an empty extended payload", () => {
    expect(Either.getOrThrow(Message.decode(Uint8Array.of(5)))).toEqual(Message.Bitfield(new Uint8Array(0)))
    expect(Either.getOrThrow(Message.decode(Uint8Array.of(20, 3)))).toEqual(Message.Extended(3, new Uint8Array(0)))
  })

  it.prop("random frames only ever give a typed error", [fc.uint8Array({ maxLength: 40 })], ([frame]) => {
    const result = Message.decode(frame)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("ProtocolError")
    else expect(hex(Message.encode(result.right).subarray(4))).toBe(hex(frame))
  })
})
