/**
 * Fake trackers that fail in every way a tracker can: the real HTTP and UDP clients parse their
 * bad replies into typed errors shown in the torrent's tracker status, the announcer backs off
 * or uses another tier, and the download completes as soon as any tracker hands out a peer.
 */
import { Announce, type Network, type Torrent } from "@bitfiber/core"
import { FakeTracker, MemoryNetwork, Seed, Simulation, Swarm, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, type Scope } from "effect"
import { printSeedOnFailure, seedMathRandom, suiteSeed } from "./support/Scenario.js"

const TRACKER_HOST = "10.0.5.1"
const SEEDER = "10.0.5.2"
const LEECHER = "10.0.5.3"
const seederAddress: Network.Address = { host: SEEDER, port: Swarm.PORT }

/** A small torrent announcing to `tiers`. */
const torrentWith = (tiers: ReadonlyArray<ReadonlyArray<string>>) =>
  TestTorrent.make({ files: [{ path: "t.bin", length: 150_000 }], pieceLength: 16 * 1024, trackers: tiers })

/** The URL a scripted tracker on `TRACKER_HOST:port` has. */
const http = (port: number) => `http://${TRACKER_HOST}:${port}/announce`
const udp = (port: number) => `udp://${TRACKER_HOST}:${port}/announce`

/**
 * Starts the trackers (`start` runs on the tracker host's view), an honest bitfiber seeder that
 * announces nowhere useful, and a leecher that knows no peers but its trackers; runs the download.
 */
const download = (
  tiers: ReadonlyArray<ReadonlyArray<string>>,
  start: Effect.Effect<unknown, unknown, Network.Network | Scope.Scope>,
  options?: {
    readonly limit?: Duration.DurationInput
    readonly trackerClient?: Parameters<typeof Swarm.host>[2]
    /** Sets up the switchboard's links before anything starts. */
    readonly links?: (board: MemoryNetwork.Switchboard) => Effect.Effect<void>
  }
) =>
  Effect.gen(function* () {
    const seed = suiteSeed()
    yield* seedMathRandom(seed)
    const test = torrentWith(tiers)
    const board = yield* MemoryNetwork.make({ seed })
    if (options?.links !== undefined) yield* options.links(board)
    yield* Effect.orDie(Effect.provide(start, MemoryNetwork.layer(board, { host: TRACKER_HOST })))
    // The seeder's torrent lists no trackers: only the leecher's announces are under test.
    yield* Swarm.seeder(yield* Swarm.host(board, SEEDER), { ...test, metainfo: { ...test.metainfo, trackers: [] } })
    const host = yield* Swarm.host(board, LEECHER, options?.trackerClient)
    const leecher = yield* Swarm.leecher(host, test, [], { listen: false })
    // Tracker timings are tens of seconds: coarse steps keep the run cheap.
    const result = yield* Effect.either(
      Simulation.run(leecher.torrent.completed, { limit: options?.limit ?? "5 minutes", step: "5 seconds" })
    )
    const progress = yield* leecher.torrent.progress
    const failure = `${JSON.stringify(progress.trackers)}; ${Seed.replayHint(seed)}`
    return { completed: result._tag === "Right", intact: yield* Swarm.hasContent(host, test), progress, failure, leecher }
  })

/** The status of tracker `url`. */
const statusOf = (progress: Torrent.Progress, url: string) =>
  progress.trackers.find((tracker) => tracker.url === url)

printSeedOnFailure()

