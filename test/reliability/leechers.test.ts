/**
 * Misbehaving leechers against a bitfiber seeder: the seeder drops the ones that break the
 * protocol, stays bounded under floods, and keeps serving an honest bitfiber leecher throughout.
 */
import { Message, type PeerError, PeerId } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, Simulation, Swarm } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { printSeedOnFailure, seedMathRandom, small, suiteSeed } from "./support/Scenario.js"

const SEEDER = "10.0.3.1"
const BAD = "10.0.3.2"
const GOOD = "10.0.3.3"
const { info, infoHash } = small.metainfo
const CHEAT_ID = PeerId.unsafeFromBytes(Buffer.from("-XX0001-misbehaving1", "latin1"))

/**
 * A bitfiber seeder, a scripted leecher with `behaviour` and an honest bitfiber leecher; returns
 * why the seeder dropped the scripted one, once the honest one has the whole torrent.
 */
const serve = (
  behaviour: ScriptedPeer.LeechBehaviour,
  options?: { readonly fast?: boolean; readonly untilDropped?: boolean }
) =>
  Effect.gen(function* () {
    const seed = suiteSeed()
    yield* seedMathRandom(seed)
    const board = yield* MemoryNetwork.make({ seed })
    const seeder = yield* Swarm.seeder(yield* Swarm.host(board, SEEDER), small)
    yield* Simulation.run(seeder.torrent.completed, { limit: "1 minute" })
    const bad = yield* Effect.fork(
      ScriptedPeer.connect(seeder.address, ScriptedPeer.leech({ info, infoHash, behaviour, fast: options?.fast ?? true })).pipe(
        Effect.provide(MemoryNetwork.layer(board, { host: BAD }))
      )
    )
    const goodHost = yield* Swarm.host(board, GOOD)
    const good = yield* Swarm.leecher(goodHost, small, [seeder.address], { listen: false })
    yield* Simulation.run(good.torrent.completed, { limit: "5 minutes" })
    expect(yield* Swarm.hasContent(goodHost, small)).toBe(true)
    const errorsOfBad = Effect.map(seeder.torrent.peerErrors, (all) => all.filter((error) => error.address.startsWith(`${BAD}:`)))
    if (options?.untilDropped === true) {
      // The misbehaviour may still be arriving: give the seeder (virtual) time to notice.
      const dropped = errorsOfBad.pipe(Effect.repeat({ until: (errors) => errors.length > 0, schedule: Schedule.spaced("1 second") }))
      yield* Simulation.run(dropped, { limit: "2 minutes" })
    }
    const errors = yield* errorsOfBad
    yield* Fiber.interrupt(bad)
    return { errors, seeder, board }
  })

const reasons = (errors: ReadonlyArray<PeerError.PeerError>) =>
  errors.map((error) => ("reason" in error ? `${error._tag}(${error.reason})` : error._tag))

printSeedOnFailure()

describe("a misbehaving leecher against a bitfiber seeder, beside an honest leecher", () => {
  it.scoped("a request for a piece that does not exist: dropped with ProtocolViolation(BadRequest)", () =>
    Effect.gen(function* () {
      const { errors } = yield* serve({ badRequest: "outOfRange" }, { untilDropped: true })
      expect(reasons(errors)).toEqual(["ProtocolViolation(BadRequest)"])
    }))

  it.scoped("a request longer than any block (128 KiB + 1): dropped with ProtocolViolation(BadRequest)", () =>
    Effect.gen(function* () {
      const { errors } = yield* serve({ badRequest: "overLong" }, { untilDropped: true })
      expect(reasons(errors)).toEqual(["ProtocolViolation(BadRequest)"])
    }))

  it.scoped("requests before being unchoked are refused, not served, and not a reason to drop", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const seeder = yield* Swarm.seeder(yield* Swarm.host(board, SEEDER), small)
      yield* Simulation.run(seeder.torrent.completed, { limit: "1 minute" })
      // Requests first, then reads: the first answers must be rejects, no piece before an unchoke.
      const seen = yield* Simulation.run(
        ScriptedPeer.connect(
          seeder.address,
          ScriptedPeer.script(
            ScriptedPeer.handshake({ infoHash, peerId: CHEAT_ID, fast: true }),
            ScriptedPeer.send(Message.Request(0, 0, 16384), Message.Request(1, 0, 16384)),
            ScriptedPeer.expect("Reject", { skip: true }),
            ScriptedPeer.expect("Reject", { skip: true }),
            ScriptedPeer.send(Message.Interested),
            ScriptedPeer.expect("Unchoke", { skip: true }),
            ScriptedPeer.send(Message.Request(0, 0, 16384)),
            ScriptedPeer.expect((message) => message._tag === "Piece" && message.index === 0, { skip: true })
          )
        ).pipe(Effect.provide(MemoryNetwork.layer(board, { host: BAD })), Effect.either),
        { limit: "1 minute" }
      )
      expect(seen._tag).toBe("Right")
      // Only the end of the script's own connection.
      expect(reasons(yield* seeder.torrent.peerErrors)).toEqual(["ConnectionLost"])
    }))

  it.scoped("a cancel storm (2,000 request/cancel pairs): the seeder keeps serving the honest leecher", () =>
    Effect.gen(function* () {
      const { errors } = yield* serve({ cancelStorm: 2000 })
      expect(reasons(errors).filter((reason) => reason.startsWith("ProtocolViolation"))).toEqual([])
    }))

  it.scoped("a request flood (50,000 requests, never reading): dropped with RequestFlood before its rejects pile up", () =>
    Effect.gen(function* () {
      const before = process.memoryUsage().heapUsed
      const { errors } = yield* serve({ requestFlood: 50_000, stopReading: true }, { untilDropped: true })
      expect(reasons(errors)).toEqual(["ProtocolViolation(RequestFlood)"])
      // The seeder queues at most twice maxPendingUploads answers for one peer.
      expect(process.memoryUsage().heapUsed - before).toBeLessThan(48 * 1024 * 1024)
    }))

  it.scoped("a cancel storm against a connection that is not read: dropped with RequestFlood, not queued forever", () =>
    Effect.gen(function* () {
      const { errors } = yield* serve({ requestFlood: 100, cancelStorm: 5_000, stopReading: true }, { untilDropped: true })
      expect(reasons(errors)).toEqual(["ProtocolViolation(RequestFlood)"])
    }))

  it.scoped("a leecher that stops reading: its connection backs up, the other leecher is not held back", () =>
    Effect.gen(function* () {
      const { errors } = yield* serve({ requestFlood: 200, stopReading: true })
      expect(reasons(errors).filter((reason) => reason.startsWith("ProtocolViolation"))).toEqual([])
    }))
})
