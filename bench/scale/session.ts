/**
 * The measured process of the scale benchmark's `peers` scenario: one session (live network,
 * node:fs storage, no listening socket) downloading a torrent from the swarm's seeders on
 * 127.0.0.1, and nothing else. bench/scale/run.ts bundles it with esbuild, as the CLI is bundled,
 * and runs it in a fresh `node --expose-gc`, so its baseline is a user's process, not tsx's.
 * Prints its figures (`Download.Downloaded`) as one JSON line.
 *
 *   node --expose-gc session.mjs --torrent FILE --ports PORT,PORT,... --timeout SECONDS
 */
import * as fs from "node:fs"
import { EventLoopScheduler, NodeNetwork } from "@bitfiber/core"
import { Effect } from "effect"
import * as Args from "../support/Args.js"
import * as Report from "../support/Report.js"
import * as Download from "./Download.js"

const main = Effect.suspend(() =>
  Download.run({
    torrent: fs.readFileSync(Args.flag("torrent", "")),
    torrentBytes: Args.count("torrent-bytes", 1),
    peers: Args.flag("ports", "").split(",").map((port) => ({ host: "127.0.0.1", port: Number(port) })),
    timeoutSeconds: Args.count("timeout", 120)
  })
).pipe(
  Effect.scoped,
  EventLoopScheduler.run,
  Effect.provide(NodeNetwork.layer),
  Effect.tap((downloaded) => Effect.sync(() => console.log(JSON.stringify(downloaded))))
)

Report.runMain(main)
