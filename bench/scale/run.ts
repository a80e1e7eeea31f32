/**
 * Benchmark: how a session scales, on the simulated network (MemoryNetwork),
 * each scenario in a fresh node process so that its memory figures are its own:
 *
 * - peers:    one torrent downloading from `--peers` (200) scripted seeders at once. The links are
 *             throttled so the download takes about `--seconds` (20): the figures are about
 *             holding that many active peers, not about raw speed (bench/download is).
 * - torrents: `--torrents` (1,000) idle torrents in one session (`--idle-size` 1 GiB each in
 *             256 KiB pieces, no data, no peers, no trackers), added one by one, then left
 *             alone for `--idle` (10) seconds.
 *
 * Reported: RSS before the session started and at its peak (sampled every 10 ms), the worst and
 * the 99th percentile event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms resolution, and a
 * probe timer, see `monitor`), and CPU seconds. The RSS includes the scripted peers, their
 * copy of the torrent's bytes and the simulated links' buffers: the baseline is taken once the
 * peers exist, and the download itself is written to a temp directory (node:fs storage), as a
 * real client's would be. The idle torrents use in-memory storage (they never write).
 *
 *   pnpm bench scale [--peers 200] [--torrent-size 64MiB] [--seconds 20] [--torrents 1000] [--idle-size 1GiB] [--idle 10]
 *
 * Writes bench/results/scale.json.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { randomFillSync } from "node:crypto"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import * as path from "node:path"
import { Bencode, EventLoopScheduler, MemoryStorage, NodeStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, TestTorrent } from "@bitfiber/core/testing"
import { Effect, Layer, type Scope, Stream } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Args from "../support/Args.js"
import * as Report from "../support/Report.js"

/** What one scenario measured. */
interface Measured {
  readonly rssBaselineMiB: number
  readonly rssPeakMiB: number
  readonly eventLoopDelayMaxMs: number
  readonly eventLoopDelayP99Ms: number
  readonly cpuSeconds: number
  readonly seconds: number
}

const mibOf = (bytes: number) => Report.mib(bytes)

/**
 * From now on, samples RSS every 50 ms and the event-loop delay, until `stop`; the baseline is
 * taken after a GC. The delay is the worse of perf_hooks' histogram and a 10 ms probe timer that
 * also counts a stall still going on at `stop`: the histogram drops its first interval and any
 * stall the loop has not come out of, and Effect's scheduler can keep a busy runtime on
 * microtasks for seconds without a turn of the event loop.
 */
const monitor = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  const baseline = process.memoryUsage.rss()
  let peak = baseline
  let lastTick = performance.now()
  let worstGap = 0
  const probe = setInterval(() => {
    const now = performance.now()
    worstGap = Math.max(worstGap, now - lastTick - 10)
    lastTick = now
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 10)
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  const cpu = process.cpuUsage()
  const started = performance.now()
  return {
    stop: (): Measured => {
      const now = performance.now()
      clearInterval(probe)
      histogram.disable()
      worstGap = Math.max(worstGap, now - lastTick - 10)
      peak = Math.max(peak, process.memoryUsage.rss())
      const used = process.cpuUsage(cpu)
      return {
        rssBaselineMiB: mibOf(baseline),
        rssPeakMiB: mibOf(peak),
        eventLoopDelayMaxMs: Math.max(histogram.max / 1e6, worstGap),
        eventLoopDelayP99Ms: histogram.percentile(99) / 1e6,
        cpuSeconds: (used.user + used.system) / 1e6,
        seconds: (now - started) / 1000
      }
    }
  }
}

