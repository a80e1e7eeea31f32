/**
 * Benchmark: how a session scales, each scenario in fresh node processes so that its figures are
 * its own:
 *
 * - peers:           one torrent downloading from `--peers` (200) seeders at once, the session
 *                    alone in its process. The seeders (scripted, bench/scale/swarm.ts) live in
 *                    another process and listen on 127.0.0.1; the session (bench/scale/session.ts,
 *                    bundled with esbuild like the CLI and run by plain node, no tsx) dials them
 *                    over the live network and writes to a temp directory (node:fs). The
 *                    seeders pace their blocks so the download takes about `--seconds` (20): the
 *                    figures are about holding that many active peers, not about raw speed
 *                    (bench/download is). The headline figure, against the target of 200 peers
 *                    under 300 MiB RSS with no event-loop stall above 50 ms.
 * - peers-simulated: the same download on the simulated network (MemoryNetwork, links throttled
 *                    to the same pace), the seeders in the session's process (run by tsx): their
 *                    fibers and their copy of the torrent's bytes share its RSS, CPU and event
 *                    loop, so its RSS is mostly the simulation's.
 * - torrents:        `--torrents` (1,000) idle torrents in one session (`--idle-size` 1 GiB each
 *                    in 256 KiB pieces, no data, no peers, no trackers), added one by one, then
 *                    left alone for `--idle` (10) seconds; simulated network, in-memory storage
 *                    (they never write).
 *
 * Reported: RSS before the session started (after a GC) and at its peak (sampled every 10 ms),
 * the worst and the 99th percentile event-loop delay, and CPU seconds, all of the session's
 * process (bench/scale/Monitor.ts); for the peers scenarios also how many peers were connected
 * at once and when all were.
 *
 *   pnpm bench scale [--scenarios peers,peers-simulated,torrents] [--peers 200] [--torrent-size 64MiB] [--seconds 20]
 *                    [--torrents 1000] [--idle-size 1GiB] [--idle 10]
 *
 * BITFIBER_BENCH_NODE_ARGS (as for the other benchmarks' bitfiber processes) adds node flags to
 * the `peers` session's process. Writes bench/results/scale.json.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { randomFillSync } from "node:crypto"
import { performance } from "node:perf_hooks"
import * as path from "node:path"
import * as readline from "node:readline"
import { Bencode, EventLoopScheduler, MemoryStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer } from "@bitfiber/core/testing"
import { buildSync } from "esbuild"
import { Effect, Layer, type Scope } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Args from "../support/Args.js"
import * as Report from "../support/Report.js"
import * as Download from "./Download.js"
import * as ScaleTorrent from "./ScaleTorrent.js"
import { type Measured, monitor } from "./Monitor.js"
import type { Ready } from "./swarm.js"

/** What a peers scenario reports: the download's figures and how the seeders were paced. */
interface PeersResult extends Download.Downloaded {
  readonly torrentBytes: number
  readonly pieceLength: number
  /** What paced the seeders: a block every `serveDelayMillis` (live), or links of `bandwidthPerConnection` bytes/s (simulated). */
  readonly pacing: { readonly serveDelayMillis: number } | { readonly bandwidthPerConnection: number }
}

const timeoutSeconds = (targetSeconds: number) => Math.max(120, targetSeconds * 6)

