/**
 * The engine as the CLI runs it: a session on the live network and disk, and the progress
 * display of a running torrent shared by `download`, `seed` and `demo`.
 */
import {
  NodeNetwork,
  NodeStorage,
  Session,
  SessionConfig,
  type Torrent,
  TrackerClient
} from "@bitfiber/core"
import { Clock, Effect, Layer, Stream } from "effect"
import * as Format from "./ui/Format.js"
import * as Progress from "./ui/Progress.js"
import type * as StatusLine from "./ui/StatusLine.js"

/** The live services a session runs on. */
export const services = Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer()).pipe(
  Layer.provideMerge(NodeNetwork.layer)
)

/**
 * Starts a session with `config` in the current scope, on the live services. When the port was
 * not chosen by the user and is taken (another client), a free port is used instead.
 */
export const session = (config: SessionConfig.SessionConfigInput, portChosen: boolean) => {
  const start = (input: SessionConfig.SessionConfigInput) =>
    // The services are built in the session's scope, not just for `Session.make`: the storage's
    // disk thread must live as long as the session and stop with it.
    Effect.flatMap(Layer.build(services), (context) =>
      SessionConfig.make(input).pipe(Effect.orDie, Effect.flatMap(Session.make), Effect.provide(context)))
  return portChosen
    ? start(config)
    : start(config).pipe(Effect.catchTag("NetworkError", () => start({ ...config, port: 0 })))
}

/** One line describing a torrent's progress. */
export const describe = (p: Torrent.Progress, live: boolean): string => {
  switch (p.state) {
    case "checking":
      return `checking ${live ? `${Progress.bar(p.pieceCount === 0 ? 1 : p.checkedPieces / p.pieceCount, 20)} ` : ""}${p.checkedPieces}/${p.pieceCount} pieces`
    case "downloading": {
      const fraction = p.totalLength === 0 ? 1 : p.verifiedBytes / p.totalLength
      const eta = p.eta === undefined ? "" : `  ETA ${Format.duration(p.eta)}`
      const peers = `${p.peers} peer${p.peers === 1 ? "" : "s"}${p.connecting > 0 ? ` (+${p.connecting} connecting)` : ""}`
      return `${live ? `${Progress.bar(fraction, 20)} ` : ""}${Format.percent(fraction)}  ↓ ${Format.rate(p.downloadRate)}  ↑ ${Format.rate(p.uploadRate)}  ${peers}${eta}`
    }
    case "seeding":
      return `seeding  ↑ ${Format.rate(p.uploadRate)}  uploaded ${Format.bytes(p.uploaded)}  ${p.peers} peer${p.peers === 1 ? "" : "s"}`
    case "paused":
      return "paused"
    case "failed":
      return `failed: ${p.error ?? "unknown error"}`
    case "removed":
      return "stopped"
  }
}

/**
 * Shows a torrent's progress on `status` (or as JSON lines on stdout) until interrupted: at most
 * one snapshot per interval, but a change of state (checking, downloading, seeding, ...) at once,
 * so that neither a reader nor a script waiting for it waits out the interval.
 */
export const watch = (torrent: Pick<Torrent.Torrent, "changes">, status: StatusLine.StatusLine, json: boolean) => {
  const intervalMillis = json ? 1000 : 200
  let shownState: Torrent.Progress["state"] | undefined
  let shownAt = 0
  return Stream.runForEach(torrent.changes, (p) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const changed = p.state !== shownState
      if (!changed && now - shownAt < intervalMillis) return Effect.void
      shownState = p.state
      shownAt = now
      return json
        ? Effect.sync(() => process.stdout.write(`${JSON.stringify(progressJson(p))}\n`))
        : status.show(describe(p, status.live), changed)
    })
  )
}

/** The `--json` form of a progress snapshot. */
export const progressJson = (p: Torrent.Progress) => ({
  type: "progress" as const,
  state: p.state,
  infoHash: p.infoHash,
  name: p.name,
  verifiedBytes: p.verifiedBytes,
  totalLength: p.totalLength,
  verifiedPieces: p.verifiedPieces,
  pieceCount: p.pieceCount,
  checkedPieces: p.checkedPieces,
  downloadRate: Math.round(p.downloadRate),
  uploadRate: Math.round(p.uploadRate),
  downloaded: p.downloaded,
  uploaded: p.uploaded,
  peers: p.peers,
  seeds: p.seeds,
  eta: p.eta ?? null,
  error: p.error ?? null
})