const host = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 1}`

const peersScenario = Effect.gen(function*() {
  const peerCount = Args.count("peers", 200)
  const size = Args.size("torrent-size", "64MiB")
  const targetSeconds = Args.count("seconds", 20)
  const pieceLength = 256 * 1024
  const test = TestTorrent.make({ files: [{ path: "scale.bin", length: size }], pieceLength })
  const switchboard = yield* MemoryNetwork.make()
  // Each connection's share of a download lasting about targetSeconds.
  const bandwidth = Math.ceil(size / peerCount / targetSeconds)
  yield* switchboard.setLink({}, { bandwidth })
  const seeders = yield* Effect.forEach(Array.from({ length: peerCount }, (_, i) => host(i)), (address) =>
    ScriptedPeer.seeder({ address: { host: address, port: 6881 }, info: test.metainfo.info, infoHash: test.metainfo.infoHash, content: test.content })
      .pipe(Effect.provide(MemoryNetwork.layer(switchboard, { host: address }))))

  // The download goes to a real temp directory, as a user's would: held in MemoryStorage, its
  // bytes would count as the engine's RSS (a client's data lives in the page cache, not its heap).
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bench-scale-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
  const services = Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer()).pipe(
    Layer.provideMerge(MemoryNetwork.layer(switchboard, { host: "10.255.255.1" }))
  )
  const measure = monitor()
  return yield* Effect.gen(function*() {
    const config = yield* SessionConfig.make({
      listen: false,
      maxPeersPerTorrent: peerCount + 10,
      maxConnections: peerCount + 10
    })
    const session = yield* Session.make(config)
    const torrent = yield* session.add({ torrent: test.torrent, directory, peers: seeders.map((s) => s.address) })
    let maxPeers = 0
    let allConnectedAfter: number | undefined
    const started = performance.now()
    yield* Effect.forkScoped(Stream.runForEach(torrent.changes, (p) =>
      Effect.sync(() => {
        maxPeers = Math.max(maxPeers, p.peers)
        if (allConnectedAfter === undefined && p.peers >= peerCount) allConnectedAfter = (performance.now() - started) / 1000
      })))
    yield* torrent.completed.pipe(Effect.timeout(`${Math.max(120, targetSeconds * 6)} seconds`))
    const measured = measure.stop()
    return {
      scenario: "peers" as const,
      peers: peerCount,
      torrentBytes: size,
      pieceLength,
      bandwidthPerConnection: bandwidth,
      maxPeersConnected: maxPeers,
      allConnectedAfterSeconds: allConnectedAfter ?? null,
      ...measured,
      mibPerSecond: mibOf(size) / measured.seconds
    }
  }).pipe(Effect.provide(services))
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

/** Runs one scenario in a fresh process (with --expose-gc, for a clean baseline) and returns its JSON. */
const runScenario = (scenario: "peers" | "torrents"): Record<string, unknown> => {
  const stdout = execFileSync(process.execPath, [
    "--expose-gc", "--import", "tsx/esm", "--conditions=@bitfiber/source",
    path.join(import.meta.dirname, "run.ts"), "--scenario", scenario, ...process.argv.slice(2)
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 * 1024 * 1024 })
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>
}

const parent = () => {
  console.error(`scale: ${Report.load()}`)
  const peers = runScenario("peers") as unknown as Effect.Effect.Success<typeof peersScenario>
  console.error(`  peers done; ${Report.load()}`)
  const torrents = runScenario("torrents") as unknown as Effect.Effect.Success<typeof torrentsScenario>
  const n = Report.num
  console.log(`scale on the simulated network; ${Report.load()}`)
  console.log(Report.table(
    ["scenario", "seconds", "RSS before MiB", "RSS peak MiB", "loop delay max ms", "p99 ms", "CPU s"],
    [
      [`${peers.peers} peers, ${Format.bytes(peers.torrentBytes)} torrent`, n(peers.seconds, 1), n(peers.rssBaselineMiB, 0), n(peers.rssPeakMiB, 0), n(peers.eventLoopDelayMaxMs, 1), n(peers.eventLoopDelayP99Ms, 1), n(peers.cpuSeconds)],
      [`${torrents.torrents} torrents: adding`, n(torrents.adding.seconds, 1), n(torrents.adding.rssBaselineMiB, 0), n(torrents.adding.rssPeakMiB, 0), n(torrents.adding.eventLoopDelayMaxMs, 1), n(torrents.adding.eventLoopDelayP99Ms, 1), n(torrents.adding.cpuSeconds)],
      [`${torrents.torrents} torrents: idle`, n(torrents.idle.seconds, 1), n(torrents.idle.rssBaselineMiB, 0), n(torrents.idle.rssPeakMiB, 0), n(torrents.idle.eventLoopDelayMaxMs, 1), n(torrents.idle.eventLoopDelayP99Ms, 1), n(torrents.idle.cpuSeconds)]
    ]
  ))
  console.log(`peers: at most ${peers.maxPeersConnected} connected at once` +
    (peers.allConnectedAfterSeconds === null ? " (never all)" : `, all ${peers.peers} after ${n(peers.allConnectedAfterSeconds, 1)} s`) +
    `; ${n(peers.mibPerSecond, 1)} MiB/s with links throttled to ${Format.rate(peers.bandwidthPerConnection)} each`)
  console.log(`torrents: ${n(torrents.rssPerTorrentKiB, 0)} KiB of RSS per idle torrent; idle CPU ${n(torrents.idleCpuPercent, 1)}%; ` +
    `slowest add ${n(torrents.slowestAddMs, 0)} ms (in-memory storage has no I/O to yield on: the adding loop holds the event loop throughout)`)
  const file = Report.write("scale", {
    peers,
    torrents,
    summary: [
      { metric: `scale: ${peers.peers} peers, RSS peak − before`, value: peers.rssPeakMiB - peers.rssBaselineMiB, unit: "MiB" },
      { metric: `scale: ${peers.peers} peers, worst event-loop delay`, value: peers.eventLoopDelayMaxMs, unit: "ms" },
      { metric: `scale: ${torrents.torrents} idle torrents, RSS per torrent`, value: torrents.rssPerTorrentKiB, unit: "KiB" },
      { metric: `scale: ${torrents.torrents} idle torrents, worst event-loop delay (adding)`, value: torrents.adding.eventLoopDelayMaxMs, unit: "ms" },
      { metric: `scale: ${torrents.torrents} idle torrents, slowest single add`, value: torrents.slowestAddMs, unit: "ms" },
      { metric: `scale: ${torrents.torrents} idle torrents, worst event-loop delay (idle)`, value: torrents.idle.eventLoopDelayMaxMs, unit: "ms" },
      { metric: `scale: ${torrents.torrents} idle torrents, idle CPU`, value: torrents.idleCpuPercent, unit: "%" }
    ]
  })
  console.log(`results: ${file}`)
}

const scenario = Args.flag("scenario", "")
const printResult = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.scoped(effect).pipe(EventLoopScheduler.run, Effect.tap((result) => Effect.sync(() => console.log(JSON.stringify(result)))))
if (scenario === "peers") Report.runMain(printResult(peersScenario))
else if (scenario === "torrents") Report.runMain(printResult(torrentsScenario))
else parent()
