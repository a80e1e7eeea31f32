import { Bencode, Extension } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const latin1 = (text: string) => Buffer.from(text, "latin1")
const error = <A>(result: Either.Either<A, { readonly reason: string }>) => Either.getOrThrow(Either.flip(result))

const port = fc.integer({ min: 0, max: 0xffff })
const ipv4 = fc.tuple(fc.ipV4(), port).map(([host, p]) => ({ host, port: p }))
const ipv6 = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), port).map(([bytes, p]) => ({
  // The codec writes canonical text, so generate hosts by decoding bytes.
  host: new URL(`http://[${Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(":")}]/`).hostname.slice(1, -1),
  port: p
}))

describe("Extension handshake", () => {
  it("decodes a libtorrent-style handshake and ignores keys it does not know", () => {
    const payload = latin1(
      "d12:complete_agoi1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee" +
        "13:metadata_sizei31235e1:pi6881e4:reqqi500e11:upload_onlyi0e1:v16:libtorrent 2.0.86:yourip4:\x7f\x00\x00\x01e"
    )
    const handshake = Either.getOrThrow(Extension.decodeHandshake(payload))
    expect(handshake.extensions.get(Extension.UT_METADATA)).toBe(2)
    expect(handshake.extensions.get(Extension.UT_PEX)).toBe(1)
    expect(handshake.extensions.size).toBe(6)
    expect(handshake).toMatchObject({ client: "libtorrent 2.0.8", port: 6881, requestQueue: 500, metadataSize: 31235 })
    expect(Array.from(handshake.yourIp ?? [])).toEqual([127, 0, 0, 1])
    expect(Object.keys(handshake).sort()).toEqual(["client", "extensions", "metadataSize", "port", "requestQueue", "yourIp"])
  })

  it.prop(
    "round-trips",
    [
      fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => /^[\x20-\x7e]+$/.test(s)), fc.integer({ min: 0, max: 255 }), { maxKeys: 8 }),
      fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
      fc.option(fc.integer({ min: 1, max: 0xffff }), { nil: undefined }),
      fc.option(fc.integer({ min: 1, max: 100000 }), { nil: undefined }),
      fc.option(fc.integer({ min: 1, max: 0x7fffffff }), { nil: undefined }),
      fc.option(fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), { nil: undefined })
    ],
    ([m, client, p, reqq, metadataSize, yourIp]) => {
      const handshake: Extension.ExtendedHandshake = {
        extensions: new Map(Object.entries(m)),
        ...(client !== undefined ? { client } : {}),
        ...(p !== undefined ? { port: p } : {}),
        ...(reqq !== undefined ? { requestQueue: reqq } : {}),
        ...(metadataSize !== undefined ? { metadataSize } : {}),
        ...(yourIp !== undefined ? { yourIp } : {})
      }
      expect(Either.getOrThrow(Extension.decodeHandshake(Extension.encodeHandshake(handshake)))).toEqual(handshake)
    }
  )

  it("drops fields that are mistyped or out of range instead of failing", () => {
    const payload = Bencode.encode({
      m: { ut_pex: 300, ut_metadata: -1, lt_donthave: latin1("x"), ok: 3 },
      v: 5,
      p: 70000,
      reqq: 0,
      metadata_size: -5,
      yourip: latin1("abc")
    })
    expect(Either.getOrThrow(Extension.decodeHandshake(payload))).toEqual({ extensions: new Map([["ok", 3]]) })
    expect(Either.getOrThrow(Extension.decodeHandshake(latin1("de")))).toEqual({ extensions: new Map() })
  })

  it("fails on a payload that is not a bounded bencoded dictionary", () => {
    expect(error(Extension.decodeHandshake(latin1("li1ee"))).reason).toBe("BadExtension")
    expect(error(Extension.decodeHandshake(latin1("d1:md"))).reason).toBe("BadExtension")
    expect(error(Extension.decodeHandshake(latin1("de trailing"))).reason).toBe("BadExtension")
    const deep = latin1("d1:a" + "l".repeat(100) + "e".repeat(100) + "e")
    expect(error(Extension.decodeHandshake(deep)).reason).toBe("BadExtension")
    const huge = latin1(`d1:v${Extension.MAX_HANDSHAKE_LENGTH}:${"x".repeat(Extension.MAX_HANDSHAKE_LENGTH)}e`)
    expect(error(Extension.decodeHandshake(huge)).reason).toBe("BadExtension")
  })

  it.prop("random bytes only ever give a typed error", [fc.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const result = Extension.decodeHandshake(bytes)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("BadExtension")
  })
})

