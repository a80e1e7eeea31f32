/** libtorrent-rasterbar 2.0 (Debian's python3-libtorrent) as seeder, leecher and torrent tool, via lt_client.py. */
import { fileURLToPath } from "node:url"
import { Duration, Effect, type Scope } from "effect"
import { python } from "./Binaries.js"
import { type PeerAddress } from "./Ports.js"
import { type Child, type ProcessError, run, spawn } from "./Process.js"

const script = fileURLToPath(new URL("./lt_client.py", import.meta.url))

/** What libtorrent reads from a .torrent file. */
export interface TorrentInfo {
  /** Hex of the 20 bytes used on the wire and at trackers: SHA-1 for v1/hybrid, truncated SHA-256 for v2-only. */
  readonly infoHash: string
  /** Hex SHA-256 info-hash of v2 and hybrid torrents, else null. */
  readonly infoHashV2: string | null
  readonly name: string
  readonly pieceLength: number
  readonly numPieces: number
  readonly totalSize: number
  readonly private: boolean
  readonly trackers: ReadonlyArray<string>
  /** In storage order; `path` starts with the torrent's name for multi-file torrents; pad files are flagged. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly pad: boolean }>
}

/** The JSON status line lt_client.py prints every second. */
export interface LibtorrentStatus {
  readonly state: string
  readonly progress: number
  readonly num_peers: number
  readonly num_seeds: number
  readonly download_rate: number
  readonly upload_rate: number
  readonly total_done: number
  readonly total_upload: number
  readonly is_seeding: boolean
  readonly has_metadata: boolean
  readonly port: number
  readonly error: string | null
}

/** A running libtorrent session with one torrent, listening on 127.0.0.1:`port`. */
export interface LibtorrentClient {
  readonly port: number
  readonly process: Child
  /** The latest status line, if one was printed yet. */
  readonly status: () => LibtorrentStatus | undefined
  /** Dials a peer (libtorrent's `connect_peer`), e.g. a bitfiber or transmission listener. */
  readonly connectPeer: (peer: PeerAddress) => Effect.Effect<void>
  /** Announces to every tracker now, ignoring the tracker's min interval. */
  readonly reannounce: Effect.Effect<void>
  /** With `dht`: adds a DHT node (libtorrent's `add_dht_node`), which libtorrent pings. */
  readonly addDhtNode: (node: PeerAddress) => Effect.Effect<void>
  /** With `dht`: announces the torrent to the DHT now (`force_dht_announce`). */
  readonly dhtAnnounce: Effect.Effect<void>
  /** Waits until the torrent is complete; a leecher without `keepSeeding` has then exited 0 with its files flushed. */
  readonly waitFinished: (timeout?: Duration.DurationInput) => Effect.Effect<void, ProcessError>
}

/** Options common to seeders and leechers. */
export interface LibtorrentOptions {
  /** Listen port; default 0: the OS picks one (no collisions), read it from `port`. */
  readonly port?: number
  /** Peers to dial right away, besides those the torrent's trackers return. */
  readonly peers?: ReadonlyArray<PeerAddress>
  /** Upper bound of the process's life (default 5 minutes). */
  readonly lifetime?: Duration.DurationInput
  /**
   * Runs libtorrent's DHT on the listen port (UDP, 127.0.0.1), with no public router and the
   * loopback-hostile checks off; it logs its DHT alerts. Default off.
   */
  readonly dht?: boolean
  /** With `dht`: DHT nodes to start from. */
  readonly dhtNodes?: ReadonlyArray<PeerAddress>
  /** Message stream encryption: libtorrent's default ("enabled"), or RC4-encrypted streams only, both ways. */
  readonly encryption?: "enabled" | "forced-rc4"
}

/** Where a leecher gets the torrent from: a .torrent file, or a magnet link (metadata from peers). */
export type TorrentSource = { readonly torrentPath: string } | { readonly magnet: string }

const launch = (
  name: string,
  mode: "seed" | "leech",
  source: TorrentSource,
  dir: string,
  options: LibtorrentOptions,
  extra: ReadonlyArray<string>,
  keepSeeding: boolean
): Effect.Effect<LibtorrentClient, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const args = [
      script, mode,
      ...("torrentPath" in source ? ["--torrent", source.torrentPath] : ["--magnet", source.magnet]),
      "--dir", dir,
      "--port", String(options.port ?? 0),
      ...(options.peers ?? []).flatMap((peer) => ["--connect", `${peer.host}:${peer.port}`]),
      ...(options.dht === true ? ["--dht"] : []),
      ...(options.dhtNodes ?? []).flatMap((node) => ["--dht-node", `${node.host}:${node.port}`]),
      ...(options.encryption === undefined ? [] : ["--encryption", options.encryption]),
      ...extra
    ]
    const ready = /^READY port=(\d+)$/
    const child = yield* spawn({
      name,
      command: python,
      args,
      ready,
      // A seeder is ready once it has verified its data, which takes a while for big payloads.
      readyTimeout: mode === "seed" ? "90 seconds" : "20 seconds",
      ...(options.lifetime === undefined ? {} : { lifetime: options.lifetime })
    })
    const port = Number((yield* child.waitForLine(ready))[1])
    const status = () => {
      const line = child.log().split("\n").reverse().find((l) => l.startsWith(`{"event": "status"`))
      return line === undefined ? undefined : (JSON.parse(line) as LibtorrentStatus)
    }
    const defaultFinish = Duration.seconds(60)
    return {
      port,
      process: child,
      status,
      connectPeer: (peer) => child.send(`connect ${peer.host} ${peer.port}`),
      reannounce: child.send("reannounce"),
      addDhtNode: (node) => child.send(`dht-node ${node.host} ${node.port}`),
      dhtAnnounce: child.send("dht-announce"),
      waitFinished: (timeout = defaultFinish) =>
        mode === "seed"
          ? Effect.void // ready means verified and seeding
          : keepSeeding
          ? Effect.asVoid(child.waitForLine(/^FINISHED$/, timeout))
          : child.waitForSuccess(timeout)
    }
  })

