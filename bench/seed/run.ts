/**
 * Benchmark: bitfiber as a seeder. aria2c downloads the payload once from a bitfiber seeder
 * (`bitfiber seed`, the built CLI) and once from a libtorrent seeder, in the same run, one seeder
 * alive at a time. Measures aria2c's MiB/s, and the seeder's CPU seconds while it served that
 * download (from /proc, so its start-up check of the data is not counted) and its peak RSS.
 *
 *   pnpm build
 *   pnpm bench seed [--size 1GiB] [--piece-length 256K] [--rounds 1]
 *
 * Writes bench/results/seed.json.
 */
import * as path from "node:path"
import { Effect } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"
import type { ProcessError } from "../../test/interop/support/Process.js"
import * as Args from "../support/Args.js"
import * as Clients from "../support/Clients.js"
import * as Fixture from "../support/Fixture.js"
import * as Race from "../support/Race.js"
import * as Report from "../support/Report.js"
import * as Usage from "../support/Usage.js"

type SeederKind = "bitfiber" | "libtorrent"

/** One download by aria2c from one seeder. */
interface Run {
  readonly seeder: SeederKind
  readonly round: number
  readonly seconds: number
  readonly mibPerSecond: number
  /** The seeder while it served this download. */
  readonly serving: Usage.PhaseUsage
  /** The seeder's whole life: its start-up check of the data, then serving. */
  readonly seederLife: Usage.Usage
  readonly leecher: Usage.Usage
}

const serveOnce = (fixture: Fixture.Fixture, kind: SeederKind, dataDir: string, round: number): Effect.Effect<Run, ProcessError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const listed = yield* Fixture.trackedSeeders(fixture)
      const options = { torrentPath: fixture.torrentPath, dataDir }
      const seeder = yield* (kind === "bitfiber" ? Clients.bitfiberSeeder(options) : Clients.libtorrentSeeder(options))
      yield* Fixture.awaitSeeders(fixture, listed + 1)
      const dir = path.join(fixture.root, `leech-from-${kind}-${round}`)
      const start = yield* seeder.timed.sample
      const leecher = yield* Clients.aria2Leecher({ torrentPath: fixture.torrentPath, dir })
      const seconds = yield* leecher.finished(Race.downloadTimeout(fixture.sizeBytes))
      const serving = Usage.between(start, yield* seeder.timed.sample)
      const leecherUsage = yield* leecher.timed.usage("2 minutes")
      const seederLife = yield* seeder.timed.terminate
      yield* Report.showLogs([seeder.timed.child, leecher.timed.child])
      yield* Fixture.discard(dir)
      const run: Run = { seeder: kind, round, seconds, mibPerSecond: Report.mib(fixture.sizeBytes) / seconds, serving, seederLife, leecher: leecherUsage }
      console.error(
        `  round ${round} from ${kind.padEnd(10)} ${Report.num(seconds, 1).padStart(6)} s ${Report.num(run.mibPerSecond, 1).padStart(7)} MiB/s` +
          `  seeder CPU ${Report.num(serving.cpuSeconds)} s serving, peak RSS ${Report.num(seederLife.peakRssMiB, 0)} MiB  (${Report.load()})`
      )
      return run
    })
  )

const main = Effect.gen(function*() {
  const sizeBytes = Args.size("size", "1GiB")
  const pieceLength = yield* Effect.orDie(Fixture.checkPieceLength(Args.size("piece-length", "256K")))
  const rounds = Args.count("rounds", 1)
  Usage.requireGnuTime()
  Clients.checkBuild()

  console.error(`seed: aria2c downloads ${Format.bytes(sizeBytes)} from a bitfiber seeder, then from a libtorrent seeder, ${rounds} round(s); ${Report.load()}`)
  const fixture = yield* Fixture.make({ name: "seed", sizeBytes, pieceLength })
  const dirs = {
    bitfiber: yield* Fixture.seederDir(fixture, "bitfiber"),
    libtorrent: yield* Fixture.seederDir(fixture, "libtorrent")
  }
  const runs: Array<Run> = []
  for (let round = 1; round <= rounds; round++) {
    const order: ReadonlyArray<SeederKind> = round % 2 === 1 ? ["bitfiber", "libtorrent"] : ["libtorrent", "bitfiber"]
    for (const kind of order) runs.push(yield* serveOnce(fixture, kind, dirs[kind], round))
  }

  const medians = (kind: SeederKind) => {
    const own = runs.filter((run) => run.seeder === kind)
    const of = (f: (run: Run) => number) => Report.median(own.map(f))
    return {
      seeder: kind,
      seconds: of((run) => run.seconds),
      mibPerSecond: of((run) => run.mibPerSecond),
      servingCpuSeconds: of((run) => run.serving.cpuSeconds),
      seederPeakRssMiB: of((run) => run.seederLife.peakRssMiB),
      seederLifeCpuSeconds: of((run) => run.seederLife.cpuSeconds),
      leecherCpuSeconds: of((run) => run.leecher.cpuSeconds)
    }
  }
  const bitfiber = medians("bitfiber")
  const libtorrent = medians("libtorrent")
  const ratio = {
    speed: bitfiber.mibPerSecond / libtorrent.mibPerSecond,
    servingCpu: bitfiber.servingCpuSeconds / libtorrent.servingCpuSeconds,
    rss: bitfiber.seederPeakRssMiB / libtorrent.seederPeakRssMiB
  }
  const row = (m: ReturnType<typeof medians>) => [
    m.seeder,
    Report.num(m.seconds, 1),
    Report.num(m.mibPerSecond, 1),
    Report.num(m.servingCpuSeconds),
    Report.num(m.seederLifeCpuSeconds),
    Report.num(m.seederPeakRssMiB, 0),
    Report.num(m.leecherCpuSeconds)
  ]
  console.log(`seed: aria2c downloads ${Format.bytes(sizeBytes)}, pieces of ${Format.bytes(pieceLength)}, median of ${rounds}; ${Report.load()}`)
  console.log(Report.table(
    ["seeder", "seconds", "MiB/s", "serving CPU s", "life CPU s", "peak RSS MiB", "aria2c CPU s"],
    [row(bitfiber), row(libtorrent), ["bitfiber / libtorrent", "", Report.num(ratio.speed), Report.num(ratio.servingCpu), "", Report.num(ratio.rss), ""]]
  ))
  const file = Report.write("seed", {
    sizeBytes,
    pieceLength,
    rounds,
    leecher: "aria2c",
    median: [bitfiber, libtorrent],
    ratio,
    runs,
    summary: [
      { metric: "seed: aria2c MiB/s from bitfiber / from libtorrent", value: ratio.speed, unit: "x", against: "libtorrent" },
      { metric: "seed: seeder CPU s while serving, bitfiber / libtorrent", value: ratio.servingCpu, unit: "x", against: "libtorrent" },
      { metric: "seed: seeder peak RSS, bitfiber / libtorrent", value: ratio.rss, unit: "x", against: "libtorrent" },
      { metric: "seed: aria2c MiB/s from bitfiber", value: bitfiber.mibPerSecond, unit: "MiB/s", limits: ["tcp"] }
    ]
  })
  console.log(`results: ${file}`)
})

Report.runMain(Effect.scoped(main))
