import { Bencode, InfoHash, Krpc, NodeId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const ascii = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))
const id = (text: string) => NodeId.unsafeFromBytes(ascii(text))
const AA = ascii("aa")

const decoded = (text: string | Uint8Array): Krpc.Message => {
  const result = Krpc.decode(typeof text === "string" ? ascii(text) : text)
  if (Either.isLeft(result)) throw new Error(`expected a message: ${result.left.message}`)
  return result.right
}
const rejected = (text: string | Uint8Array): Krpc.KrpcError => {
  const result = Krpc.decode(typeof text === "string" ? ascii(text) : text)
  if (Either.isRight(result)) throw new Error("expected a KrpcError")
  return result.left
}
const encoded = (message: Krpc.Message): string => Buffer.from(Either.getOrThrow(Krpc.encode(message))).toString("latin1")

// The examples of BEP 5, byte for byte: our encoder must produce exactly these and our decoder accept them.
describe("Krpc: the examples of BEP 5", () => {
  const examples: ReadonlyArray<readonly [string, string, Krpc.Message]> = [
    [
      "ping query",
      "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
      { _tag: "Query", transactionId: AA, query: { _tag: "Ping", id: id("abcdefghij0123456789") } }
    ],
    [
      "ping response",
      "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
      { _tag: "Response", transactionId: AA, response: { id: id("mnopqrstuvwxyz123456") } }
    ],
    [
      "generic error",
      "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
      { _tag: "Error", transactionId: AA, code: 201, message: "A Generic Error Ocurred" }
    ],
    [
      "find_node query",
      "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
      {
        _tag: "Query",
        transactionId: AA,
        query: { _tag: "FindNode", id: id("abcdefghij0123456789"), target: id("mnopqrstuvwxyz123456") }
      }
    ],
    [
      "get_peers query",
      "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
      {
        _tag: "Query",
        transactionId: AA,
        query: {
          _tag: "GetPeers",
          id: id("abcdefghij0123456789"),
          infoHash: InfoHash.unsafeFromBytes(ascii("mnopqrstuvwxyz123456"))
        }
      }
    ],
    [
      "get_peers response with peers",
      "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
      {
        _tag: "Response",
        transactionId: AA,
        response: {
          id: id("abcdefghij0123456789"),
          token: ascii("aoeusnth"),
          // "axje.u" and "idhtnm" read as compact peers: 4 address bytes, 2 port bytes.
          values: [{ host: "97.120.106.101", port: 0x2e75 }, { host: "105.100.104.116", port: 0x6e6d }]
        }
      }
    ],
    [
      "announce_peer query",
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
      {
        _tag: "Query",
        transactionId: AA,
        query: {
          _tag: "AnnouncePeer",
          id: id("abcdefghij0123456789"),
          infoHash: InfoHash.unsafeFromBytes(ascii("mnopqrstuvwxyz123456")),
          port: 6881,
          token: ascii("aoeusnth"),
          impliedPort: true
        }
      }
    ]
  ]

  for (const [name, wire, message] of examples) {
    it(`decodes and re-encodes the ${name} byte for byte`, () => {
      expect(decoded(wire)).toEqual(message)
      expect(encoded(message)).toBe(wire)
    })
  }

  it("encodes an announce_peer without implied_port and with it 0 on the wire read as false", () => {
    const message = decoded(
      "d1:ad2:id20:abcdefghij012345678912:implied_porti0e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
    )
    expect(message._tag === "Query" && message.query._tag === "AnnouncePeer" && message.query.impliedPort).toBe(false)
    expect(encoded(message)).toBe(
      "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
    )
  })

  it("rejects the BEP's placeholder nodes \"def456...\" (9 bytes is no whole compact node info)", () => {
    const error = rejected("d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re")
    expect(error.reason).toBe("InvalidLength")
    expect(error.kind).toBe("r")
    expect(error.transactionId).toEqual(AA)
  })

  it("reads 26-byte compact node info: id, IPv4 address, big-endian port", () => {
    const node = Buffer.concat([Buffer.from("mnopqrstuvwxyz123456"), Buffer.from([10, 0, 0, 7, 0x1a, 0xe1])])
    const wire = Buffer.concat([
      Buffer.from("d1:rd2:id20:0123456789abcdefghij5:nodes26:"),
      node,
      Buffer.from("e1:t2:aa1:y1:re")
    ])
    expect(decoded(wire)).toEqual({
      _tag: "Response",
      transactionId: AA,
      response: { id: id("0123456789abcdefghij"), nodes: [{ id: id("mnopqrstuvwxyz123456"), address: { host: "10.0.0.7", port: 6881 } }] }
    })
    expect(encoded(decoded(wire))).toBe(wire.toString("latin1"))
  })

  it("reads 38-byte IPv6 compact node info from nodes6 (BEP 32)", () => {
    const address = Buffer.alloc(16)
    address[0] = 0x20
    address[1] = 0x01
    address[15] = 1
    const node = Buffer.concat([Buffer.from("mnopqrstuvwxyz123456"), address, Buffer.from([0x1a, 0xe1])])
    const wire = Buffer.concat([Buffer.from("d1:rd2:id20:0123456789abcdefghij6:nodes638:"), node, Buffer.from("e1:t2:aa1:y1:re")])
    const message = decoded(wire)
    expect(message._tag === "Response" && message.response.nodes6).toEqual([
      { id: id("mnopqrstuvwxyz123456"), address: { host: "2001::1", port: 6881 } }
    ])
    expect(encoded(message)).toBe(wire.toString("latin1"))
  })
})

