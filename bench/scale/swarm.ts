/**
 * The peers of the scale benchmark's `peers` scenario, in a process of their own so that the
 * measured session's memory, CPU and event loop are its own: `--peers` scripted seeders of one
 * test torrent, each listening on 127.0.0.1 (a port the OS picks) over the live network. Each
 * serves one 16 KiB block per `serveDelay`, one request at a time, so that all of them together
 * deliver the torrent in about `--seconds`.
 *
 * Prints one JSON line, `Ready`, then serves until its stdin closes (the benchmark ends or dies).
 *
 *   node --import tsx/esm --conditions=@bitfiber/source bench/scale/swarm.ts [--peers 200] [--torrent-size 64MiB] [--seconds 20]
 */
import { NodeNetwork } from "@bitfiber/core"
import { ScriptedPeer } from "@bitfiber/core/testing"
import { Effect } from "effect"
import * as Report from "../support/Report.js"
import * as ScaleTorrent from "./ScaleTorrent.js"

/** What the swarm prints once every seeder listens. */
export interface Ready {
  readonly ports: ReadonlyArray<number>
  /** The .torrent file, base64. */
  readonly torrent: string
  readonly torrentBytes: number
  readonly pieceLength: number
  readonly serveDelayMillis: number
}

const BLOCK_LENGTH = 16 * 1024

const main = Effect.gen(function*() {
  const { peerCount, pieceLength, size, targetSeconds, test } = ScaleTorrent.fromArgs()
  // Each connection's share of a download lasting about targetSeconds, one block at a time.
  const serveDelayMillis = (1000 * BLOCK_LENGTH * peerCount * targetSeconds) / size
  const seeders = yield* Effect.forEach(Array.from({ length: peerCount }), () =>
    ScriptedPeer.seeder({
      address: { host: "127.0.0.1", port: 0 },
      info: test.metainfo.info,
      infoHash: test.metainfo.infoHash,
      content: test.content,
      behaviour: { serveDelay: `${serveDelayMillis} millis` }
    }))
  const ready: Ready = {
    ports: seeders.map((seeder) => seeder.address.port),
    torrent: Buffer.from(test.torrent).toString("base64"),
    torrentBytes: size,
    pieceLength,
    serveDelayMillis
  }
  console.log(JSON.stringify(ready))
  yield* Effect.async<void>((resume) => {
    process.stdin.on("end", () => resume(Effect.void)).on("error", () => resume(Effect.void)).resume()
  })
}).pipe(Effect.scoped, Effect.provide(NodeNetwork.layer))

Report.runMain(main)
