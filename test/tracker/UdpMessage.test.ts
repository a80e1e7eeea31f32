import { UdpMessage } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const hash = (seed: number) => Uint8Array.from({ length: 20 }, (_, i) => (seed + i) & 0xff)

const reason = (result: Either.Either<unknown, UdpMessage.UdpMessageError>) =>
  Either.match(result, { onLeft: (e) => e.reason, onRight: () => "ok" })

const announceRequest = fc.record({
  _tag: fc.constant("Announce" as const),
  connectionId: fc.bigUint({ max: 2n ** 64n - 1n }),
  transactionId: fc.nat({ max: 0xffffffff }),
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  peerId: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  downloaded: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  left: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  uploaded: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  event: fc.constantFrom("none" as const, "completed" as const, "started" as const, "stopped" as const),
  ip: fc.nat({ max: 0xffffffff }),
  key: fc.nat({ max: 0xffffffff }),
  numwant: fc.integer({ min: -1, max: 0x7fffffff }),
  port: fc.nat({ max: 0xffff })
})

describe("UdpMessage", () => {
  it("encodes a connect request with the protocol magic", () => {
    expect(Buffer.from(UdpMessage.encodeRequest({ _tag: "Connect", transactionId: 0x01020304 })).toString("hex")).toBe(
      "0000041727101980" + "00000000" + "01020304"
    )
  })

  it("lays out an announce request as BEP 15 says", () => {
    const bytes = UdpMessage.encodeRequest({
      _tag: "Announce",
      connectionId: 0x1122334455667788n,
      transactionId: 7,
      infoHash: hash(1),
      peerId: hash(100),
      downloaded: 1,
      left: 2,
      uploaded: 3,
      event: "started",
      ip: 0,
      key: 0xcafebabe,
      numwant: -1,
      port: 6881
    })
    expect(bytes.length).toBe(98)
    const view = new DataView(bytes.buffer)
    expect(view.getUint32(8)).toBe(1)
    expect(view.getBigUint64(56)).toBe(1n)
    expect(view.getBigUint64(64)).toBe(2n)
    expect(view.getBigUint64(72)).toBe(3n)
    expect(view.getUint32(80)).toBe(2) // started
    expect(view.getUint32(88)).toBe(0xcafebabe)
    expect(view.getInt32(92)).toBe(-1)
    expect(view.getUint16(96)).toBe(6881)
  })

  it.prop("announce requests round-trip", [announceRequest], ([request]) => {
    const decoded = Either.getOrThrow(UdpMessage.decodeRequest(UdpMessage.encodeRequest(request)))
    expect(decoded).toEqual({ ...request, infoHash: Uint8Array.from(request.infoHash), peerId: Uint8Array.from(request.peerId) })
  })

  it("round-trips responses of both families", () => {
    const roundTrip = (response: UdpMessage.Response) =>
      UdpMessage.decodeResponse(Either.getOrThrow(UdpMessage.encodeResponse(response, false)), false)
    const v4 = {
      _tag: "Announce" as const,
      transactionId: 9,
      interval: 60,
      leechers: 1,
      seeders: 2,
      peers: [{ host: "10.0.0.1", port: 6881 }]
    }
    expect(roundTrip(v4)).toEqual(Either.right(v4))
    const v6 = { ...v4, peers: [{ host: "2001:db8::1", port: 51413 }] }
    const encoded6 = Either.getOrThrow(UdpMessage.encodeResponse(v6, true))
    expect(encoded6.length).toBe(20 + 18)
    expect(UdpMessage.decodeResponse(encoded6, true)).toEqual(Either.right(v6))
    const scrape = { _tag: "Scrape" as const, transactionId: 3, entries: [{ seeders: 1, completed: 2, leechers: 3 }] }
    expect(roundTrip(scrape)).toEqual(Either.right(scrape))
    const error = { _tag: "Error" as const, transactionId: 4, message: "torrent not registered" }
    expect(roundTrip(error)).toEqual(Either.right(error))
    const connect = { _tag: "Connect" as const, transactionId: 5, connectionId: 2n ** 63n + 5n }
    expect(roundTrip(connect)).toEqual(Either.right(connect))
  })

  it("refuses to encode a peer of the other family", () => {
    const peers = [{ host: "::1", port: 1 }]
    const response = { _tag: "Announce" as const, transactionId: 1, interval: 1, leechers: 0, seeders: 0, peers }
    expect(reason(UdpMessage.encodeResponse(response, false))).toBe("Peers")
  })

  it("rejects malformed datagrams with a reason", () => {
    expect(reason(UdpMessage.decodeResponse(new Uint8Array(7), false))).toBe("Length")
    expect(reason(UdpMessage.decodeResponse(Uint8Array.of(0, 0, 0, 9, 0, 0, 0, 1), false))).toBe("Action")
    expect(reason(UdpMessage.decodeResponse(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 1), false))).toBe("Length")
    const badPeers = new Uint8Array(20 + 5)
    badPeers[3] = 1
    expect(reason(UdpMessage.decodeResponse(badPeers, false))).toBe("Peers")
    expect(reason(UdpMessage.decodeRequest(new Uint8Array(16)))).toBe("Magic")
    const shortAnnounce = new Uint8Array(97)
    shortAnnounce[11] = 1
    expect(reason(UdpMessage.decodeRequest(shortAnnounce))).toBe("Length")
    const scrapeTooMany = new Uint8Array(16 + 20 * 75)
    scrapeTooMany[11] = 2
    expect(reason(UdpMessage.decodeRequest(scrapeTooMany))).toBe("Length")
  })

  it("reads transaction ids before decoding", () => {
    const request = UdpMessage.encodeRequest({ _tag: "Connect", transactionId: 77 })
    expect(UdpMessage.requestTransactionId(request)).toBe(77)
    expect(UdpMessage.responseTransactionId(Uint8Array.of(0, 0, 0, 3, 0, 0, 0, 78))).toBe(78)
    expect(UdpMessage.responseTransactionId(new Uint8Array(4))).toBeUndefined()
  })
})
