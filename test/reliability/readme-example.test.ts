import { type Network, Session, SessionConfig } from "@bitfiber/core"
import { FaultPlan, MemoryNetwork, ScriptedPeer, Seed, Simulation, Swarm, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

// The code under test: yours, written against bitfiber's services (Network, Storage, TrackerClient).
const fetchTorrent = (torrent: Uint8Array, peers: ReadonlyArray<Network.Address>) =>
  Effect.gen(function* () {
    const session = yield* Session.make(yield* SessionConfig.make({ listen: false }))
    const download = yield* session.add({ torrent, directory: "/downloads", peers })
    yield* download.completed
    return yield* download.peerErrors
  })

const movie = TestTorrent.make({ files: [{ path: "movie.mkv", length: 1_000_000 }], pieceLength: 64 * 1024 })

describe("fetchTorrent", () => {
  it.effect("gets every byte through a flaky network, past a peer that lies", () =>
    Simulation.scoped(Effect.gen(function* () {
      // Every random choice comes from the seed; BITFIBER_SEED=<seed> replays a failure.
      const seed = Seed.fromEnv(process.env, 42)
      const network = yield* MemoryNetwork.make({ seed })

      // An honest bitfiber seeder, and a scripted peer that corrupts every block it sends.
      const seeder = yield* Swarm.seeder(yield* Swarm.host(network, "10.0.0.1"), movie)
      const liar = yield* ScriptedPeer.listen(
        { host: "10.0.0.2", port: 6881 },
        ScriptedPeer.seed({ ...movie.metainfo, content: movie.content, behaviour: { corruptAll: true } })
      ).pipe(Effect.provide(MemoryNetwork.layer(network, { host: "10.0.0.2" })))

      // 200 ms latency with jitter everywhere; the honest seeder stalls for 30 s after 2 s.
      yield* FaultPlan.run(network, [
        FaultPlan.link({ match: {}, link: { latency: "200 millis", jitter: "50 millis" } }),
        FaultPlan.link({ at: "2 seconds", duration: "30 seconds", match: { from: "10.0.0.1" }, link: { stall: true } })
      ])

      // Our machine: its own view of the network and an in-memory disk.
      const me = yield* Swarm.host(network, "10.0.0.100")
      const peerErrors = yield* Simulation.run(
        fetchTorrent(movie.torrent, [seeder.address, liar.address]).pipe(Effect.provide(me.services)),
        { limit: "10 minutes" }
      )

      const bytes = yield* Swarm.readContent(me, movie.metainfo, "/downloads")
      expect(bytes._tag === "Some" && Buffer.compare(bytes.value, movie.content) === 0, Seed.replayHint(seed)).toBe(true)
      expect(peerErrors).toContainEqual(expect.objectContaining({ _tag: "Dropped", reason: "Banned", address: "10.0.0.2:6881" }))
    })))
})
