/**
 * Leechers downloading the same torrent from the same seeders, one at a time (so they never share
 * the seeders' upload), for a number of rounds with the order rotated each round; each client's
 * figures are the medians over its rounds.
 */
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, type Scope } from "effect"
import type { ProcessError } from "../../test/interop/support/Process.js"
import type { Kind, Leecher } from "./Clients.js"
import * as Fixture from "./Fixture.js"
import * as Report from "./Report.js"
import { load, median, mib, num, type Summary } from "./Report.js"
import type { Usage } from "./Usage.js"

/** A client in the race: how to start it downloading into a dir. */
export interface Contender {
  readonly kind: Kind
  readonly start: (dir: string) => Effect.Effect<Leecher, ProcessError, Scope.Scope>
  /** Check the downloaded bytes against the payload (the engine under test: a fast wrong download counts for nothing). */
  readonly verify: boolean
}

/** One download by one client. */
export interface Run {
  readonly client: Kind
  readonly round: number
  /** From start to its "complete" report. */
  readonly seconds: number
  readonly mibPerSecond: number
  /** Its whole life, exit included. */
  readonly usage: Usage
  readonly loadAverage: number
}

/** A client's medians over its runs. */
export interface Figures {
  readonly client: Kind
  readonly seconds: number
  readonly mibPerSecond: number
  readonly wallSeconds: number
  readonly cpuSeconds: number
  readonly userSeconds: number
  readonly systemSeconds: number
  readonly peakRssMiB: number
}

/** bitfiber against the fastest reference client: >1 means bitfiber has more of it. */
export interface Ratios {
  readonly against: Kind
  readonly speed: number
  readonly cpu: number
  readonly rss: number
}

/** How long one download may take: at least 2 minutes, or 1 MiB/s. */
export const downloadTimeout = (sizeBytes: number): Duration.Duration =>
  Duration.seconds(Math.max(120, mib(sizeBytes)))

const leech = (fixture: Fixture.Fixture, contender: Contender, round: number): Effect.Effect<Run, ProcessError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const dir = path.join(fixture.root, `leech-${contender.kind}-${round}`)
      const leecher = yield* contender.start(dir)
      const seconds = yield* leecher.finished(downloadTimeout(fixture.sizeBytes))
      const usage = yield* leecher.timed.usage("2 minutes")
      yield* Report.showLogs([leecher.timed.child])
      if (contender.verify && !(yield* Fixture.holdsPayload(fixture, dir))) {
        return yield* leecher.timed.child.failure("Unexpected", `the download in ${dir} differs from the payload`)
      }
      yield* Fixture.discard(dir)
      const run: Run = {
        client: contender.kind,
        round,
        seconds,
        mibPerSecond: mib(fixture.sizeBytes) / seconds,
        usage,
        loadAverage: os.loadavg()[0]!
      }
      console.error(
        `  round ${round} ${contender.kind.padEnd(10)} ${num(seconds, 1).padStart(6)} s ${num(run.mibPerSecond, 1).padStart(7)} MiB/s` +
          `  CPU ${num(usage.cpuSeconds)} s  peak RSS ${num(usage.peakRssMiB, 0)} MiB  (${load()})`
      )
      return run
    })
  )

/** Every contender downloads once per round, the order rotated each round. */
export const race = (
  fixture: Fixture.Fixture,
  contenders: ReadonlyArray<Contender>,
  rounds: number
): Effect.Effect<ReadonlyArray<Run>, ProcessError> =>
  Effect.gen(function*() {
    const runs: Array<Run> = []
    for (let round = 1; round <= rounds; round++) {
      const shift = (round - 1) % contenders.length
      for (const contender of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
        runs.push(yield* leech(fixture, contender, round))
      }
    }
    return runs
  })

/** Each client's medians, in the order of first appearance. */
export const figures = (runs: ReadonlyArray<Run>): ReadonlyArray<Figures> =>
  [...new Set(runs.map((run) => run.client))].map((client) => {
    const own = runs.filter((run) => run.client === client)
    const of = (f: (run: Run) => number) => median(own.map(f))
    return {
      client,
      seconds: of((run) => run.seconds),
      mibPerSecond: of((run) => run.mibPerSecond),
      wallSeconds: of((run) => run.usage.wallSeconds),
      cpuSeconds: of((run) => run.usage.cpuSeconds),
      userSeconds: of((run) => run.usage.userSeconds),
      systemSeconds: of((run) => run.usage.systemSeconds),
      peakRssMiB: of((run) => run.usage.peakRssMiB)
    }
  })

/** bitfiber's figures over the fastest other client's. */
export const ratios = (all: ReadonlyArray<Figures>): Ratios => {
  const bitfiber = all.find((f) => f.client === "bitfiber")!
  const fastest = all.filter((f) => f.client !== "bitfiber").reduce((a, b) => (b.mibPerSecond > a.mibPerSecond ? b : a))
  return {
    against: fastest.client,
    speed: bitfiber.mibPerSecond / fastest.mibPerSecond,
    cpu: bitfiber.cpuSeconds / fastest.cpuSeconds,
    rss: bitfiber.peakRssMiB / fastest.peakRssMiB
  }
}

/** The table of `figures`, one row per client, then the ratio row. */
export const rows = (all: ReadonlyArray<Figures>, ratio: Ratios): Array<Array<string>> => [
  ...all.map((f) => [
    f.client,
    num(f.seconds, 1),
    num(f.mibPerSecond, 1),
    num(f.userSeconds),
    num(f.systemSeconds),
    num(f.cpuSeconds),
    num(f.peakRssMiB, 0)
  ]),
  [`bitfiber / ${ratio.against}`, "", num(ratio.speed), "", "", num(ratio.cpu), num(ratio.rss)]
]

/** The header of `rows`. */
export const header = ["client", "seconds", "MiB/s", "user s", "sys s", "CPU s", "peak RSS MiB"]

/** The headline figures of a race for the runner's summary: three ratios and bitfiber's rate. */
export const summary = (name: string, versus: string, all: ReadonlyArray<Figures>, ratio: Ratios): ReadonlyArray<Summary> => {
  const bitfiber = all.find((f) => f.client === "bitfiber")!
  return [
    { metric: `${name} MiB/s, bitfiber / ${versus}`, value: ratio.speed, unit: "x", against: ratio.against },
    { metric: `${name} CPU s, bitfiber / ${versus}`, value: ratio.cpu, unit: "x", against: ratio.against },
    { metric: `${name} peak RSS, bitfiber / ${versus}`, value: ratio.rss, unit: "x", against: ratio.against },
    { metric: `${name} MiB/s, bitfiber`, value: bitfiber.mibPerSecond, unit: "MiB/s", limits: ["tcp", "sha1", "write"] }
  ]
}