const host = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 1}`

const simulatedPeersScenario = Effect.gen(function*() {
  const { peerCount, pieceLength, size, targetSeconds, test } = ScaleTorrent.fromArgs()
  const switchboard = yield* MemoryNetwork.make()
  // Each connection's share of a download lasting about targetSeconds.
  const bandwidth = Math.ceil(size / peerCount / targetSeconds)
  yield* switchboard.setLink({}, { bandwidth })
  const seeders = yield* Effect.forEach(Array.from({ length: peerCount }, (_, i) => host(i)), (address) =>
    ScriptedPeer.seeder({ address: { host: address, port: 6881 }, info: test.metainfo.info, infoHash: test.metainfo.infoHash, content: test.content })
      .pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: address }))))
  const downloaded = yield* Download.run({
    torrent: test.torrent,
    torrentBytes: size,
    peers: seeders.map((seeder) => seeder.address),
    timeoutSeconds: timeoutSeconds(targetSeconds)
  }).pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: "10.255.255.1" })))
  const result: PeersResult = { ...downloaded, torrentBytes: size, pieceLength, pacing: { bandwidthPerConnection: bandwidth } }
  return result
})

/** A .torrent of `size` bytes in 256 KiB pieces with random piece hashes: nothing to download, only metadata to hold. */
const idleTorrent = (i: number, size: number): Uint8Array => {
  const pieceLength = 256 * 1024
  return Bencode.encode({
    info: {
      name: `idle-${i}.bin`,
      "piece length": pieceLength,
      length: size,
      pieces: randomFillSync(new Uint8Array(Math.ceil(size / pieceLength) * 20))
    }
  })
}

const torrentsScenario = Effect.gen(function*() {
  const torrentCount = Args.count("torrents", 1000)
  const size = Args.size("idle-size", "1GiB")
  const idleSeconds = Args.count("idle", 10)
  const switchboard = yield* MemoryNetwork.make()
  const services = Layer.mergeAll(MemoryStorage.layer, TrackerClient.layer()).pipe(
    Layer.provideMerge(MemoryNetwork.layer(switchboard, { host: "10.255.255.1" }))
  )
  const measure = monitor()
  return yield* Effect.gen(function*() {
    const session = yield* Session.make(yield* SessionConfig.make({ listen: false }))
    let slowestAddMs = 0
    for (let i = 0; i < torrentCount; i++) {
      const torrent = idleTorrent(i, size)
      const started = performance.now()
      yield* session.add({ torrent, directory: "/idle" })
      slowestAddMs = Math.max(slowestAddMs, performance.now() - started)
    }
    const adding = measure.stop()
    // Let every resume check finish (no data: no piece is read) before the idle window.
    for (let waited = 0; waited < 600; waited++) {
      const states = yield* Effect.forEach(yield* session.list, (torrent) => torrent.progress)
      if (states.every((p) => p.state !== "checking")) break
      yield* Effect.sleep("100 millis")
    }
    const idle = monitor()
    yield* Effect.sleep(`${idleSeconds} seconds`)
    const idled = idle.stop()
    return {
      scenario: "torrents" as const,
      torrents: torrentCount,
      torrentBytes: size,
      adding,
      slowestAddMs,
      idle: idled,
      rssPerTorrentKiB: ((idled.rssPeakMiB - adding.rssBaselineMiB) * 1024) / torrentCount,
      idleCpuPercent: (100 * idled.cpuSeconds) / idled.seconds
    }
  }).pipe(Effect.provide(services))
})

type TorrentsResult = Effect.Effect.Success<typeof torrentsScenario>

/** Node flags to load TypeScript sources (the benchmark's own scenarios, the swarm). */
const tsx = ["--import", "tsx/esm", "--conditions=@bitfiber/source"]

/** Extra node flags for the measured session's process, as bench/support/Clients.ts takes them for bitfiber's. */
const sessionNodeArgs = (process.env["BITFIBER_BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")

/** Runs node with `args` (stderr shown); resolves to the last line it printed on stdout, parsed as JSON. */
const runNode = <A>(args: ReadonlyArray<string>): Promise<A> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.once("error", reject)
    child.once("close", (code, signal) =>
      code === 0
        ? resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as A)
        : reject(new Error(`node ${args.join(" ")} exited with ${code ?? signal}`)))
  })

/** Runs a scenario of this file in a fresh process (with --expose-gc, for a clean baseline). */
const runScenario = <A>(scenario: "peers-simulated" | "torrents"): Promise<A> =>
  runNode<A>(["--expose-gc", ...tsx, path.join(import.meta.dirname, "run.ts"), "--scenario", scenario, ...process.argv.slice(2)])

/** Starts the swarm process (bench/scale/swarm.ts) and waits for its `Ready` line; it serves until its stdin closes. */
const startSwarm = (): Promise<{ readonly ready: Ready; readonly stop: () => void }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsx, path.join(import.meta.dirname, "swarm.ts"), ...process.argv.slice(2)], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    const stop = () => {
      child.stdin.end()
      setTimeout(() => child.kill(), 10_000).unref()
    }
    child.once("error", reject)
    child.once("exit", (code, signal) => reject(new Error(`the swarm exited (${code ?? signal}) before it was ready`)))
    readline.createInterface({ input: child.stdout }).once("line", (line) => resolve({ ready: JSON.parse(line) as Ready, stop }))
  })

/**
 * The `peers` scenario: the swarm in one process, the session in another, bundled with esbuild
 * as packages/cli/bundle.mjs bundles the CLI (whitespace and syntax minified), so neither tsx
 * nor the seeders are in the measured process.
 */
const livePeersScenario = async (): Promise<PeersResult> => {
  const swarm = await startSwarm()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bench-scale-"))
  try {
    const bundle = path.join(work, "session.mjs")
    buildSync({
      entryPoints: [path.join(import.meta.dirname, "session.ts")],
      outfile: bundle,
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      conditions: ["@bitfiber/source"],
      minifyWhitespace: true,
      minifySyntax: true,
      logLevel: "warning"
    })
    const { ready } = swarm
    const torrentFile = path.join(work, "scale.torrent")
    fs.writeFileSync(torrentFile, Buffer.from(ready.torrent, "base64"))
    const downloaded = await runNode<Download.Downloaded>([
      "--expose-gc", ...sessionNodeArgs, bundle,
      "--torrent", torrentFile,
      "--torrent-bytes", String(ready.torrentBytes),
      "--ports", ready.ports.join(","),
      "--timeout", String(timeoutSeconds(Args.count("seconds", 20)))
    ])
    return { ...downloaded, torrentBytes: ready.torrentBytes, pieceLength: ready.pieceLength, pacing: { serveDelayMillis: ready.serveDelayMillis } }
  } finally {
    swarm.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

const scenarios = ["peers", "peers-simulated", "torrents"] as const

const parent = async () => {
  const selected = Args.flag("scenarios", scenarios.join(",")).split(",")
  const unknown = selected.filter((name) => !(scenarios as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0) {
    console.error(`--scenarios: unknown ${unknown.join(", ")}; choose from ${scenarios.join(", ")}`)
    return process.exit(2)
  }
  console.error(`scale: ${selected.join(", ")}; ${Report.load()}`)
  const peers = selected.includes("peers") ? await livePeersScenario() : undefined
  if (peers !== undefined) console.error(`  peers done; ${Report.load()}`)
  const simulated = selected.includes("peers-simulated") ? await runScenario<PeersResult>("peers-simulated") : undefined
  if (simulated !== undefined) console.error(`  peers-simulated done; ${Report.load()}`)
  const torrents = selected.includes("torrents") ? await runScenario<TorrentsResult>("torrents") : undefined

  const n = Report.num
  const row = (name: string, m: Measured) =>
    [name, n(m.seconds, 1), n(m.rssBaselineMiB, 0), n(m.rssPeakMiB, 0), n(m.eventLoopDelayMaxMs, 1), n(m.eventLoopDelayP99Ms, 1), n(m.cpuSeconds)]
  const peersName = (p: PeersResult) => `${p.peers} peers, ${Format.bytes(p.torrentBytes)} torrent`
  console.log(`scale; ${Report.load()}`)
  console.log(Report.table(
    ["scenario", "seconds", "RSS before MiB", "RSS peak MiB", "loop delay max ms", "p99 ms", "CPU s"],
    [
      ...(peers === undefined ? [] : [row(`peers: ${peersName(peers)}, loopback, session alone`, peers)]),
      ...(simulated === undefined ? [] : [row(`peers-simulated: ${peersName(simulated)}, peers in-process`, simulated)]),
      ...(torrents === undefined ? [] : [
        row(`torrents: ${torrents.torrents} added`, torrents.adding),
        row(`torrents: ${torrents.torrents} idle`, torrents.idle)
      ])
    ]
  ))
  const stallsNote = (m: Measured) =>
    m.stalls.length === 0
      ? "no event-loop stall above 50 ms"
      : `event-loop stalls above 50 ms (at s: ms late, CPU ms used meanwhile): ` +
        m.stalls.map((stall) => `${n(stall.atSeconds, 1)}: ${n(stall.ms, 0)} (${n(stall.cpuMs, 0)})`).join(", ")
  const peersNote = (name: string, p: PeersResult) => {
    const pacing = "serveDelayMillis" in p.pacing
      ? `seeders serving a 16 KiB block every ${n(p.pacing.serveDelayMillis, 0)} ms`
      : `links throttled to ${Format.rate(p.pacing.bandwidthPerConnection)} each`
    console.log(`${name}: at most ${p.maxPeersConnected} connected at once` +
      (p.allConnectedAfterSeconds === null ? " (never all)" : `, all ${p.peers} after ${n(p.allConnectedAfterSeconds, 1)} s`) +
      `; ${n(p.mibPerSecond, 1)} MiB/s with ${pacing}; at the RSS peak: V8 heap ${n(p.atPeak.heapUsedMiB, 0)} MiB used ` +
      `of ${n(p.atPeak.heapTotalMiB, 0)}, external ${n(p.atPeak.externalMiB, 0)} MiB (array buffers ${n(p.atPeak.arrayBuffersMiB, 0)})`)
    console.log(`${name}: ${stallsNote(p)}`)
  }
  if (peers !== undefined) peersNote("peers", peers)
  if (simulated !== undefined) peersNote("peers-simulated", simulated)
  if (torrents !== undefined) {
    console.log(`torrents: ${n(torrents.rssPerTorrentKiB, 0)} KiB of RSS per idle torrent; idle CPU ${n(torrents.idleCpuPercent, 1)}%; ` +
      `slowest add ${n(torrents.slowestAddMs, 0)} ms (in-memory storage has no I/O to yield on: the adding loop holds the event loop throughout)`)
  }
  const file = Report.write("scale", {
    peers,
    peersSimulated: simulated,
    torrents,
    summary: [
      ...(peers === undefined ? [] : [
        { metric: `scale: ${peers.peers} peers (loopback, session alone), RSS peak`, value: peers.rssPeakMiB, unit: "MiB" },
        { metric: `scale: ${peers.peers} peers (loopback, session alone), RSS peak − before`, value: peers.rssPeakMiB - peers.rssBaselineMiB, unit: "MiB" },
        { metric: `scale: ${peers.peers} peers (loopback, session alone), worst event-loop delay`, value: peers.eventLoopDelayMaxMs, unit: "ms" }
      ]),
      ...(simulated === undefined ? [] : [
        { metric: `scale: ${simulated.peers} peers (simulated, in-process), RSS peak − before`, value: simulated.rssPeakMiB - simulated.rssBaselineMiB, unit: "MiB" },
        { metric: `scale: ${simulated.peers} peers (simulated, in-process), worst event-loop delay`, value: simulated.eventLoopDelayMaxMs, unit: "ms" }
      ]),
      ...(torrents === undefined ? [] : [
        { metric: `scale: ${torrents.torrents} idle torrents, RSS per torrent`, value: torrents.rssPerTorrentKiB, unit: "KiB" },
        { metric: `scale: ${torrents.torrents} idle torrents, worst event-loop delay (adding)`, value: torrents.adding.eventLoopDelayMaxMs, unit: "ms" },
        { metric: `scale: ${torrents.torrents} idle torrents, slowest single add`, value: torrents.slowestAddMs, unit: "ms" },
        { metric: `scale: ${torrents.torrents} idle torrents, worst event-loop delay (idle)`, value: torrents.idle.eventLoopDelayMaxMs, unit: "ms" },
        { metric: `scale: ${torrents.torrents} idle torrents, idle CPU`, value: torrents.idleCpuPercent, unit: "%" }
      ])
    ]
  })
  console.log(`results: ${file}`)
}

const scenario = Args.flag("scenario", "")
const printResult = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.scoped(effect).pipe(EventLoopScheduler.run, Effect.tap((result) => Effect.sync(() => console.log(JSON.stringify(result)))))
if (scenario === "peers-simulated") Report.runMain(printResult(simulatedPeersScenario))
else if (scenario === "torrents") Report.runMain(printResult(torrentsScenario))
else {
  parent().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