describe("fake trackers", () => {
  it.effect("HTTP 500 from the first tier: HttpStatus in its status, peers from the second tier", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download([[http(81)], [http(82)]], Effect.all([
        FakeTracker.http({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.status(500)),
        FakeTracker.http({ host: TRACKER_HOST, port: 82 }, () => FakeTracker.peers([seederAddress]))
      ]))
      expect(result.completed, result.failure).toBe(true)
      expect(result.intact).toBe(true)
      expect(statusOf(result.progress, http(81))).toMatchObject({ status: "error", lastError: expect.stringMatching(/^HttpStatus/) })
      expect(statusOf(result.progress, http(82))).toMatchObject({ status: "ok", peers: 1 })
    })))

  it.effect("an HTTP tracker that never answers: Timeout in its status after 30 s, peers from the other tier meanwhile", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download([[http(81)], [http(82)]], Effect.all([
        FakeTracker.http({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.silent),
        FakeTracker.http({ host: TRACKER_HOST, port: 82 }, () => FakeTracker.peers([seederAddress]))
      ]))
      expect(result.completed, result.failure).toBe(true)
      yield* Simulation.run(Effect.sleep("40 seconds"))
      expect(statusOf(yield* result.leecher.torrent.progress, http(81))).toMatchObject({
        status: "error",
        lastError: expect.stringMatching(/^Timeout/)
      })
    })))

  it.effect("malformed bencode: Malformed, and the announce is retried with backoff until a good reply", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download([[http(81)]], FakeTracker.http({ host: TRACKER_HOST, port: 81 }, (_, n) =>
        n < 2 ? FakeTracker.malformed : FakeTracker.peers([seederAddress])))
      expect(result.completed, result.failure).toBe(true)
      expect(result.intact).toBe(true)
    })))

  it.effect("a failure reason: Failure with the tracker's words, and no peers from it", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download(
        [[http(81)]],
        FakeTracker.http({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.failure("torrent not registered")),
        { limit: "1 minute" }
      )
      expect(result.completed).toBe(false)
      expect(statusOf(result.progress, http(81))).toMatchObject({ status: "error", lastError: "Failure: torrent not registered" })
    })))

  it.effect("10,000 peers in one reply: the candidate list stays bounded and the real seeder is found", () =>
    Simulation.scoped(Effect.gen(function* () {
      const crowd = FakeTracker.manyPeers(10_000).map((peer, i) => (i === 999 ? seederAddress : peer))
      const result = yield* download([[http(81)]], FakeTracker.http({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.peers(crowd)))
      expect(result.completed, result.failure).toBe(true)
      expect(statusOf(result.progress, http(81))).toMatchObject({ status: "ok", peers: Announce.MAX_PEERS })
      expect(result.progress.candidates).toBeLessThanOrEqual(2000)
    })))

  it.effect("no peers at first, the seeder in the next reply (interval 60 s): complete after the re-announce", () =>
    Simulation.scoped(Effect.gen(function* () {
      let tracker: FakeTracker.FakeTracker | undefined
      const result = yield* download(
        [[http(81)]],
        Effect.map(
          FakeTracker.http({ host: TRACKER_HOST, port: 81 }, (_, n) => FakeTracker.peers(n === 0 ? [] : [seederAddress], 60)),
          (started) => void (tracker = started)
        )
      )
      expect(result.completed, result.failure).toBe(true)
      expect(result.intact).toBe(true)
      const announces = yield* tracker!.announces
      expect(announces.map((announce) => announce.event).slice(0, 2)).toEqual(["started", "none"])
    })))

  it.effect("a UDP reply with another transaction id: TransactionMismatch; a second tier's UDP tracker gives the peer", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download([[udp(81)], [udp(82)]], Effect.all([
        FakeTracker.udp({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.wrongTransaction),
        FakeTracker.udp({ host: TRACKER_HOST, port: 82 }, () => FakeTracker.udpPeers([seederAddress]))
      ]), { limit: "5 minutes" })
      expect(result.completed, result.failure).toBe(true)
      // The mismatch shows once the retransmissions are spent (15 + 30 + 60 s).
      yield* Simulation.run(Effect.sleep("2 minutes"), { limit: "3 minutes" })
      const progress = yield* result.leecher.torrent.progress
      expect(statusOf(progress, udp(81))).toMatchObject({ status: "error", lastError: expect.stringMatching(/^TransactionMismatch/) })
    })))

  it.effect("a UDP reply with the scrape action to an announce: Malformed", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download(
        [[udp(81)]],
        FakeTracker.udp({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.wrongAction),
        { limit: "1 minute" }
      )
      expect(result.completed).toBe(false)
      expect(statusOf(result.progress, udp(81))).toMatchObject({ status: "error", lastError: expect.stringMatching(/^Malformed/) })
    })))

  it.effect("a UDP error reply (action 3): Failure with its message", () =>
    Simulation.scoped(Effect.gen(function* () {
      const result = yield* download(
        [[udp(81)]],
        FakeTracker.udp({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.udpError("banned client")),
        { limit: "1 minute" }
      )
      expect(statusOf(result.progress, udp(81))).toMatchObject({ status: "error", lastError: "Failure: banned client" })
    })))

  it.effect("a UDP tracker behind a lossy link (30% loss, duplicates, reordering): retransmission gets the peers", () =>
    Simulation.scoped(Effect.gen(function* () {
      const lossy = { drop: 0.3, duplicate: 0.3, reorder: 0.5, latency: "50 millis", jitter: "100 millis" } as const
      const result = yield* download(
        [[udp(81)]],
        FakeTracker.udp({ host: TRACKER_HOST, port: 81 }, () => FakeTracker.udpPeers([seederAddress])),
        {
          limit: "10 minutes",
          links: (board) =>
            Effect.zipRight(board.setLink({ from: LEECHER, to: TRACKER_HOST }, lossy), board.setLink({ from: TRACKER_HOST, to: LEECHER }, lossy))
        }
      )
      expect(result.completed, result.failure).toBe(true)
    })))

  it.effect("a TrackerClient layer that fails twice (Unreachable), then answers: the announcer backs off and retries", () =>
    Simulation.scoped(Effect.gen(function* () {
      const calls: Array<number> = []
      const client = FakeTracker.client((url, _request, n) =>
        Effect.gen(function* () {
          calls.push(n)
          if (n < 2) return yield* new Announce.TrackerError({ url, reason: "Unreachable", message: "scripted outage" })
          return { interval: 1800, peers: [seederAddress] }
        }))
      const result = yield* download([["fake://tracker"]], Effect.void, { trackerClient: { trackerClient: client } })
      expect(result.completed, result.failure).toBe(true)
      expect(calls.slice(0, 3)).toEqual([0, 1, 2])
    })))
})