describe("Krpc: hostile and unusual input", () => {
  it("ignores keys it does not know (v, ip, extra arguments) as BEP 5 asks", () => {
    const message = decoded("d1:ad2:id20:abcdefghij01234567895:extrai7e6:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:v4:LT011:y1:qe")
    expect(message).toEqual({
      _tag: "Query",
      transactionId: AA,
      query: { _tag: "FindNode", id: id("abcdefghij0123456789"), target: id("mnopqrstuvwxyz123456") }
    })
  })

  it("reads BEP 43's read-only flag", () => {
    const message = decoded("d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe")
    expect(message._tag === "Query" && message.readOnly).toBe(true)
  })

  it("names an unknown method with the transaction id, so a server can answer 204", () => {
    const error = rejected("d1:ad2:id20:abcdefghij0123456789e1:q8:put_data1:t2:xy1:y1:qe")
    expect(error.reason).toBe("UnknownMethod")
    expect(error.kind).toBe("q")
    expect(error.transactionId).toEqual(ascii("xy"))
  })

  it.each([
    ["an id of 19 bytes", "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", "InvalidLength"],
    ["a missing id", "d1:ade1:q4:ping1:t2:aa1:y1:qe", "MissingField"],
    ["an id that is an integer", "d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", "WrongType"],
    ["no arguments", "d1:q4:ping1:t2:aa1:y1:qe", "MissingField"],
    ["no transaction id", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe", "MissingField"],
    ["a 33-byte transaction id", `d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t33:${"x".repeat(33)}1:y1:qe`, "InvalidLength"],
    ["an unknown y", "d1:t2:aa1:y1:xe", "UnknownType"],
    ["no y", "d1:t2:aa1:rd2:id20:mnopqrstuvwxyz123456ee", "MissingField"],
    ["a list", "l1:ae", "NotDictionary"],
    ["not bencode", "hello", "Bencode"],
    ["a port of 0 without implied_port", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", "InvalidPort"],
    ["a port over 65535", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", "InvalidPort"],
    ["a value of 5 bytes", "d1:rd2:id20:abcdefghij01234567896:valuesl5:abcdeee1:t2:aa1:y1:re", "InvalidLength"],
    ["a value that is a list", "d1:rd2:id20:abcdefghij01234567896:valueslleee1:t2:aa1:y1:re", "WrongType"],
    ["a 65-byte token", `d1:rd2:id20:abcdefghij01234567895:token65:${"k".repeat(65)}e1:t2:aa1:y1:re`, "InvalidLength"],
    ["an error that is not [code, text]", "d1:eli201ee1:t2:aa1:y1:ee", "WrongType"],
    ["nesting deeper than KRPC has", "d1:t2:aa1:y1:r1:rd2:xxllllleeeeeee", "Bencode"]
  ])("rejects %s", (_, wire, reason) => {
    expect(rejected(wire).reason).toBe(reason)
  })

  it("says why deep nesting was rejected", () => {
    expect(rejected("d1:t2:aa1:y1:r1:rd2:xxllllleeeeeee").message).toMatch(/nesting deeper than 4/)
  })

  it("accepts announce_peer with implied_port and no port (the port is ignored then)", () => {
    const message = decoded("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
    expect(message._tag === "Query" && message.query._tag === "AnnouncePeer" && message.query.port).toBe(0)
  })

  it("rejects a datagram over MAX_DATAGRAM before decoding it", () => {
    const big = new Uint8Array(Krpc.MAX_DATAGRAM + 1).fill(0x65)
    expect(rejected(big).reason).toBe("TooLarge")
  })

  it("cuts a long error text", () => {
    const text = "e".repeat(1000)
    const message = decoded(`d1:eli202e1000:${text}e1:t2:aa1:y1:ee`)
    expect(message._tag === "Error" && message.message.length).toBe(Krpc.MAX_ERROR_MESSAGE)
  })

  it("refuses to encode a node whose host is not an IPv4 literal in nodes", () => {
    const result = Krpc.encode({
      _tag: "Response",
      transactionId: AA,
      response: { id: id("abcdefghij0123456789"), nodes: [{ id: id("mnopqrstuvwxyz123456"), address: { host: "localhost", port: 1 } }] }
    })
    expect(Either.isLeft(result) && result.left.reason).toBe("Address")
  })
})

// ---------------------------------------------------------------------------------------------
// Properties

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length })
const nodeId = bytes(20).map(NodeId.unsafeFromBytes)
const infoHash = bytes(20).map(InfoHash.unsafeFromBytes)
const port = fc.integer({ min: 1, max: 65535 })
const ipv4 = fc.ipV4().map((host) => host.split(".").map(Number).join("."))
const ipv6 = bytes(16).map((raw) => {
  const peer = Buffer.concat([Buffer.from(raw), Buffer.from([0, 1])])
  return Either.getOrThrow(Krpc.decode(Bencode.encode({ t: "a", y: "r", r: { id: new Uint8Array(20), values: [peer] } })))
})
  .map((message) => (message._tag === "Response" ? message.response.values![0]!.host : ""))
const address4 = fc.record({ host: ipv4, port })
const address6 = fc.record({ host: ipv6, port })
const transactionId = fc.uint8Array({ minLength: 0, maxLength: Krpc.MAX_TRANSACTION_ID })
const token = fc.uint8Array({ minLength: 0, maxLength: Krpc.MAX_TOKEN })

const query: fc.Arbitrary<Krpc.Query> = fc.oneof(
  fc.record({ _tag: fc.constant("Ping" as const), id: nodeId }),
  fc.record({ _tag: fc.constant("FindNode" as const), id: nodeId, target: nodeId }),
  fc.record({ _tag: fc.constant("GetPeers" as const), id: nodeId, infoHash }),
  fc.record({
    _tag: fc.constant("AnnouncePeer" as const),
    id: nodeId,
    infoHash,
    port,
    token,
    impliedPort: fc.boolean()
  })
)

const response: fc.Arbitrary<Krpc.Response> = fc.record(
  {
    id: nodeId,
    nodes: fc.array(fc.record({ id: nodeId, address: address4 }), { maxLength: 8 }),
    nodes6: fc.array(fc.record({ id: nodeId, address: address6 }), { maxLength: 8 }),
    values: fc.array(fc.oneof(address4, address6), { maxLength: 50 }),
    token
  },
  { requiredKeys: ["id"] }
)

const message: fc.Arbitrary<Krpc.Message> = fc.oneof(
  fc.record({ _tag: fc.constant("Query" as const), transactionId, query }),
  fc.record({ _tag: fc.constant("Query" as const), transactionId, query, readOnly: fc.constant(true) }),
  fc.record({ _tag: fc.constant("Response" as const), transactionId, response }),
  fc.record({
    _tag: fc.constant("Error" as const),
    transactionId,
    code: fc.integer({ min: 0, max: 999 }),
    message: fc.string({ maxLength: 100 })
  })
)

describe("Krpc: properties", () => {
  it.prop("decode(encode(m)) is m", [message], ([m]) => {
    const wire = Either.getOrThrow(Krpc.encode(m))
    expect(wire.length).toBeLessThanOrEqual(Krpc.MAX_DATAGRAM)
    expect(Either.getOrThrow(Krpc.decode(wire))).toEqual(m)
  })

  it.prop("random bytes give a message or a KrpcError, never a throw", [fc.uint8Array({ maxLength: 600 })], ([raw]) => {
    const result = Krpc.decode(raw)
    expect(Either.isLeft(result) ? result.left._tag : "ok").toMatch(/^(KrpcError|ok)$/)
  })

  it.prop(
    "valid messages with bytes flipped, cut or appended give a message or a KrpcError",
    [message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 8 })],
    ([m, flips, cut, tail]) => {
      const wire = Uint8Array.from(Either.getOrThrow(Krpc.encode(m)))
      for (const [at, value] of flips) wire[at % wire.length] = value
      const mangled = Buffer.concat([wire.subarray(0, cut % (wire.length + 1)), tail])
      const result = Krpc.decode(mangled)
      expect(Either.isLeft(result) ? result.left._tag : "ok").toMatch(/^(KrpcError|ok)$/)
    }
  )
})
