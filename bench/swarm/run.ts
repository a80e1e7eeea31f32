/**
 * Benchmark: one leecher downloading from 8 local seeders at once — 3 bitfiber (`bitfiber seed`),
 * 3 libtorrent and 2 aria2c, all alive for the whole run — for bitfiber and then libtorrent as
 * the leecher. Both leechers dial every seeder directly and also see them through the tracker.
 * Measures each leecher's MiB/s, CPU seconds (user + sys) and peak RSS of its own process.
 *
 *   pnpm build
 *   pnpm bench swarm [--size 1GiB] [--piece-length 256K] [--rounds 1]
 *
 * Writes bench/results/swarm.json.
 */
import { Effect } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Args from "../support/Args.js"
import * as Clients from "../support/Clients.js"
import * as Fixture from "../support/Fixture.js"
import * as Race from "../support/Race.js"
import * as Report from "../support/Report.js"
import { requireGnuTime } from "../support/Usage.js"

/** The seeders, by kind: 8 in all. */
const seederMix: ReadonlyArray<Clients.Kind> = [
  "bitfiber", "bitfiber", "bitfiber",
  "libtorrent", "libtorrent", "libtorrent",
  "aria2c", "aria2c"
]

const startSeeder = { bitfiber: Clients.bitfiberSeeder, libtorrent: Clients.libtorrentSeeder, aria2c: Clients.aria2Seeder }

const main = Effect.gen(function*() {
  const sizeBytes = Args.size("size", "1GiB")
  const pieceLength = yield* Effect.orDie(Fixture.checkPieceLength(Args.size("piece-length", "256K")))
  const rounds = Args.count("rounds", 1)
  requireGnuTime()
  Clients.checkBuild()

  console.error(`swarm: ${Format.bytes(sizeBytes)} from ${seederMix.length} seeders (${seederMix.join(", ")}), ${rounds} round(s); ${Report.load()}`)
  const fixture = yield* Fixture.make({ name: "swarm", sizeBytes, pieceLength })
  // Two at a time: each checks the whole payload before it is ready, and the machine has few cores.
  const seeders = yield* Effect.forEach(seederMix, (kind, i) =>
    Effect.flatMap(Fixture.seederDir(fixture, `${kind}-${i}`), (dataDir) =>
      startSeeder[kind]({ torrentPath: fixture.torrentPath, dataDir })), { concurrency: 2 })
  yield* Fixture.awaitSeeders(fixture, seeders.length)
  console.error(`  ${seeders.length} seeders ready on ports ${seeders.map((s) => s.port).join(", ")}; ${Report.load()}`)
  const peers = seeders.map((seeder) => ({ host: "127.0.0.1", port: seeder.port }))

  const runs = yield* Race.race(fixture, [
    { kind: "bitfiber", start: (dir) => Clients.bitfiberLeecher({ torrentPath: fixture.torrentPath, dir, peers }), verify: true },
    { kind: "libtorrent", start: (dir) => Clients.libtorrentLeecher({ torrentPath: fixture.torrentPath, dir, peers }), verify: false }
  ], rounds)

  const figures = Race.figures(runs)
  const ratio = Race.ratios(figures)
  console.log(`swarm: ${Format.bytes(sizeBytes)} from ${seeders.length} seeders, pieces of ${Format.bytes(pieceLength)}, median of ${rounds}; ${Report.load()}`)
  console.log(Report.table(Race.header, Race.rows(figures, ratio)))
  const file = Report.write("swarm", {
    sizeBytes,
    pieceLength,
    rounds,
    seeders: seederMix,
    median: figures,
    ratio,
    runs,
    summary: Race.summary("swarm", "libtorrent", figures, ratio)
  })
  console.log(`results: ${file}`)
})

Report.runMain(Effect.scoped(main))
