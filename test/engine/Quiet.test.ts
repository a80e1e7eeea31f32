/**
 * A torrent with no peer, nobody being dialed and nothing due stops ticking (a session of
 * thousands of idle torrents must cost nothing between their events): whatever happens next (a
 * peer added, a retry coming due, an incoming peer) must still be acted on at once.
 */
import { MemoryStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, TestClock } from "effect"
import { runUnderTestClock } from "./fixtures.js"

const test = TestTorrent.make({ files: [{ path: "q.bin", length: 200_000 }], pieceLength: 32 * 1024 })
const SEEDER = { host: "10.0.9.1", port: 6881 }
const LEECHER_HOST = "10.0.9.100"

/** A leecher session on the switchboard, and a way to start an honest seeder at SEEDER. */
const setup = (bandwidth?: number) => Effect.gen(function* () {
  const switchboard = yield* MemoryNetwork.make()
  if (bandwidth !== undefined) yield* switchboard.setLink({}, { bandwidth })
  const services = Layer.mergeAll(MemoryStorage.layer, TrackerClient.layer()).pipe(
    Layer.provideMerge(MemoryNetwork.layer(switchboard, { host: LEECHER_HOST }))
  )
  const startSeeder = ScriptedPeer.listen(
    SEEDER,
    ScriptedPeer.seed({ info: test.metainfo.info, infoHash: test.metainfo.infoHash, content: test.content })
  ).pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: SEEDER.host })))
  const session = yield* Effect.provide(
    Effect.flatMap(SessionConfig.make({ listen: false }), Session.make),
    services
  )
  return { session, startSeeder }
})

describe("a quiet torrent", () => {
  it.scoped("left alone for ten minutes, downloads from a peer added then and shows it at once", () =>
    Effect.gen(function* () {
      // 20 KB/s: the download takes about ten seconds.
      const { session, startSeeder } = yield* setup(20_000)
      const torrent = yield* session.add({ torrent: test.torrent, directory: "/quiet" })
      yield* startSeeder
      yield* TestClock.adjust("10 minutes")
      expect(yield* torrent.progress).toMatchObject({ state: "downloading", peers: 0, connecting: 0, downloadRate: 0 })
      yield* torrent.addPeers([SEEDER])
      const done = yield* Effect.fork(torrent.completed)
      yield* TestClock.adjust("3 seconds")
      const midway = yield* torrent.progress
      expect(midway.peers).toBe(1)
      expect(midway.downloadRate).toBeGreaterThan(0)
      yield* runUnderTestClock(done, 30)
      expect((yield* torrent.progress).verifiedPieces).toBe(test.metainfo.info.pieceCount)
    }))

  it.scoped("retries a peer that was down at its backoff, and downloads once it is up", () =>
    Effect.gen(function* () {
      const { session, startSeeder } = yield* setup()
      const torrent = yield* session.add({ torrent: test.torrent, directory: "/quiet", peers: [SEEDER] })
      const done = yield* Effect.fork(torrent.completed)
      // Nobody listens yet: the dial fails and the torrent waits for its retry, quiet meanwhile.
      yield* TestClock.adjust("1 minute")
      expect(Option.isNone(yield* Fiber.poll(done))).toBe(true)
      yield* startSeeder
      // Backoff after two or three failures: 20 to 40 s.
      yield* runUnderTestClock(done, 60)
      expect((yield* torrent.progress).verifiedPieces).toBe(test.metainfo.info.pieceCount)
    }))

  it.scoped("publishes its last figures before it goes quiet: no peer, no rate", () =>
    Effect.gen(function* () {
      const { session, startSeeder } = yield* setup()
      yield* startSeeder
      const torrent = yield* session.add({ torrent: test.torrent, directory: "/quiet", peers: [SEEDER] })
      const done = yield* Effect.fork(torrent.completed)
      yield* runUnderTestClock(done, 60)
      // The seeder is dropped as useless once we are complete; the rates decay to zero.
      yield* TestClock.adjust("2 minutes")
      expect(yield* torrent.progress).toMatchObject({ state: "seeding", peers: 0, downloadRate: 0, uploadRate: 0 })
    }))
})
