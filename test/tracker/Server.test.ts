import {
  Announce,
  Bencode,
  HttpTracker,
  InfoHash,
  Network,
  NodeNetwork,
  PeerId,
  TrackerServer,
  UdpMessage,
  UdpTracker
} from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Stream, TestClock } from "effect"

const loopback = { host: "127.0.0.1", port: 0 }
const infoHash = InfoHash.unsafeFromBytes(Uint8Array.from({ length: 20 }, (_, i) => (i * 13) & 0xff))

const peer = (port: number, overrides: Partial<Announce.AnnounceRequest> = {}): Announce.AnnounceRequest => ({
  infoHash,
  peerId: PeerId.unsafeFromBytes(new Uint8Array(20).fill(port & 0xff)),
  port,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  event: "started",
  numwant: 50,
  key: port,
  ...overrides
})

/** Sends one raw GET to the server and decodes the bencoded body. */
const rawGet = (address: Network.Address, target: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const network = yield* Network.Network
      const connection = yield* network.connect(address)
      yield* connection.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, "latin1"))
      const bytes = yield* connection.chunks.pipe(Stream.runCollect)
      const text = Buffer.concat([...bytes]).toString("latin1")
      const body = text.slice(text.indexOf("\r\n\r\n") + 4)
      return { status: text.slice(9, 12), body: Bencode.decode(Buffer.from(body, "latin1")) }
    })
  )

const ports = (response: Announce.AnnounceResponse) => response.peers.map((p) => p.port).sort()

