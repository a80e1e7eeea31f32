/**
 * Runs the benchmarks, each in its own process, one after another, then prints one summary of
 * their ratios and of each rate as a fraction of the machine's limits measured in the same run.
 *
 *   pnpm build                                # the built CLI is what gets measured
 *   pnpm bench [names...] [--size 1GiB] [--rounds N] [any flag a benchmark takes]
 *   pnpm bench download seed --size 64MiB     # a quick run
 *
 * Names: limits, create, download, seed, swarm, scale (default: all, in that order). Flags are
 * passed to every benchmark. Each writes bench/results/<name>.json; see bench/README.md.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Args from "./support/Args.js"
import * as Report from "./support/Report.js"
import type { Limit, Summary } from "./support/Report.js"

const root = path.resolve(import.meta.dirname, "..")

/** Every benchmark, in the order they run: the limits first, so the others can be read against them. */
const benchmarks = ["limits", "create", "download", "seed", "swarm", "scale"] as const
type Name = typeof benchmarks[number]

const resultsFile = (name: Name) => path.join(Report.resultsDir, `${name}.json`)

interface Results {
  readonly date: string
  readonly summary?: ReadonlyArray<Summary>
  readonly limits?: Readonly<Record<Limit, number>>
  // bench/create's own format.
  readonly sizeBytes?: number
  readonly ratio?: Readonly<Record<string, number>>
  readonly median?: { readonly bitfiber?: { readonly wallSeconds: number } }
}

const read = (name: Name): Results | undefined =>
  fs.existsSync(resultsFile(name)) ? (JSON.parse(fs.readFileSync(resultsFile(name), "utf8")) as Results) : undefined

/** bench/create predates `summary`: its ratios and throughput, in the same shape. */
const createSummary = (results: Results): ReadonlyArray<Summary> => [
  ...Object.entries(results.ratio ?? {}).map(([key, value]) => ({ metric: `create ${key}, bitfiber / mktorrent`, value, unit: "x", against: "mktorrent" })),
  ...(results.sizeBytes !== undefined && results.median?.bitfiber !== undefined
    ? [{ metric: "create MiB/s, bitfiber", value: Report.mib(results.sizeBytes) / results.median.bitfiber.wallSeconds, unit: "MiB/s", limits: ["sha1"] as const }]
    : [])
]

const main = () => {
  const names = Args.positional()
  const unknown = names.filter((name) => !(benchmarks as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; choose from ${benchmarks.join(", ")}`)
    return process.exit(2)
  }
  const selected = benchmarks.filter((name) => names.length === 0 || names.includes(name))
  const flags = process.argv.slice(2).filter((arg) => !names.includes(arg))
  const loadAtStart = Report.load()
  console.error(`benchmarks: ${selected.join(", ")} ${flags.join(" ")}; ${loadAtStart}`)

  const outcomes = selected.map((name) => {
    // A failed benchmark must not leave an older result to be mistaken for this run's.
    fs.rmSync(resultsFile(name), { force: true })
    console.error(`\n=== ${name} (${Report.load()}) ===`)
    const started = Date.now()
    const child = spawnSync(process.execPath, [
      "--import", "tsx/esm", "--conditions=@bitfiber/source", path.join(root, "bench", name, "run.ts"), ...flags
    ], { cwd: root, stdio: "inherit" })
    const ok = child.status === 0 && fs.existsSync(resultsFile(name))
    if (!ok) console.error(`${name} FAILED (exit ${child.status ?? child.signal})`)
    return { name, ok, seconds: (Date.now() - started) / 1000 }
  })

  const limitsResults = read("limits")
  const limits = limitsResults?.limits
  const limitsNote = limitsResults === undefined
    ? "no limits measured (run `pnpm bench limits`)"
    : selected.includes("limits") ? "limits from this run" : `limits from an earlier run, ${limitsResults.date}`
  const rows: Array<Array<string>> = []
  for (const outcome of outcomes) {
    const results = outcome.ok ? read(outcome.name) : undefined
    if (results === undefined) {
      rows.push([outcome.name, "FAILED", "", ""])
      continue
    }
    for (const s of outcome.name === "create" ? createSummary(results) : results.summary ?? []) {
      const bound = s.limits === undefined || limits === undefined
        ? undefined
        : s.limits.map((key) => ({ key, value: limits[key] })).reduce((a, b) => (b.value < a.value ? b : a))
      rows.push([
        s.metric,
        Report.num(s.value, s.unit === "x" ? 2 : 1),
        s.unit === "x" ? `vs ${s.against ?? "?"}` : s.unit,
        bound === undefined ? "" : `${Report.num(s.value / bound.value)} of ${bound.key} (${Report.num(bound.value, 0)} MiB/s)`
      ])
    }
  }
  console.log(`\nsummary (${limitsNote}); load at start: ${loadAtStart}, at end: ${Report.load()}`)
  console.log(Report.table(["metric", "value", "unit", "fraction of limit"], rows))
  console.log("ratios are bitfiber / reference: above 1 means more of it (faster for MiB/s; more CPU or memory otherwise)")
  if (outcomes.some((outcome) => !outcome.ok)) process.exitCode = 1
}

main()
