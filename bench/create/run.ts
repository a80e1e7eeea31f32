/**
 * Benchmark: `bitfiber create` against `mktorrent` on the same payload, same piece length, in
 * the same run. Measures wall time, CPU time (user + sys) and peak RSS of each tool's process.
 *
 *   pnpm build   # the built CLI is measured: tsx's start-up would not be bitfiber's cost
 *   pnpm exec tsx --conditions=@bitfiber/source bench/create/run.ts [--size 1GiB] [--piece-length 256K] [--rounds 3]
 *
 * Each tool runs `--rounds` times, alternating which goes first; the median of each figure is
 * reported. The payload is written just before, so both read it from the page cache: this
 * compares hashing and I/O overheads, not the disk. Writes bench/results/create.json.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { createCipheriv, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Either } from "effect"
import { InfoHash, Metainfo } from "@bitfiber/core"
import * as Format from "../../packages/cli/src/ui/Format.js"
import { bitfiberCli as cli, checkBuild, root } from "../support/Clients.js"

/** What one run of one tool cost. */
interface Measure {
  readonly wallSeconds: number
  readonly userSeconds: number
  readonly systemSeconds: number
  readonly cpuSeconds: number
  readonly peakRssMiB: number
}

const flag = (name: string, fallback: string): string => {
  const index = process.argv.indexOf(`--${name}`)
  return index >= 0 && process.argv[index + 1] !== undefined ? process.argv[index + 1]! : fallback
}

const size = (name: string, fallback: string): number =>
  Either.getOrElse(Format.parseSize(flag(name, fallback)), (reason) => {
    console.error(`--${name}: ${reason}`)
    return process.exit(2)
  })

/** Writes `bytes` of AES-CTR keystream: incompressible, and far faster than a CSPRNG. */
const writePayload = (file: string, bytes: number) => {
  const cipher = createCipheriv("aes-128-ctr", randomBytes(16), randomBytes(16))
  const zeros = Buffer.alloc(16 * 1024 * 1024)
  const fd = fs.openSync(file, "w")
  try {
    for (let written = 0; written < bytes;) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - written)))
      fs.writeSync(fd, chunk)
      written += chunk.length
    }
  } finally {
    fs.closeSync(fd)
  }
}

