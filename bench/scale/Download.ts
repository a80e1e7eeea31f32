/**
 * The measured part of the scale benchmark's peers scenarios: one session downloading one torrent
 * from many peers at once, over whatever Network is provided (live loopback or simulated).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { type Network, NodeStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { Effect, Layer, Stream } from "effect"
import * as Report from "../support/Report.js"
import { type Measured, monitor } from "./Monitor.js"

/** What a download from `peers` measured. */
export interface Downloaded extends Measured {
  readonly peers: number
  readonly maxPeersConnected: number
  /** Seconds from adding the torrent until every peer was connected at once; null if never. */
  readonly allConnectedAfterSeconds: number | null
  readonly mibPerSecond: number
}

/**
 * Downloads `torrent` from `peers` into a temp directory (node:fs, as a user's client would: its
 * bytes then live in the page cache, not in the process), measuring the process from just before
 * the session starts until the torrent completes. Gives up after `timeoutSeconds`.
 */
export const run = (options: {
  readonly torrent: Uint8Array
  readonly torrentBytes: number
  readonly peers: ReadonlyArray<Network.Address>
  readonly timeoutSeconds: number
}) =>
  Effect.gen(function*() {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bench-scale-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
    const peerCount = options.peers.length
    const measure = monitor()
    const session = yield* Session.make(yield* SessionConfig.make({
      listen: false,
      maxPeersPerTorrent: peerCount + 10,
      maxConnections: peerCount + 10
    }))
    const torrent = yield* session.add({ torrent: options.torrent, directory, peers: options.peers })
    let maxPeersConnected = 0
    let allConnectedAfter: number | null = null
    const started = performance.now()
    yield* Effect.forkScoped(Stream.runForEach(torrent.changes, (progress) =>
      Effect.sync(() => {
        maxPeersConnected = Math.max(maxPeersConnected, progress.peers)
        if (allConnectedAfter === null && progress.peers >= peerCount) allConnectedAfter = (performance.now() - started) / 1000
      })))
    yield* torrent.completed.pipe(Effect.timeout(`${options.timeoutSeconds} seconds`))
    const measured = measure.stop()
    const downloaded: Downloaded = {
      ...measured,
      peers: peerCount,
      maxPeersConnected,
      allConnectedAfterSeconds: allConnectedAfter,
      mibPerSecond: Report.mib(options.torrentBytes) / measured.seconds
    }
    return downloaded
  }).pipe(Effect.provide(Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer())))
