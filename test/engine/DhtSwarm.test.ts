import { Dht, Magnet, MemoryStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { runUnderTestClock } from "./fixtures.js"
import * as Path from "node:path"

const test = TestTorrent.make({ files: [{ path: "d.bin", length: 300_000 }], pieceLength: 32 * 1024 })

const services = (switchboard: MemoryNetwork.Switchboard, host: string) =>
  Layer.mergeAll(MemoryStorage.layer, TrackerClient.layer()).pipe(Layer.provideMerge(MemoryNetwork.layer(switchboard, { host })))

describe("peers found through the DHT (TestClock)", () => {
  it.scoped("a magnet link with no tracker and no peer resolves and downloads through the DHT", () =>
    Effect.gen(function* () {
      const switchboard = yield* MemoryNetwork.make()
      // A plain DHT node everyone bootstraps from.
      const router = yield* Dht.make({ address: { host: "10.9.0.1", port: 6881 } }).pipe(
        Effect.provide(MemoryNetwork.layer(switchboard, { host: "10.9.0.1" }))
      )
      const bootstrap = ["10.9.0.1:6881"]

      const seederContext = yield* Layer.build(services(switchboard, "10.9.0.2"))
      yield* Effect.gen(function* () {
        const disk = yield* MemoryStorage.MemoryDisk
        yield* disk.put(Path.join("/seed", "d.bin"), test.content)
        const session = yield* Session.make(yield* SessionConfig.make({ dht: true, dhtBootstrap: bootstrap }))
        yield* session.add({ torrent: test.torrent, directory: "/seed" })
      }).pipe(Effect.provide(seederContext))

      const leecherContext = yield* Layer.build(services(switchboard, "10.9.0.3"))
      const fiber = yield* Effect.gen(function* () {
        const session = yield* Session.make(yield* SessionConfig.make({ dht: true, dhtBootstrap: bootstrap }))
        // Give the seeder's first announce time to reach the router.
        yield* Effect.sleep("30 seconds")
        const magnet = yield* Magnet.parse(`magnet:?xt=urn:btih:${Buffer.from(test.metainfo.infoHash).toString("hex")}`)
        const torrent = yield* session.addMagnet(magnet, { directory: "/dl" })
        yield* torrent.completed
        const disk = yield* MemoryStorage.MemoryDisk
        return yield* disk.file(Path.join("/dl", "d.bin"))
      }).pipe(Effect.provide(leecherContext), Effect.fork)
      const bytes = yield* runUnderTestClock(fiber, 600)
      expect(Option.isSome(bytes) && Buffer.from(bytes.value).equals(Buffer.from(test.content))).toBe(true)
      expect((yield* router.stats).storedInfoHashes).toBeGreaterThanOrEqual(1)
    }))
})
