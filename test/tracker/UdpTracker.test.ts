import { Announce, InfoHash, PeerId, UdpMessage, UdpTracker } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import { scriptedUdp } from "./fakes.js"

const request: Announce.AnnounceRequest = {
  infoHash: InfoHash.unsafeFromBytes(new Uint8Array(20).fill(7)),
  peerId: PeerId.unsafeFromBytes(new Uint8Array(20).fill(8)),
  port: 6881,
  uploaded: 1,
  downloaded: 2,
  left: 3,
  event: "started",
  numwant: 50,
  key: 0x01020304
}

const url = "udp://127.0.0.1:6969/announce"
const CONNECTION_ID = 0x0102030405060708n

const encode = (response: UdpMessage.Response, ipv6 = false) => Either.getOrThrow(UdpMessage.encodeResponse(response, ipv6))

type Reply = ReadonlyArray<{ readonly bytes: Uint8Array; readonly from?: { host: string; port: number } }>

/** A well-behaved tracker, with hooks to misbehave on announces. */
const tracker =
  (onAnnounce: (request: Extract<UdpMessage.Request, { _tag: "Announce" }>) => Reply, ipv6 = false) =>
  (bytes: Uint8Array): Reply => {
    const decoded = Either.getOrThrow(UdpMessage.decodeRequest(bytes))
    switch (decoded._tag) {
      case "Connect":
        return [{ bytes: encode({ _tag: "Connect", transactionId: decoded.transactionId, connectionId: CONNECTION_ID }) }]
      case "Announce":
        expect(decoded.connectionId).toBe(CONNECTION_ID)
        return onAnnounce(decoded)
      case "Scrape":
        return [
          {
            bytes: encode({
              _tag: "Scrape",
              transactionId: decoded.transactionId,
              entries: decoded.infoHashes.map(() => ({ seeders: 5, completed: 6, leechers: 7 }))
            }, ipv6)
          }
        ]
    }
  }

const peersReply = (transactionId: number, ipv6 = false): Reply => [
  {
    bytes: encode(
      {
        _tag: "Announce",
        transactionId,
        interval: 120,
        leechers: 2,
        seeders: 1,
        peers: ipv6 ? [{ host: "::1", port: 6882 }] : [{ host: "127.0.0.1", port: 6882 }]
      },
      ipv6
    )
  }
]

const actionOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(8)

const run = <A>(
  script: (bytes: Uint8Array, count: number) => Reply,
  use: (client: UdpTracker.UdpTracker) => Effect.Effect<A, Announce.TrackerError, import("@bitfiber/core").Network.Network>,
  options?: UdpTracker.Options
) =>
  Effect.gen(function* () {
    const network = yield* scriptedUdp(script)
    const client = yield* UdpTracker.make(options)
    const result = yield* use(client).pipe(Effect.either, Effect.provide(network.layer))
    return { result, sent: yield* network.sent, binds: yield* network.binds }
  })

const reasonOf = (result: Either.Either<unknown, Announce.TrackerError>) =>
  Either.match(result, { onLeft: (error) => error.reason, onRight: () => "ok" })

