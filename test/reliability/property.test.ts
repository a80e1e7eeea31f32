/**
 * The reliability property: over random swarms (honest bitfiber seeders, scripted seeders from
 * the whole misbehaviour catalogue) and random fault schedules on the network, a download always
 * ends complete with identical bytes when an honest source exists, and otherwise never claims
 * or writes a wrong piece. Runs `BITFIBER_PROPERTY_RUNS` cases (default 100) from `BITFIBER_SEED`.
 */
import { FaultPlan, type ScriptedPeer, Seed, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import { describeOutcome, honestHost, LEECHER, run, scriptedHost } from "./support/Scenario.js"

const tiny = TestTorrent.make({ files: [{ path: "tiny.bin", length: 8 * 16384 - 500 }], pieceLength: 16384, seed: 5 })
const pieceCount = tiny.metainfo.info.pieceCount

/** A scripted seeder's behaviour, and whether it ends up serving every piece correctly. */
interface Peer {
  readonly behaviour: ScriptedPeer.Behaviour
  readonly honest: boolean
}

const peer: fc.Arbitrary<Peer> = fc.oneof(
  fc.constant<Peer>({ behaviour: {}, honest: true }),
  fc.integer({ min: 1, max: 6 }).map((n): Peer => ({ behaviour: { disconnectAfterBlocks: n }, honest: true })),
  fc.integer({ min: 1, max: 64 }).map((n): Peer => ({ behaviour: { unrequestedBlocks: n, seed: n }, honest: true })),
  fc.integer({ min: 100, max: 3000 }).map((ms): Peer => ({ behaviour: { serveDelay: `${ms} millis` }, honest: true })),
  fc.integer({ min: 0, max: pieceCount - 1 }).map((i): Peer => ({ behaviour: { corruptPiece: i }, honest: false })),
  fc.constantFrom<Peer>(
    { behaviour: { corruptAll: true }, honest: false },
    { behaviour: { wrongInfoHash: true }, honest: false },
    { behaviour: { lengthPrefix: 0xffff_ffff }, honest: false },
    { behaviour: { badBitfield: "spareBits" }, honest: false },
    { behaviour: { badBitfield: "wrongLength" }, honest: false },
    { behaviour: { haveOutOfRange: true }, honest: false },
    { behaviour: { chokeForever: true }, honest: false },
    { behaviour: { slowLoris: "1 second" }, honest: false }
  ),
  fc.integer({ min: 1, max: 2048 }).map((n): Peer => ({ behaviour: { garbage: n, seed: n }, honest: false }))
)

const swarm = fc.record({
  seed: fc.integer({ min: 0, max: 0xffff_ffff }),
  honest: fc.integer({ min: 0, max: 2 }),
  scripted: fc.array(peer, { minLength: 0, maxLength: 4 }),
  faults: fc.integer({ min: 0, max: 8 })
}).filter((s) => s.honest + s.scripted.length > 0)

/** Every way a peer connection may end. */
const PEER_ERRORS = ["ConnectFailed", "HandshakeFailed", "ProtocolViolation", "IdleTimeout", "ConnectionLost", "Dropped"]

const seed = Seed.fromEnv()
const runs = Number(process.env.BITFIBER_PROPERTY_RUNS ?? 100)

describe("random faults over random swarms", () => {
  it.scoped.prop(
    "complete with identical bytes whenever an honest source exists; never a wrong piece otherwise",
    [swarm],
    ([{ faults, honest, scripted, seed: runSeed }]) =>
      Effect.gen(function* () {
        const hosts = [...scripted.map((_, i) => scriptedHost(i)), ...Array.from({ length: honest }, (_, i) => honestHost(i))]
        const prng = new Seed.Prng(runSeed)
        // Throttled links make the download last seconds, and the faults land while it runs.
        const plan = [
          FaultPlan.link({ match: { to: LEECHER }, link: { bandwidth: prng.int(20_000, 100_000) } }),
          ...FaultPlan.random(prng, { hosts, target: LEECHER, count: faults, horizon: "8 seconds", maxDuration: "20 seconds" })
        ]
        const honestSource = honest > 0 || scripted.some((p) => p.honest)
        const outcome = yield* run({
          torrent: tiny,
          seed: runSeed,
          honest,
          scripted: scripted.map((p) => p.behaviour),
          plan,
          // Faults end within 28 s; without an honest source, a minute shows that nothing wrong gets in.
          limit: honestSource ? "10 minutes" : "1 minute",
          step: "5 seconds"
        })
        const context = `${describeOutcome(outcome)}\nswarm: ${honest} bitfiber seeders, scripted ${JSON.stringify(scripted)}\nplan:\n${FaultPlan.describe(plan)}\nproperty ${Seed.replayHint(seed)}`
        // Whatever happened, every piece it claims is on disk and correct, and peers ended for typed reasons.
        expect(outcome.piecesOnDisk, context).toBeGreaterThanOrEqual(outcome.progress.verifiedPieces)
        for (const error of outcome.peerErrors) expect(PEER_ERRORS, context).toContain(error._tag)
        if (honestSource) {
          expect(outcome.completed, context).toBe(true)
          expect(outcome.intact, context).toBe(true)
        }
      }),
    { fastCheck: { seed, numRuns: runs, endOnFailure: true }, timeout: Math.max(120_000, runs * 2_000) }
  )
})
