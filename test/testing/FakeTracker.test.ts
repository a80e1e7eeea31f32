import { type Announce, InfoHash, type Network, PeerId, TrackerClient } from "@bitfiber/core"
import { FakeTracker, MemoryNetwork, Simulation } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, type Scope } from "effect"

const TRACKER = "10.0.0.1"
const CLIENT = "10.0.0.2"

const request: Announce.AnnounceRequest = {
  infoHash: InfoHash.unsafeFromBytes(new Uint8Array(20).fill(1)),
  peerId: PeerId.unsafeFromBytes(new Uint8Array(20).fill(2)),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  event: "started",
  numwant: 50,
  key: 7
}

/** Announces once with the live client on the client host, under virtual time. */
const announceTo = (board: MemoryNetwork.Switchboard, url: string) =>
  Simulation.run(
    Effect.either(Effect.flatMap(TrackerClient.TrackerClient, (client) => client.announce(url, request))),
    { limit: "5 minutes" }
  ).pipe(Effect.provide(TrackerClient.layer().pipe(Layer.provide(MemoryNetwork.layer(board, { host: CLIENT })))))

/** A scripted tracker's view of the switchboard. */
const onTracker = <A, E>(board: MemoryNetwork.Switchboard, start: Effect.Effect<A, E, Network.Network | Scope.Scope>) =>
  Effect.provide(start, MemoryNetwork.layer(board, { host: TRACKER }))

const reasonOf = (result: Either.Either<Announce.AnnounceResponse, Announce.TrackerError>) =>
  Either.match(result, { onLeft: (error) => `${error.reason}: ${error.message}`, onRight: () => "ok" })

describe("FakeTracker", () => {
  it.scoped("HTTP replies become the client's typed errors: status, malformed, failure, silence", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const replies = [FakeTracker.status(500), FakeTracker.malformed, FakeTracker.failure("go away"), FakeTracker.silent]
      const tracker = yield* onTracker(board, FakeTracker.http({ host: TRACKER, port: 80 }, (_, n) => replies[n]!))
      const results = []
      for (let i = 0; i < replies.length; i++) results.push(reasonOf(yield* announceTo(board, tracker.url)))
      expect(results[0]).toMatch(/^HttpStatus/)
      expect(results[1]).toMatch(/^Malformed/)
      expect(results[2]).toBe("Failure: go away")
      expect(results[3]).toMatch(/^Timeout/)
      const announces = yield* tracker.announces
      expect(announces).toHaveLength(4)
      expect(announces[0]).toMatchObject({ event: "started", left: 1000, port: 6881, numwant: 50, from: { host: CLIENT } })
    }))

  it.scoped("an HTTP reply of 10,000 peers is parsed (and capped at the client's limit)", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const crowd = FakeTracker.manyPeers(10_000)
      expect(new Set(crowd.map((peer) => peer.host)).size).toBe(10_000)
      const tracker = yield* onTracker(board, FakeTracker.http({ host: TRACKER, port: 80 }, () => FakeTracker.peers(crowd, 900)))
      const response = Either.getOrThrow(yield* announceTo(board, tracker.url))
      expect(response.interval).toBe(900)
      expect(response.peers).toHaveLength(10_000)
      expect(response.peers[9_999]).toEqual(crowd[9_999])
    }))

  it.scoped("UDP replies: peers, an error, another transaction, the wrong action", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const peer = { host: "10.1.2.3", port: 51413 }
      // One tracker per reply: the client may announce again after an error, with a fresh connection id.
      const replies = [FakeTracker.udpPeers([peer]), FakeTracker.udpError("nope"), FakeTracker.wrongTransaction, FakeTracker.wrongAction]
      const trackers = yield* Effect.forEach(replies, (reply, i) =>
        onTracker(board, FakeTracker.udp({ host: TRACKER, port: 80 + i }, () => reply)))
      const [peers, error, transaction, action] = yield* Effect.forEach(trackers, (tracker) => announceTo(board, tracker.url))
      expect(Either.getOrThrow(peers!).peers).toEqual([peer])
      expect(reasonOf(error!)).toBe("Failure: nope")
      expect(reasonOf(transaction!)).toMatch(/^TransactionMismatch/)
      expect(reasonOf(action!)).toMatch(/^Malformed/)
      expect((yield* trackers[0]!.announces)[0]).toMatchObject({ event: "started", left: 1000, port: 6881, from: { host: CLIENT } })
    }))

  it.effect("client: a TrackerClient layer answering from a function, counting announces per URL", () =>
    Effect.gen(function* () {
      const client = yield* Effect.provide(
        TrackerClient.TrackerClient,
        FakeTracker.client((url, _, n) => Effect.succeed({ interval: n, peers: url === "a" ? [{ host: "1.1.1.1", port: 1 }] : [] }))
      )
      const intervals = [
        (yield* client.announce("a", request)).interval,
        (yield* client.announce("a", request)).interval,
        (yield* client.announce("b", request)).interval
      ]
      expect(intervals).toEqual([0, 1, 0])
      expect((yield* Effect.flip(client.scrape("a", [request.infoHash]))).reason).toBe("UnsupportedScheme")
    }))
})