describe("UdpTracker", () => {
  it.effect("connects, then announces with the request's fields", () =>
    Effect.gen(function* () {
      let seen: Extract<UdpMessage.Request, { _tag: "Announce" }> | undefined
      const { binds, result, sent } = yield* run(
        tracker((announce) => {
          seen = announce
          return peersReply(announce.transactionId)
        }),
        (client) => client.announce(url, request)
      )
      expect(Either.getOrThrow(result)).toEqual({
        interval: 120,
        complete: 1,
        incomplete: 2,
        peers: [{ host: "127.0.0.1", port: 6882 }]
      })
      expect(sent.map((d) => actionOf(d.bytes))).toEqual([0, 1])
      expect(sent.every((d) => d.to.host === "127.0.0.1" && d.to.port === 6969)).toBe(true)
      expect(binds).toEqual([{ host: "0.0.0.0", port: 0 }])
      expect(seen).toMatchObject({ event: "started", key: 0x01020304, port: 6881, numwant: 50 })
      expect(seen).toMatchObject({ left: 3, downloaded: 2, uploaded: 1 })
    }))

  it.effect("uses an IPv6 socket and 18-byte peers for an IPv6 tracker", () =>
    Effect.gen(function* () {
      const { binds, result } = yield* run(
        tracker((announce) => peersReply(announce.transactionId, true), true),
        (client) => client.announce("udp://[::1]:6969", request)
      )
      expect(Either.getOrThrow(result).peers).toEqual([{ host: "::1", port: 6882 }])
      expect(binds).toEqual([{ host: "::", port: 0 }])
    }))

  it.effect("ignores replies with another transaction id or from another address, and keeps waiting", () =>
    Effect.gen(function* () {
      const { result } = yield* run(
        tracker((announce) => [
          ...peersReply(announce.transactionId + 1),
          { ...peersReply(announce.transactionId)[0]!, from: { host: "127.0.0.2", port: 6969 } },
          ...peersReply(announce.transactionId)
        ]),
        (client) => client.announce(url, request)
      )
      expect(reasonOf(result)).toBe("ok")
    }))

  it.effect("reports TransactionMismatch when only other transactions are answered", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        run(
          tracker((announce) => peersReply(announce.transactionId ^ 1)),
          (client) => client.announce(url, request)
        )
      )
      yield* TestClock.adjust("105 seconds")
      expect(reasonOf((yield* Fiber.join(fiber)).result)).toBe("TransactionMismatch")
    }))

  it.effect("turns an error action into a Failure and a wrong action into Malformed", () =>
    Effect.gen(function* () {
      const failed = yield* run(
        tracker(({ transactionId }) => [{ bytes: encode({ _tag: "Error", transactionId, message: "not registered" }) }]),
        (client) => client.announce(url, request)
      )
      expect(Either.isLeft(failed.result) && [failed.result.left.reason, failed.result.left.message]).toEqual([
        "Failure",
        "not registered"
      ])
      const wrong = yield* run(
        tracker((announce) => [{ bytes: encode({ _tag: "Connect", transactionId: announce.transactionId, connectionId: 1n }) }]),
        (client) => client.announce(url, request)
      )
      expect(reasonOf(wrong.result)).toBe("Malformed")
    }))

  it.effect("retransmits after 15 s and 30 s more, then times out at 105 s", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(run(() => [], (client) => client.announce(url, request)))
      yield* TestClock.adjust("104 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const { result, sent } = yield* Fiber.join(fiber)
      expect(reasonOf(result)).toBe("Timeout")
      expect(sent.map((d) => d.at)).toEqual([0, 15_000, 45_000])
      expect(sent.every((d) => actionOf(d.bytes) === 0)).toBe(true)
    }))

  it.effect("honours a configured retransmission bound", () =>
    Effect.gen(function* () {
      const options = { timeout: "1 second", retransmissions: 0 } as const
      const fiber = yield* Effect.fork(run(() => [], (client) => client.announce(url, request), options))
      yield* TestClock.adjust("1 second")
      const { result, sent } = yield* Fiber.join(fiber)
      expect(reasonOf(result)).toBe("Timeout")
      expect(sent.length).toBe(1)
    }))

  it.effect("reuses a connection id for a minute", () =>
    Effect.gen(function* () {
      const { sent } = yield* run(
        tracker((announce) => peersReply(announce.transactionId)),
        (client) =>
          Effect.gen(function* () {
            yield* client.announce(url, request)
            yield* TestClock.adjust("59 seconds")
            yield* client.announce(url, request)
            yield* TestClock.adjust("2 seconds")
            yield* client.announce(url, request)
          })
      )
      expect(sent.map((d) => actionOf(d.bytes))).toEqual([0, 1, 1, 0, 1])
    }))

  it.effect("replaces a cached connection id the tracker refuses, once", () =>
    Effect.gen(function* () {
      let connects = 0
      let announces = 0
      const restartingTracker = (bytes: Uint8Array): Reply => {
        const decoded = Either.getOrThrow(UdpMessage.decodeRequest(bytes))
        if (decoded._tag === "Connect") {
          connects++
          return [{ bytes: encode({ _tag: "Connect", transactionId: decoded.transactionId, connectionId: BigInt(connects) }) }]
        }
        announces++
        // After its first announce the tracker "restarts" and knows only ids issued later.
        const valid = announces === 1 ? decoded.connectionId === 1n : decoded.connectionId === BigInt(connects) && connects > 1
        return valid
          ? peersReply(decoded.transactionId)
          : [{ bytes: encode({ _tag: "Error", transactionId: decoded.transactionId, message: "bad connection id" }) }]
      }
      const { result, sent } = yield* run(restartingTracker, (client) =>
        Effect.zipRight(client.announce(url, request), client.announce(url, request))
      )
      expect(reasonOf(result)).toBe("ok")
      expect(sent.map((d) => actionOf(d.bytes))).toEqual([0, 1, 1, 0, 1])
    }))

  it.effect("scrapes", () =>
    Effect.gen(function* () {
      const { result } = yield* run(
        tracker(() => []),
        (client) => client.scrape(url, [request.infoHash])
      )
      expect(Either.getOrThrow(result)).toEqual(
        new Map([[InfoHash.toHex(request.infoHash), { complete: 5, incomplete: 7, downloaded: 6 }]])
      )
    }))

  it.effect("rejects non-udp URLs and URLs without a port", () =>
    Effect.gen(function* () {
      expect(reasonOf((yield* run(() => [], (client) => client.announce("http://x/announce", request))).result)).toBe(
        "UnsupportedScheme"
      )
      expect(reasonOf((yield* run(() => [], (client) => client.announce("udp://tracker.test/announce", request))).result)).toBe(
        "InvalidUrl"
      )
    }))
})
