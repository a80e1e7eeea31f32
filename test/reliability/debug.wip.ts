import { PeerId, InfoHash, TrackerClient } from "@bitfiber/core"
import { FakeTracker, MemoryNetwork, Simulation } from "@bitfiber/core/testing"
import { it } from "@effect/vitest"
import { Effect } from "effect"
const cases: Record<string, MemoryNetwork.Link> = {
  drop: { drop: 0.3 },
  dup: { duplicate: 0.3 },
  reorder: { reorder: 0.5 },
  jitter: { latency: "50 millis", jitter: "100 millis" },
}
for (const [name, link] of Object.entries(cases))
it.scoped("udp " + name, () => Effect.gen(function* () {
  const board = yield* MemoryNetwork.make({ seed: 1 })
  yield* board.setLink({ from: "10.0.0.1", to: "10.0.0.2" }, link)
  yield* board.setLink({ from: "10.0.0.2", to: "10.0.0.1" }, link)
  const tracker = yield* FakeTracker.udp({ host: "10.0.0.2", port: 81 }, () => FakeTracker.udpPeers([{ host: "1.2.3.4", port: 5 }])).pipe(Effect.provide(MemoryNetwork.layer(board, { host: "10.0.0.2" })))
  const t0 = Date.now()
  for (let i = 0; i < 5; i++) {
    const r = yield* Simulation.run(Effect.either(Effect.flatMap(TrackerClient.TrackerClient, (c) => c.announce(tracker.url, { infoHash: InfoHash.unsafeFromBytes(new Uint8Array(20)), peerId: PeerId.generate(), port: 1, uploaded: 0, downloaded: 0, left: 0, event: "started", numwant: 50, key: 1 }))), { limit: "5 minutes" }).pipe(Effect.provide(TrackerClient.layer()), Effect.provide(MemoryNetwork.layer(board, { host: "10.0.0.1" })))
    console.log(name, i, r._tag, Date.now() - t0)
  }
}), 60_000)