describe("TrackerServer", () => {
  describe("over HTTP", () => {
    it.scoped("lets two peers find each other, and forgets one that stopped", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ http: loopback, interval: 60 })
        const url = server.http!.announceUrl
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/announce$/)
        const first = yield* HttpTracker.announce(url, peer(7001))
        expect(first.peers).toEqual([])
        expect(first).toMatchObject({ interval: 60, minInterval: 30, incomplete: 1, complete: 0 })
        const second = yield* HttpTracker.announce(url, peer(7002, { left: 0 }))
        expect(second.peers).toEqual([{ host: "127.0.0.1", port: 7001 }])
        expect(second).toMatchObject({ complete: 1, incomplete: 1 })
        expect(ports(yield* HttpTracker.announce(url, peer(7001, { event: "none" })))).toEqual([7002])
        yield* HttpTracker.announce(url, peer(7002, { event: "stopped" }))
        expect(ports(yield* HttpTracker.announce(url, peer(7001, { event: "none" })))).toEqual([])
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("answers dictionary lists to non-compact requests, and scrapes", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ http: loopback })
        const url = server.http!.announceUrl
        yield* HttpTracker.announce(url, peer(7001))
        yield* HttpTracker.announce(url, peer(7001, { event: "completed", left: 0 }))
        const target = Either.getOrThrow(HttpTracker.announceUrl(url, peer(7002))).replace(/^http:\/\/[^/]+/, "")
        const dictionary = yield* rawGet(server.http!.address, target.replace("compact=1", "compact=0"))
        const peers = (Either.getOrThrow(dictionary.body) as Bencode.Dictionary).get("peers") as ReadonlyArray<Bencode.Dictionary>
        const entry = (p: Bencode.Dictionary) => [
          Bencode.text(p.get("ip") as Uint8Array),
          p.get("port"),
          (p.get("peer id") as Uint8Array)[0]
        ]
        expect(peers.map(entry)).toEqual([["127.0.0.1", 7001, 7001 & 0xff]])
        const scrape = yield* HttpTracker.scrape(url, [infoHash])
        expect(scrape.get(InfoHash.toHex(infoHash))).toEqual({ complete: 1, incomplete: 1, downloaded: 1 })
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("answers bad requests with a failure reason or an error status", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ http: loopback })
        const address = server.http!.address
        const failure = (yield* rawGet(address, "/announce?info_hash=short&peer_id=x&port=1")).body
        expect(Bencode.text((Either.getOrThrow(failure) as Bencode.Dictionary).get("failure reason") as Uint8Array)).toBe(
          "info_hash must be 20 bytes"
        )
        expect((yield* rawGet(address, "/elsewhere")).status).toBe("404")
        expect((yield* rawGet(address, "/announce?bad=%zz")).status).toBe("400")
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("puts IPv6 peers in peers6", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ http: { host: "::1", port: 0 } })
        const url = server.http!.announceUrl
        expect(url).toMatch(/^http:\/\/\[::1\]:\d+\/announce$/)
        yield* HttpTracker.announce(url, peer(7001))
        const response = yield* HttpTracker.announce(url, peer(7002))
        expect(response.peers).toEqual([{ host: "::1", port: 7001 }])
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("forgets peers after the TTL on the Clock", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ http: loopback, interval: 60, peerTtl: "90 seconds" })
        const url = server.http!.announceUrl
        yield* HttpTracker.announce(url, peer(7001))
        yield* TestClock.adjust("89 seconds")
        expect(ports(yield* HttpTracker.announce(url, peer(7002)))).toEqual([7001])
        yield* TestClock.adjust("1 second")
        expect(ports(yield* HttpTracker.announce(url, peer(7003)))).toEqual([7002])
        expect(yield* server.size).toEqual({ torrents: 1, peers: 2 })
      }).pipe(Effect.provide(NodeNetwork.layer)))
  })

  describe("over UDP", () => {
    it.scoped("lets two peers find each other, forgets one that stopped, and scrapes", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ udp: loopback, interval: 60 })
        const url = server.udp!.announceUrl
        const client = yield* UdpTracker.make()
        expect((yield* client.announce(url, peer(7001))).peers).toEqual([])
        const second = yield* client.announce(url, peer(7002, { left: 0 }))
        expect(second).toEqual({ interval: 60, complete: 1, incomplete: 1, peers: [{ host: "127.0.0.1", port: 7001 }] })
        yield* client.announce(url, peer(7001, { event: "completed", left: 0 }))
        expect(yield* client.scrape(url, [infoHash])).toEqual(
          new Map([[InfoHash.toHex(infoHash), { complete: 2, incomplete: 0, downloaded: 1 }]])
        )
        yield* client.announce(url, peer(7002, { event: "stopped" }))
        expect((yield* client.announce(url, peer(7001, { event: "none" }))).peers).toEqual([])
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("answers IPv6 clients with 18-byte peers", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ udp: { host: "::1", port: 0 } })
        const client = yield* UdpTracker.make()
        yield* client.announce(server.udp!.announceUrl, peer(7001))
        const response = yield* client.announce(server.udp!.announceUrl, peer(7002))
        expect(response.peers).toEqual([{ host: "::1", port: 7001 }])
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("bounds the peers in a reply by its numwant limit", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ udp: loopback, maxNumwant: 2 })
        const client = yield* UdpTracker.make()
        for (const port of [7001, 7002, 7003]) yield* client.announce(server.udp!.announceUrl, peer(port))
        expect((yield* client.announce(server.udp!.announceUrl, peer(7004, { numwant: 50 }))).peers).toHaveLength(2)
        expect((yield* client.announce(server.udp!.announceUrl, peer(7005, { numwant: 1 }))).peers).toHaveLength(1)
      }).pipe(Effect.provide(NodeNetwork.layer)))

    it.scoped("refuses an announce with a connection id it did not issue", () =>
      Effect.gen(function* () {
        const server = yield* TrackerServer.make({ udp: loopback })
        const network = yield* Network.Network
        const socket = yield* network.udp(loopback)
        const forged = UdpMessage.encodeRequest({
          _tag: "Announce",
          connectionId: 12345n,
          transactionId: 99,
          infoHash,
          peerId: new Uint8Array(20),
          downloaded: 0,
          left: 0,
          uploaded: 0,
          event: "started",
          ip: 0,
          key: 0,
          numwant: 10,
          port: 7001
        })
        yield* socket.send(forged, server.udp!.address)
        const reply = Option.getOrThrow(yield* socket.datagrams.pipe(Stream.runHead))
        const decoded = Either.getOrThrow(UdpMessage.decodeResponse(reply.bytes, false))
        expect(decoded).toEqual({ _tag: "Error", transactionId: 99, message: "unknown connection id" })
        expect(yield* server.size).toEqual({ torrents: 0, peers: 0 })
      }).pipe(Effect.provide(NodeNetwork.layer)))
  })
})