// GNU time reports the child's own rusage: elapsed, user, system seconds and max RSS in KiB.
const measure = (command: string, args: ReadonlyArray<string>): Measure => {
  const result = spawnSync("/usr/bin/time", ["-f", "%e %U %S %M", command, ...args], { encoding: "utf8" })
  const lines = result.stderr.trim().split("\n")
  if (result.status !== 0) throw new Error(`${command} failed (${result.status}):\n${result.stderr}`)
  const [wall, user, system, rssKiB] = lines[lines.length - 1]!.split(" ").map(Number) as [number, number, number, number]
  return { wallSeconds: wall, userSeconds: user, systemSeconds: system, cpuSeconds: user + system, peakRssMiB: rssKiB / 1024 }
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const summarize = (runs: ReadonlyArray<Measure>): Measure => ({
  wallSeconds: median(runs.map((run) => run.wallSeconds)),
  userSeconds: median(runs.map((run) => run.userSeconds)),
  systemSeconds: median(runs.map((run) => run.systemSeconds)),
  cpuSeconds: median(runs.map((run) => run.cpuSeconds)),
  peakRssMiB: median(runs.map((run) => run.peakRssMiB))
})

const infoHashOf = (file: string): string =>
  InfoHash.toHex(Either.getOrThrow(Metainfo.parse(fs.readFileSync(file))).infoHash)

const main = () => {
  const bytes = size("size", "1GiB")
  const pieceLength = size("piece-length", "256K")
  const rounds = Number(flag("rounds", "3"))
  const exponent = Math.log2(pieceLength)
  if (!Number.isInteger(exponent)) throw new Error("--piece-length must be a power of two (mktorrent takes 2^n)")
  if (!fs.existsSync("/usr/bin/time")) throw new Error("/usr/bin/time is missing: apt-get install -y time")
  checkBuild()
  const mktorrentVersion = execFileSync("mktorrent", ["-h"], { encoding: "utf8" }).split("\n")[0]!.trim()

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bench-create-"))
  try {
    const payload = path.join(dir, "payload.bin")
    const started = Date.now()
    writePayload(payload, bytes)
    console.error(`payload: ${Format.bytes(bytes)} in ${Format.duration((Date.now() - started) / 1000)}; ` +
      `piece length ${Format.bytes(pieceLength)}; ${rounds} rounds each; load average ${os.loadavg()[0]!.toFixed(1)}`)

    const tracker = "http://127.0.0.1:6969/announce"
    const tools = {
      bitfiber: (out: string) =>
        measure(cli, ["create", payload, "-o", out, "-t", tracker, "--piece-length", String(pieceLength), "--no-date", "--force"]),
      mktorrent: (out: string) => {
        fs.rmSync(out, { force: true })
        return measure("mktorrent", ["-a", tracker, "-l", String(exponent), "-d", "-o", out, payload])
      }
    }
    const runs: Record<keyof typeof tools | "startup", Array<Measure>> = { bitfiber: [], mktorrent: [], startup: [] }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["bitfiber", "mktorrent"] as const) : (["mktorrent", "bitfiber"] as const)
      for (const tool of order) {
        const result = tools[tool](path.join(dir, `${tool}.torrent`))
        runs[tool].push(result)
        console.error(`  round ${round + 1} ${tool.padEnd(9)} ${result.wallSeconds.toFixed(2)} s wall, ${result.cpuSeconds.toFixed(2)} s CPU`)
      }
      // What bitfiber pays before any work: Node plus loading the CLI's modules.
      runs.startup.push(measure(cli, ["--version"]))
    }

    const hashes = { bitfiber: infoHashOf(path.join(dir, "bitfiber.torrent")), mktorrent: infoHashOf(path.join(dir, "mktorrent.torrent")) }
    const bitfiber = summarize(runs.bitfiber)
    const mktorrent = summarize(runs.mktorrent)
    const startup = summarize(runs.startup)
    const ratio = {
      wallSeconds: bitfiber.wallSeconds / mktorrent.wallSeconds,
      cpuSeconds: bitfiber.cpuSeconds / mktorrent.cpuSeconds,
      peakRssMiB: bitfiber.peakRssMiB / mktorrent.peakRssMiB
    }

    const row = (name: string, m: Measure) =>
      `${name.padEnd(10)} ${m.wallSeconds.toFixed(2).padStart(7)} ${m.userSeconds.toFixed(2).padStart(7)} ${m.systemSeconds.toFixed(2).padStart(7)} ` +
      `${m.cpuSeconds.toFixed(2).padStart(7)} ${m.peakRssMiB.toFixed(0).padStart(8)} ${Format.rate(bytes / m.wallSeconds).padStart(12)}`
    console.log(`create ${Format.bytes(bytes)}, pieces of ${Format.bytes(pieceLength)}, median of ${rounds} (${os.cpus().length} CPUs)`)
    console.log(`${"tool".padEnd(10)} ${"wall s".padStart(7)} ${"user s".padStart(7)} ${"sys s".padStart(7)} ${"CPU s".padStart(7)} ${"RSS MiB".padStart(8)} ${"throughput".padStart(12)}`)
    console.log(row("bitfiber", bitfiber))
    console.log(row("mktorrent", mktorrent))
    console.log(row("start-up*", startup))
    console.log(`${"ratio".padEnd(10)} ${ratio.wallSeconds.toFixed(2).padStart(7)} ${"".padStart(7)} ${"".padStart(7)} ${ratio.cpuSeconds.toFixed(2).padStart(7)} ${ratio.peakRssMiB.toFixed(2).padStart(8)}`)
    console.log("* bitfiber --version: Node's start plus loading the CLI's modules, included in bitfiber's figures")
    console.log(hashes.bitfiber === hashes.mktorrent
      ? `same info-hash from both: ${hashes.bitfiber}`
      : `DIFFERENT info-hashes: bitfiber ${hashes.bitfiber}, mktorrent ${hashes.mktorrent}`)

    const results = path.join(root, "bench/results/create.json")
    fs.mkdirSync(path.dirname(results), { recursive: true })
    fs.writeFileSync(results, `${JSON.stringify({
      benchmark: "create",
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadAverage: os.loadavg(), node: process.version, mktorrent: mktorrentVersion },
      sizeBytes: bytes,
      pieceLength,
      rounds,
      median: { bitfiber, mktorrent, bitfiberStartup: startup },
      ratio,
      runs,
      infoHashes: hashes,
      sameInfoHash: hashes.bitfiber === hashes.mktorrent
    }, null, 2)}\n`)
    console.log(`results: ${path.relative(process.cwd(), results)}`)
    if (hashes.bitfiber !== hashes.mktorrent) process.exitCode = 1
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
