/**
 * Our tracker clients against a real tracker: Debian's opentracker (whitelist mode) on
 * 127.0.0.1, announced to over HTTP and UDP by two bitfiber peers that must see each other.
 */
import { Announce, Announcer, HttpTracker, InfoHash, NodeNetwork, PeerId, TrackerClient, UdpTracker } from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Layer } from "effect"
import * as Interop from "./support/index.js"

const infoHash = InfoHash.unsafeFromBytes(Uint8Array.from({ length: 20 }, (_, i) => (i * 37 + 0x20) & 0xff))
const unlisted = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(0xee))

const peer = (port: number, overrides: Partial<Announce.AnnounceRequest> = {}): Announce.AnnounceRequest => ({
  infoHash,
  peerId: PeerId.generate(),
  port,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  event: "started",
  numwant: 50,
  key: port,
  ...overrides
})

const ports = (response: Announce.AnnounceResponse) => response.peers.map((p) => p.port)

/** The announce steps both protocols must pass, with `announce` bound to one protocol and URL. */
const twoPeers = <R>(
  announce: (request: Announce.AnnounceRequest) => Effect.Effect<Announce.AnnounceResponse, Announce.TrackerError, R>
) =>
  Effect.gen(function* () {
    const first = yield* announce(peer(21001))
    expect(first.interval).toBeGreaterThan(0)
    const second = yield* announce(peer(21002, { left: 0 }))
    expect(ports(second)).toContain(21001)
    expect(second).toMatchObject({ complete: 1, incomplete: 1 })
    const again = yield* announce(peer(21001, { event: "none" }))
    expect(ports(again)).toContain(21002)
    yield* announce(peer(21002, { event: "stopped" }))
    expect(ports(yield* announce(peer(21001, { event: "none" })))).not.toContain(21002)
  })

Interop.describeInterop("tracker clients against opentracker", ["opentracker"], () => {
  it.scopedLive("two peers find each other over HTTP", () =>
    Effect.gen(function* () {
      const tracker = yield* Interop.opentracker({ infoHashes: [InfoHash.toHex(infoHash)] })
      yield* twoPeers((request) => HttpTracker.announce(tracker.httpUrl, request))
      const refused = yield* Effect.either(HttpTracker.announce(tracker.httpUrl, peer(21003, { infoHash: unlisted })))
      expect(Either.isLeft(refused) && refused.left.reason).toBe("Failure")
      const scrape = yield* HttpTracker.scrape(tracker.httpUrl, [infoHash])
      expect(scrape.get(InfoHash.toHex(infoHash))).toMatchObject({ complete: 0, incomplete: 1 })
    }).pipe(Effect.provide(NodeNetwork.layer)), 30_000)

  it.scopedLive("two peers find each other over UDP", () =>
    Effect.gen(function* () {
      const tracker = yield* Interop.opentracker({ infoHashes: [InfoHash.toHex(infoHash)] })
      const client = yield* UdpTracker.make({ timeout: "2 seconds", retransmissions: 1 })
      yield* twoPeers((request) => client.announce(tracker.udpUrl, request))
      const scrape = yield* client.scrape(tracker.udpUrl, [infoHash])
      expect(scrape.get(InfoHash.toHex(infoHash))).toMatchObject({ complete: 0, incomplete: 1 })
    }).pipe(Effect.provide(NodeNetwork.layer)), 30_000)

  it.scopedLive("the Announcer hands over peers from both protocols", () =>
    Effect.gen(function* () {
      const tracker = yield* Interop.opentracker({ infoHashes: [InfoHash.toHex(infoHash)] })
      yield* HttpTracker.announce(tracker.httpUrl, peer(21010))
      const found = yield* Deferred.make<ReadonlyArray<number>>()
      const announcer = yield* Announcer.make({
        tiers: [[tracker.udpUrl], [tracker.httpUrl]],
        infoHash,
        peerId: PeerId.generate(),
        port: 21011,
        stats: Effect.succeed({ uploaded: 0, downloaded: 0, left: 1000 }),
        onPeers: (peers) => Deferred.succeed(found, peers.map((p) => p.port)).pipe(Effect.asVoid)
      })
      expect(yield* Deferred.await(found).pipe(Effect.timeout("10 seconds"))).toContain(21010)
      const statuses = yield* announcer.status
      expect(statuses.map((s) => s.url).sort()).toEqual([tracker.httpUrl, tracker.udpUrl].sort())
    }).pipe(Effect.provide(TrackerClient.layer().pipe(Layer.provideMerge(NodeNetwork.layer)))), 30_000)
})
