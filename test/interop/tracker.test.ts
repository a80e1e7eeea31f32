/**
 * Our tracker clients against a real tracker (Debian's opentracker, whitelist mode) and our
 * tracker server against real clients (libtorrent), all on 127.0.0.1, over HTTP and UDP.
 */
import {
  Announce,
  Announcer,
  HttpTracker,
  InfoHash,
  NodeNetwork,
  PeerId,
  TrackerClient,
  TrackerServer,
  UdpTracker
} from "@bitfiber/core"
import { expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Layer } from "effect"
import { join } from "node:path"
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

/** libtorrent seeds to a libtorrent leecher that finds it only through our tracker server. */
const swarmThroughOurTracker = (protocol: "http" | "udp") =>
  Effect.gen(function* () {
    const loopback = { host: "127.0.0.1", port: 0 }
    const server = yield* TrackerServer.make(protocol === "http" ? { http: loopback } : { udp: loopback })
    const announceUrl = (protocol === "http" ? server.http : server.udp)!.announceUrl
    const root = yield* Interop.tempDir("tracker-server")
    const files = [{ path: "payload/a.bin", size: 300 * 1024 }]
    const seedDir = yield* Interop.makeTestPayload({ dir: join(root, "seed"), files, seed: `tracker-${protocol}` })
    const torrentPath = yield* Interop.mktorrent({
      path: join(seedDir, "payload"),
      out: join(root, "payload.torrent"),
      announce: [announceUrl],
      pieceLength: 32 * 1024
    })
    yield* Interop.libtorrentSeeder({ torrentPath, dataDir: seedDir })
    // The seeder's `started` must be in before the leecher asks, or the leecher waits an interval.
    yield* Effect.gen(function* () {
      while ((yield* server.size).peers === 0) yield* Effect.sleep("50 millis")
    }).pipe(Effect.timeout("20 seconds"))
    const leecher = yield* Interop.libtorrentLeecher({ torrentPath, saveDir: join(root, "leech") })
    yield* leecher.waitFinished("40 seconds")
    expect(yield* Interop.sha256Dir(join(root, "leech"))).toEqual(yield* Interop.sha256Dir(seedDir))
  }).pipe(Effect.provide(NodeNetwork.layer))

Interop.describeInterop("our tracker server with libtorrent", ["mktorrent", "libtorrent"], () => {
  it.scopedLive("a libtorrent leecher finds a libtorrent seeder through our HTTP tracker", () =>
    swarmThroughOurTracker("http"), 60_000)

  it.scopedLive("a libtorrent leecher finds a libtorrent seeder through our UDP tracker", () =>
    swarmThroughOurTracker("udp"), 60_000)
})
