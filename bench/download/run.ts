/**
 * Benchmark: one leecher downloading from one local libtorrent seeder, for each of bitfiber (the
 * built CLI), aria2c and libtorrent in turn, in the same run against the same seeder. Measures
 * each leecher's MiB/s (size / time to its "complete" report), CPU seconds (user + sys) and peak
 * RSS of its own process; ratios are bitfiber over the fastest reference client.
 *
 *   pnpm build
 *   pnpm bench download [--size 1GiB] [--piece-length 256K] [--rounds 1]
 *
 * Writes bench/results/download.json.
 */
import { Effect } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Args from "../support/Args.js"
import * as Clients from "../support/Clients.js"
import * as Fixture from "../support/Fixture.js"
import * as Race from "../support/Race.js"
import * as Report from "../support/Report.js"
import { requireGnuTime } from "../support/Usage.js"

const main = Effect.gen(function*() {
  const sizeBytes = Args.size("size", "1GiB")
  const pieceLength = yield* Effect.orDie(Fixture.checkPieceLength(Args.size("piece-length", "256K")))
  const rounds = Args.count("rounds", 1)
  requireGnuTime()
  Clients.checkBuild()

  console.error(`download: ${Format.bytes(sizeBytes)} in pieces of ${Format.bytes(pieceLength)} from one libtorrent seeder, ${rounds} round(s); ${Report.load()}`)
  const fixture = yield* Fixture.make({ name: "download", sizeBytes, pieceLength })
  const seeder = yield* Clients.libtorrentSeeder({ torrentPath: fixture.torrentPath, dataDir: fixture.seedDir })
  const peers = [{ host: "127.0.0.1", port: seeder.port }]
  const loadBefore = Report.machine().loadAverage
  const runs = yield* Race.race(fixture, [
    { kind: "bitfiber", start: (dir) => Clients.bitfiberLeecher({ torrentPath: fixture.torrentPath, dir, peers }), verify: true },
    { kind: "aria2c", start: (dir) => Clients.aria2Leecher({ torrentPath: fixture.torrentPath, dir }), verify: false },
    { kind: "libtorrent", start: (dir) => Clients.libtorrentLeecher({ torrentPath: fixture.torrentPath, dir, peers }), verify: false }
  ], rounds)

  const figures = Race.figures(runs)
  const ratio = Race.ratios(figures)
  console.log(`download ${Format.bytes(sizeBytes)} from one libtorrent seeder, pieces of ${Format.bytes(pieceLength)}, median of ${rounds}; ${Report.load()}`)
  console.log(Report.table(Race.header, Race.rows(figures, ratio)))
  const file = Report.write("download", {
    sizeBytes,
    pieceLength,
    rounds,
    seeder: "libtorrent",
    loadAverageBefore: loadBefore,
    median: figures,
    ratio,
    runs,
    summary: Race.summary("download", "fastest", figures, ratio)
  })
  console.log(`results: ${file}`)
})

Report.runMain(Effect.scoped(main))
