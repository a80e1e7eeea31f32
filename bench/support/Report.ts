/**
 * Reporting: aligned tables on stdout, and bench/results/<name>.json with the machine, the load
 * and a `summary` the runner (bench/run.ts) prints across benchmarks.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cause, Effect, Exit } from "effect"

/** One headline figure of a benchmark. */
export interface Summary {
  /** What it is, e.g. "download MiB/s, bitfiber / fastest reference". */
  readonly metric: string
  readonly value: number
  /** "x" for a ratio, else the unit of `value` ("MiB", "ms", "MiB/s"). */
  readonly unit: string
  /** For a ratio: the client it is measured against. */
  readonly against?: string
  /** For a rate: the machine limits (bench/limits) it cannot exceed; the runner shows it as a fraction of the lowest. */
  readonly limits?: ReadonlyArray<Limit>
}

/** The machine limits bench/limits measures: SHA-1 hashing, loopback TCP and sequential file writes, in MiB/s. */
export type Limit = "sha1" | "tcp" | "write"

/** Where results go (gitignored). */
export const resultsDir = path.resolve(import.meta.dirname, "../results")

/** Bytes in MiB. */
export const mib = (bytes: number): number => bytes / (1024 * 1024)

/** The machine and how busy it is right now: figures from a loaded machine are read with that in mind. */
export const machine = () => ({
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
  loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100),
  node: process.version,
  kernel: os.release()
})

/** "load 3.2 / 2 CPUs": the 1-minute load average next to the CPU count. */
export const load = (): string => `load ${os.loadavg()[0]!.toFixed(1)} / ${os.cpus().length} CPUs`

/** Formats `value` with `digits` decimals, or "-" when it is missing or not finite. */
export const num = (value: number | undefined, digits = 2): string =>
  value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits)

/** Text table: the first column left-aligned, the others right-aligned. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** Writes bench/results/`name`.json (with `benchmark`, `date` and `machine` added); returns its path. */
export const write = (name: string, results: Record<string, unknown> & { readonly summary: ReadonlyArray<Summary> }): string => {
  fs.mkdirSync(resultsDir, { recursive: true })
  const file = path.join(resultsDir, `${name}.json`)
  fs.writeFileSync(file, `${JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machine(), ...results }, null, 2)}\n`)
  return file
}

/** The median of `values` (NaN when empty). */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length === 0) return Number.NaN
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Runs a benchmark's main effect; a failure prints its cause and sets exit status 1. */
export const runMain = <A, E>(main: Effect.Effect<A, E>): void => {
  Effect.runPromiseExit(main).then((exit) => {
    if (Exit.isFailure(exit)) {
      console.error(Cause.pretty(exit.cause))
      process.exitCode = 1
    }
  })
}

/** With BITFIBER_BENCH_LOGS=1, prints the last lines each program printed (to see why a run was slow). */
export const showLogs = (children: ReadonlyArray<{ readonly name: string; readonly log: (lines?: number) => string }>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (process.env["BITFIBER_BENCH_LOGS"] === undefined) return
    for (const child of children) console.error(`--- last lines of ${child.name} ---\n${child.log(Number(process.env["BITFIBER_BENCH_LOGS"]) || 40)}`)
  })