describe("Extension ut_metadata", () => {
  it("writes the BEP 9 layouts", () => {
    expect(Buffer.from(Extension.encodeMetadata({ _tag: "MetadataRequest", piece: 0 })).toString("latin1")).toBe(
      "d8:msg_typei0e5:piecei0ee"
    )
    expect(Buffer.from(Extension.encodeMetadata({ _tag: "MetadataReject", piece: 3 })).toString("latin1")).toBe(
      "d8:msg_typei2e5:piecei3ee"
    )
    const data = Extension.encodeMetadata({ _tag: "MetadataData", piece: 1, totalSize: 16390, data: latin1("abcdef") })
    expect(Buffer.from(data).toString("latin1")).toBe("d8:msg_typei1e5:piecei1e10:total_sizei16390eeabcdef")
  })

  it.prop(
    "data messages round-trip with the exact piece length",
    [fc.integer({ min: 1, max: 5 * Extension.METADATA_PIECE_LENGTH }), fc.nat()],
    ([totalSize, pick]) => {
      const pieces = Math.ceil(totalSize / Extension.METADATA_PIECE_LENGTH)
      const piece = pick % pieces
      const length = Math.min(Extension.METADATA_PIECE_LENGTH, totalSize - piece * Extension.METADATA_PIECE_LENGTH)
      const message: Extension.MetadataMessage = { _tag: "MetadataData", piece, totalSize, data: new Uint8Array(length).fill(7) }
      const decoded = Either.getOrThrow(Extension.decodeMetadata(Extension.encodeMetadata(message)))
      // Compared field by field: deep equality of 16 KiB arrays is slow.
      expect(decoded._tag === "MetadataData" && { ...decoded, data: undefined }).toEqual({ ...message, data: undefined })
      expect(decoded._tag === "MetadataData" && Buffer.from(decoded.data).equals(message.data)).toBe(true)
    }
  )

  it("round-trips requests and rejects", () => {
    for (const message of [{ _tag: "MetadataRequest", piece: 4 }, { _tag: "MetadataReject", piece: 0 }] as const) {
      expect(Either.getOrThrow(Extension.decodeMetadata(Extension.encodeMetadata(message)))).toEqual(message)
    }
  })

  it("rejects data of the wrong length, out-of-range pieces and trailing bytes", () => {
    const data = (piece: number, totalSize: number, length: number) =>
      Extension.decodeMetadata(
        Extension.encodeMetadata({ _tag: "MetadataData", piece, totalSize, data: new Uint8Array(length) })
      )
    expect(error(data(0, 100, 99)).reason).toBe("BadExtension")
    expect(error(data(0, 100, 101)).reason).toBe("BadExtension")
    expect(error(data(1, 16384, 0)).reason).toBe("BadExtension")
    expect(error(data(0, 20000, 16385)).reason).toBe("BadExtension")
    expect(error(Extension.decodeMetadata(latin1("d8:msg_typei0e5:piecei0eex"))).reason).toBe("BadExtension")
    expect(error(Extension.decodeMetadata(latin1("d8:msg_typei0e5:piecei-1ee"))).reason).toBe("BadExtension")
    expect(error(Extension.decodeMetadata(latin1("d8:msg_typei1e5:piecei0eeabc"))).reason).toBe("BadExtension")
    expect(error(Extension.decodeMetadata(latin1("d5:piecei0ee"))).reason).toBe("BadExtension")
  })

  it("reports an unknown msg_type as UnknownMessage, which BEP 9 says to ignore", () => {
    expect(error(Extension.decodeMetadata(latin1("d8:msg_typei7e5:piecei0ee")))).toMatchObject({ reason: "UnknownMessage", messageId: 7 })
  })

  it.prop("random bytes only ever give a typed error", [fc.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const result = Extension.decodeMetadata(bytes)
    if (Either.isLeft(result)) expect(result.left._tag).toBe("ProtocolError")
  })
})

describe("Extension ut_pex", () => {
  it.prop(
    "round-trips IPv4 and IPv6 peers with their flags",
    [
      fc.array(fc.tuple(ipv4, fc.integer({ min: 0, max: 0x1f })), { maxLength: 50 }),
      fc.array(fc.tuple(ipv6, fc.integer({ min: 0, max: 0x1f })), { maxLength: 50 }),
      fc.array(ipv4, { maxLength: 50 }),
      fc.array(ipv6, { maxLength: 50 })
    ],
    ([added4, added6, dropped4, dropped6]) => {
      const message: Extension.PexMessage = {
        added: [...added4, ...added6].map(([address, flags]) => ({ address, flags })),
        dropped: [...dropped4, ...dropped6]
      }
      expect(Either.getOrThrow(Extension.decodePex(Either.getOrThrow(Extension.encodePex(message))))).toEqual(message)
    }
  )

  it("decodes the BEP 11 keys and gives flags 0 where added.f is short", () => {
    const payload = Bencode.encode({
      added: Uint8Array.of(10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80),
      "added.f": Uint8Array.of(Extension.PexFlags.Seed | Extension.PexFlags.Reachable),
      dropped: Uint8Array.of(10, 0, 0, 3, 0, 81),
      unknown: 1
    })
    expect(Either.getOrThrow(Extension.decodePex(payload))).toEqual({
      added: [
        { address: { host: "10.0.0.1", port: 6881 }, flags: 0x12 },
        { address: { host: "10.0.0.2", port: 80 }, flags: 0 }
      ],
      dropped: [{ host: "10.0.0.3", port: 81 }]
    })
  })

  it("rejects odd-length lists, mistyped lists and too many peers", () => {
    expect(error(Extension.decodePex(Bencode.encode({ added: new Uint8Array(7) }))).reason).toBe("BadExtension")
    expect(error(Extension.decodePex(Bencode.encode({ dropped6: new Uint8Array(17) }))).reason).toBe("BadExtension")
    expect(error(Extension.decodePex(Bencode.encode({ added: 5 }))).reason).toBe("BadExtension")
    const many = Bencode.encode({ added: new Uint8Array((Extension.MAX_PEX_PEERS + 1) * 6) })
    expect(error(Extension.decodePex(many)).reason).toBe("BadExtension")
    expect(Either.isRight(Extension.decodePex(Bencode.encode({ added: new Uint8Array(Extension.MAX_PEX_PEERS * 6) })))).toBe(true)
  })

  it("refuses to encode a host name", () => {
    const result = Extension.encodePex({ added: [{ address: { host: "example.org", port: 1 }, flags: 0 }], dropped: [] })
    expect(Either.isLeft(result)).toBe(true)
  })

  it.prop("random bytes only ever give a typed error", [fc.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const result = Extension.decodePex(bytes)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("BadExtension")
  })
})
