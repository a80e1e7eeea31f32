/**
 * The reliability suite's harness: one leecher (a real bitfiber Session) on a simulated network
 * with honest bitfiber seeders, scripted (possibly misbehaving) seeders and a fault plan, run in
 * virtual time, and what came of it: completion, the bytes on its disk, why peers were dropped.
 */
import { Metainfo, type PeerError, Resume, type SessionConfig, Storage, type Torrent } from "@bitfiber/core"
import { FaultPlan, MemoryNetwork, ScriptedPeer, Seed, Simulation, Swarm, TestTorrent } from "@bitfiber/core/testing"
import { beforeEach, expect } from "@effect/vitest"
import { type Duration, Effect, Either, type Exit, Option, type Scope } from "effect"

/** The downloader's host. */
export const LEECHER = "10.0.0.100"
/** Host of the `i`th scripted seeder. */
export const scriptedHost = (i: number) => `10.0.1.${i + 1}`
/** Host of the `i`th honest bitfiber seeder. */
export const honestHost = (i: number) => `10.0.2.${i + 1}`

/** A small torrent: 24 pieces of 16 KiB over two files, the last piece short. */
export const small = TestTorrent.make({
  files: [{ path: "small/a.bin", length: 200_000 }, { path: "small/b.bin", length: 180_000 }],
  pieceLength: 16 * 1024,
  name: "small"
})

/** A torrent big enough that one peer's initial request pipeline does not cover it: 1 MiB in 32 KiB pieces. */
export const medium = TestTorrent.make({ files: [{ path: "medium.bin", length: 1024 * 1024 }], pieceLength: 32 * 1024 })

/** What to simulate. */
export interface Scenario {
  readonly torrent?: TestTorrent.TestTorrent
  /** Scripted seeders, one per behaviour (`{}` is an honest one), on `scriptedHost(i)`. */
  readonly scripted?: ReadonlyArray<ScriptedPeer.Behaviour>
  /** Honest bitfiber seeders, on `honestHost(i)`. */
  readonly honest?: number
  /** Faults to run on the network from the start. */
  readonly plan?: FaultPlan.FaultPlan
  /** The leecher's configuration. */
  readonly config?: SessionConfig.SessionConfigInput
  /** Virtual time the download may take (default 10 minutes). */
  readonly limit?: Duration.DurationInput
  /** Virtual time per step of the simulation (default 1 second). */
  readonly step?: Duration.DurationInput
  /**
   * Seed of every random choice: the network's faults and, while the scenario runs, `Math.random`
   * (the engine's tie-breaks). Default: `BITFIBER_SEED`, else 1, so a scenario replays exactly.
   */
  readonly seed?: number
  /** The switchboard, when the test wants to act on it itself. */
  readonly switchboard?: MemoryNetwork.Switchboard
}

/** What came of a scenario. */
export interface Outcome {
  /** The seed the run used (print it with a failure). */
  readonly seed: number
  /** Whether `completed` succeeded within the limit. */
  readonly completed: boolean
  /** Whether the leecher's disk holds exactly the torrent's bytes. */
  readonly intact: boolean
  /** Pieces on the leecher's disk that match their hash (a resume check). */
  readonly piecesOnDisk: number
  readonly progress: Torrent.Progress
  readonly peerErrors: ReadonlyArray<PeerError.PeerError>
  /** Virtual milliseconds the run took. */
  readonly elapsed: number
  /** How the scripted seeders' sessions ended. */
  readonly scriptedSessions: ReadonlyArray<ReadonlyArray<Exit.Exit<void, ScriptedPeer.ScriptError>>>
}

/** The errors of the peer at `host` (any port). */
export const errorsOf = (outcome: Outcome, host: string) =>
  outcome.peerErrors.filter((error) => error.address.startsWith(`${host}:`))

