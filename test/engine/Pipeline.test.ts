/**
 * The requests a torrent keeps in flight: each peer's share follows its rate, and across peers
 * they stay within `maxRequestsPerTorrent` (each request holds part of a piece buffer), while a
 * peer always gets its first few.
 */
import { Bitfield, Message, PeerId } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, Simulation, Swarm, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"

/** 4 MiB in 64 KiB pieces: 256 blocks, more than the stalling seeders below serve. */
const test = TestTorrent.make({ files: [{ path: "big.bin", length: 4 * 1024 * 1024 }], pieceLength: 64 * 1024 })
const { info, infoHash } = test.metainfo

/**
 * A seeder that serves its first `serve` requests, then goes silent and only counts the requests
 * it receives: those the leecher keeps in flight at it.
 */
const stallingSeeder = (serve: number, held: Array<number>, slot: number): ScriptedPeer.Step => (wire) =>
  Effect.gen(function* () {
    yield* ScriptedPeer.handshake({ infoHash, peerId: PeerId.generate() })(wire)
    yield* wire.send(Message.Bitfield(Bitfield.Bitfield.full(info.pieceCount).bytes), Message.Unchoke)
    let served = 0
    for (;;) {
      const received = yield* wire.receive
      if (Option.isNone(received)) return
      const message = received.value
      if (message._tag === "Cancel") held[slot]!--
      if (message._tag !== "Request") continue
      if (served < serve) {
        served++
        const start = message.index * info.pieceLength + message.begin
        yield* wire.send(Message.Piece(message.index, message.begin, test.content.subarray(start, start + message.length)))
      } else held[slot]!++
    }
  })

/** Requests held at each of `seeders` stalling seeders once they have served `serve` blocks each. */
const heldRequests = (seeders: number, serve: number, maxRequestsPerTorrent: number) =>
  Effect.gen(function* () {
    const switchboard = yield* MemoryNetwork.make({ seed: 1 })
    const held = Array.from({ length: seeders }, () => 0)
    const addresses = yield* Effect.forEach(held, (_, i) =>
      ScriptedPeer.listen({ host: `10.0.1.${i + 1}`, port: Swarm.PORT }, stallingSeeder(serve, held, i)).pipe(
        Effect.provide(MemoryNetwork.layer(switchboard, { host: `10.0.1.${i + 1}` })),
        Effect.map((listening) => listening.address)
      ))
    const host = yield* Swarm.host(switchboard, "10.0.0.100")
    yield* Swarm.leecher(host, test, addresses, { listen: false, maxRequestsPerTorrent })
    // Less than the request timeout: no stalled peer is snubbed yet, its requests still count.
    yield* Effect.either(Simulation.run(Effect.never, { limit: "10 seconds", step: "100 millis" }))
    return held
  })

const sum = (counts: ReadonlyArray<number>) => counts.reduce((a, b) => a + b, 0)

describe("requests in flight", () => {
  it.scoped("stay within the torrent's budget across peers, each peer keeping at least its first few", () =>
    Effect.gen(function* () {
      const held = yield* heldRequests(3, 40, 16)
      // The budget, plus at most the first few (4) each peer always gets.
      expect(sum(held)).toBeLessThanOrEqual(16 + 3 * 4)
      for (const count of held) expect(count).toBeGreaterThan(0)
    }))

  it.scoped("grow past the budget of a small one when the budget allows (the bound above is the budget's doing)", () =>
    Effect.gen(function* () {
      const held = yield* heldRequests(3, 40, 512)
      expect(sum(held)).toBeGreaterThan(16 + 3 * 4)
    }))
})
