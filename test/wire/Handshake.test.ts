import { Handshake, InfoHash, PeerId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const infoHash = InfoHash.unsafeFromBytes(Uint8Array.from({ length: 20 }, (_, i) => i + 1))
const peerId = PeerId.unsafeFromBytes(Buffer.from("-BF0100-abcdefghijkl", "latin1"))
const bytes20 = fc.uint8Array({ minLength: 20, maxLength: 20 })

const decodeError = (bytes: Uint8Array) => Either.getOrThrow(Either.flip(Handshake.decode(bytes)))

describe("Handshake", () => {
  it("lays out pstrlen, pstr, reserved, info-hash and peer id in 68 bytes", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId, extensionProtocol: true }))
    expect(bytes.length).toBe(Handshake.LENGTH)
    expect(bytes[0]).toBe(19)
    expect(Buffer.from(bytes.subarray(1, 20)).toString("latin1")).toBe("BitTorrent protocol")
    expect(Array.from(bytes.subarray(20, 28))).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
    expect(bytes.subarray(28, 48)).toEqual(infoHash)
    expect(Buffer.from(bytes.subarray(48)).toString("latin1")).toBe("-BF0100-abcdefghijkl")
  })

  it("sets the BEP 10, BEP 6 and BEP 5 bits", () => {
    const reserved = (flags: { extensionProtocol?: boolean; fast?: boolean; dht?: boolean }) =>
      Array.from(Handshake.encode(Handshake.make({ infoHash, peerId, ...flags })).subarray(20, 28))
    expect(reserved({ fast: true })).toEqual([0, 0, 0, 0, 0, 0, 0, 0x04])
    expect(reserved({ dht: true })).toEqual([0, 0, 0, 0, 0, 0, 0, 0x01])
    expect(reserved({ extensionProtocol: true, fast: true, dht: true })).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0x05])
    expect(reserved({})).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
  })

  it("reads the flags of a libtorrent handshake and keeps the other reserved bits", () => {
    const bytes = Handshake.encode(Handshake.make({ infoHash, peerId }))
    bytes.set([0x80, 0, 0, 0, 0, 0x18, 0, 0x05], 20)
    const decoded = Either.getOrThrow(Handshake.decode(bytes))
    expect(decoded).toMatchObject({ extensionProtocol: true, fast: true, dht: true })
    expect(Array.from(decoded.reserved)).toEqual([0x80, 0, 0, 0, 0, 0x18, 0, 0x05])
    expect(Handshake.encode(decoded)).toEqual(bytes)
  })

  it("encodes the flags over contradicting reserved bits", () => {
    const handshake = { ...Handshake.make({ infoHash, peerId }), reserved: Uint8Array.of(1, 0, 0, 0, 0, 0xff, 0, 0xff) }
    expect(Array.from(Handshake.encode(handshake).subarray(20, 28))).toEqual([1, 0, 0, 0, 0, 0xef, 0, 0xfa])
  })

  it.prop(
    "round-trips any reserved bytes, info-hash and peer id",
    [fc.uint8Array({ minLength: 8, maxLength: 8 }), bytes20, bytes20],
    ([reserved, hash, id]) => {
      const bytes = Buffer.concat([Handshake.PROTOCOL_HEADER, reserved, hash, id])
      const decoded = Either.getOrThrow(Handshake.decode(bytes))
      expect(decoded.extensionProtocol).toBe((reserved[5]! & 0x10) !== 0)
      expect(decoded.fast).toBe((reserved[7]! & 0x04) !== 0)
      expect(decoded.dht).toBe((reserved[7]! & 0x01) !== 0)
      expect(decoded.infoHash).toEqual(hash)
      expect(decoded.peerId).toEqual(id)
      expect(Buffer.from(Handshake.encode(decoded)).equals(bytes)).toBe(true)
    }
  )

  it("owns its fields: later changes to the input do not reach the result", () => {
    // Socket chunks are Buffers, whose slice() is a view: the trap this pins.
    const bytes = Buffer.from(Handshake.encode(Handshake.make({ infoHash, peerId })))
    const decoded = Either.getOrThrow(Handshake.decode(bytes))
    bytes.fill(0xaa)
    expect(decoded.infoHash).toEqual(infoHash)
    expect(decoded.reserved).toEqual(new Uint8Array(8))
  })

  it("rejects a wrong pstrlen, a wrong protocol string and a wrong length", () => {
    const good = Handshake.encode(Handshake.make({ infoHash, peerId }))
    const wrongLength = Uint8Array.from(good)
    wrongLength[0] = 18
    const wrongProtocol = Uint8Array.from(good)
    wrongProtocol[1] = "b".charCodeAt(0)
    expect(decodeError(wrongLength).reason).toBe("BadHandshake")
    expect(decodeError(wrongProtocol).reason).toBe("BadHandshake")
    expect(decodeError(good.subarray(0, 67))).toMatchObject({ reason: "BadHandshake", length: 67 })
    expect(decodeError(new Uint8Array([...good, 0]))).toMatchObject({ reason: "BadHandshake", length: 69 })
  })

  const noise = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc.uint8Array({ maxLength: 60 }).map((tail) => new Uint8Array([...Handshake.PROTOCOL_HEADER, ...tail]))
  )

  it.prop("random bytes only ever give a typed error", [noise], ([bytes]) => {
    const result = Handshake.decode(bytes)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("ProtocolError")
    else expect(bytes.length).toBe(68)
  })
})