/** Runs one scenario to its end, in the current scope, under the TestClock. */
export const run = (scenario: Scenario): Effect.Effect<Outcome, never, Scope.Scope> =>
  Effect.gen(function* () {
    const test = scenario.torrent ?? small
    const seed = scenario.seed ?? suiteSeed()
    yield* seedMathRandom(seed)
    const switchboard = scenario.switchboard ?? (yield* MemoryNetwork.make({ seed }))
    const scripted = yield* Effect.forEach(scenario.scripted ?? [], (behaviour, i) =>
      ScriptedPeer.listen(
        { host: scriptedHost(i), port: Swarm.PORT },
        ScriptedPeer.seed({ info: test.metainfo.info, infoHash: test.metainfo.infoHash, content: test.content, behaviour })
      ).pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: scriptedHost(i) })), Effect.orDie))
    const honest = yield* Effect.forEach(Array.from({ length: scenario.honest ?? 0 }, (_, i) => i), (i) =>
      Effect.flatMap(Swarm.host(switchboard, honestHost(i)), (host) => Effect.orDie(Swarm.seeder(host, test))))
    const host = yield* Swarm.host(switchboard, LEECHER)
    const peers = [...scripted.map((peer) => peer.address), ...honest.map((peer) => peer.address)]
    const leecher = yield* Effect.orDie(Swarm.leecher(host, test, peers, { listen: false, ...scenario.config }))
    if (scenario.plan !== undefined) yield* FaultPlan.run(switchboard, scenario.plan)

    const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const result = yield* Effect.either(Simulation.run(leecher.torrent.completed, {
      limit: scenario.limit ?? "10 minutes",
      step: scenario.step ?? "1 second"
    }))
    const end = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const content = yield* Swarm.readContent(host, test.metainfo)
    const piecesOnDisk = yield* piecesVerifiedOnDisk(host, test)
    return {
      seed,
      completed: Either.isRight(result),
      intact: Option.exists(content, (bytes) => Buffer.compare(bytes, test.content) === 0),
      piecesOnDisk,
      progress: yield* leecher.torrent.progress,
      peerErrors: yield* leecher.torrent.peerErrors,
      elapsed: end - start,
      scriptedSessions: yield* Effect.forEach(scripted, (peer) => peer.sessions)
    }
  })

/** Pieces of `test` on `host`'s disk that match their hash. */
export const piecesVerifiedOnDisk = (host: Swarm.Host, test: TestTorrent.TestTorrent) =>
  Effect.map(verifiedOnDisk(host, test), (have) => have.count)

/** Bytes of the pieces of `test` on `host`'s disk that match their hash. */
export const bytesVerifiedOnDisk = (host: Swarm.Host, test: TestTorrent.TestTorrent) =>
  Effect.map(verifiedOnDisk(host, test), (have) =>
    [...have.indices()].reduce((sum, index) => sum + Metainfo.pieceSize(test.metainfo.info, index), 0))

const verifiedOnDisk = (host: Swarm.Host, test: TestTorrent.TestTorrent) =>
  Effect.gen(function* () {
    const storage = yield* (yield* Storage.Storage).open(test.metainfo.info, Swarm.DIRECTORY)
    return yield* Resume.check(storage)
  }).pipe(Effect.scoped, Effect.provide(host.services), Effect.orDie)

/**
 * Makes `Math.random` (the engine's tie-breaks) draw from `seed` until the scope closes, so
 * a run with the same seed makes the same choices.
 */
export const seedMathRandom = (seed: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(
    Effect.acquireRelease(
      Effect.sync(() => {
        const original = Math.random
        const random = new Seed.Prng(seed).fork()
        Math.random = () => random.next()
        return original
      }),
      (original) => Effect.sync(() => void (Math.random = original))
    )
  )

/** The failure message of a scenario: what it did and how to replay it. */
export const describeOutcome = (outcome: Outcome): string =>
  `${outcome.completed ? "completed" : "not complete"} after ${outcome.elapsed} ms virtual, ` +
  `${outcome.progress.verifiedPieces}/${outcome.progress.pieceCount} pieces, ` +
  `peer errors: ${outcome.peerErrors.map((error) => `${error.address} ${error._tag}${"reason" in error ? `(${error.reason})` : ""}`).join(", ")}; ` +
  Seed.replayHint(outcome.seed)

/** Asserts the run completed with exactly the torrent's bytes. */
export const expectComplete = (outcome: Outcome, test: TestTorrent.TestTorrent = small) => {
  expect(outcome.completed, describeOutcome(outcome)).toBe(true)
  expect(outcome.intact, describeOutcome(outcome)).toBe(true)
  expect(outcome.piecesOnDisk, describeOutcome(outcome)).toBe(test.metainfo.info.pieceCount)
}

/** The seed scenarios run with unless they name one: `BITFIBER_SEED`, else 1. */
export const suiteSeed = () => Seed.fromEnv(process.env, 1)

/** Makes every failing test of the calling file print the seed to replay it with. */
export const printSeedOnFailure = () =>
  beforeEach(({ onTestFailed }) => {
    const seed = suiteSeed()
    // The one place the suite prints: how to replay the failing run.
    onTestFailed(() => console.error(`seed ${seed}: ${Seed.replayHint(seed)}`))
  })