/**
 * A libtorrent seeder of `torrentPath` with its data under `dataDir` (the torrent's parent dir);
 * ready once it has verified the data. `reannounceEvery` makes it re-announce so it learns
 * (and, as a seed, dials) peers that joined later: transmission only downloads when dialled.
 */
export const libtorrentSeeder = (
  options: LibtorrentOptions & {
    readonly torrentPath: string
    readonly dataDir: string
    readonly reannounceEvery?: Duration.DurationInput
  }
): Effect.Effect<LibtorrentClient, ProcessError, Scope.Scope> =>
  launch("libtorrent-seeder", "seed", options, options.dataDir, options, [
    ...(options.reannounceEvery === undefined ? [] : ["--reannounce", String(Duration.toSeconds(options.reannounceEvery))])
  ], true)

/**
 * A libtorrent leecher saving into `saveDir`. It exits 0 once complete (see `waitFinished`),
 * unless `keepSeeding`, in which case it seeds on until stopped.
 */
export const libtorrentLeecher = (
  options: LibtorrentOptions & TorrentSource & { readonly saveDir: string; readonly keepSeeding?: boolean }
): Effect.Effect<LibtorrentClient, ProcessError, Scope.Scope> =>
  launch("libtorrent-leecher", "leech", options, options.saveDir, options, options.keepSeeding === true ? ["--keep-seeding"] : [], options.keepSeeding === true)

const parseInfo = ({ stdout }: { readonly stdout: string }) => JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as TorrentInfo

/** Reads a .torrent file with libtorrent: info-hash, geometry and file list (an independent oracle for parse tests). */
export const libtorrentInfo = (torrentPath: string): Effect.Effect<TorrentInfo, ProcessError> =>
  Effect.map(run("libtorrent-info", python, [script, "info", torrentPath]), parseInfo)

/**
 * Makes a .torrent of the file or directory `path` with libtorrent: v1 by default (or v2 /
 * hybrid), optional BEP 47 pad files aligning every file to a piece boundary, one tier per
 * tracker. `pieceLength` 0 or absent lets libtorrent choose.
 */
export const libtorrentCreate = (options: {
  readonly path: string
  readonly out: string
  readonly pieceLength?: number
  readonly trackers?: ReadonlyArray<string>
  readonly version?: "v1" | "v2" | "hybrid"
  readonly padFiles?: boolean
  readonly private?: boolean
}): Effect.Effect<TorrentInfo, ProcessError> =>
  Effect.map(
    run("libtorrent-create", python, [
      script, "create", "--path", options.path, "--out", options.out,
      "--piece-size", String(options.pieceLength ?? 0),
      "--version", options.version ?? "v1",
      ...(options.trackers ?? []).flatMap((url) => ["--tracker", url]),
      ...(options.padFiles === true ? ["--pad"] : []),
      ...(options.private === true ? ["--private"] : [])
    ], { timeout: Duration.minutes(5) }),
    parseInfo
  )
