/**
 * aria2c (1.36) as seeder or leecher on 127.0.0.1. It finds peers only through trackers: its
 * CLI cannot add a peer directly and it ignores a magnet's x.pe; with DHT off it hangs on udp://
 * trackers, so give its torrents an http:// tracker (see Tracker.opentracker).
 */
import { Duration, Effect, type Scope } from "effect"
import { freePort } from "./Ports.js"
import { type Child, type ProcessError, spawn } from "./Process.js"

/** A running aria2c. */
export interface Aria2Client {
  readonly port: number
  readonly process: Child
  /** Leecher: waits for aria2c to exit 0 after downloading (and verifying) every piece. */
  readonly waitFinished: (timeout?: Duration.DurationInput) => Effect.Effect<void, ProcessError>
}

/** Options common to aria2c seeders and leechers. */
export interface Aria2Options {
  readonly torrentPath: string
  /** Listen port; default: a free one. */
  readonly port?: number
  /** Upper bound of the process's life (default 5 minutes). */
  readonly lifetime?: Duration.DurationInput
  /** More flags, after the common ones (e.g. `--bt-require-crypto=true`). */
  readonly args?: ReadonlyArray<string>
}

/** The flags every aria2c run here takes: loopback only, no DHT/LSD/PEX, quick re-announces (bench/ uses them too). */
export const commonArgs = (port: number, dir: string) => [
  "--no-conf=true",
  "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
  "--interface=127.0.0.1", "--disable-ipv6=true", `--listen-port=${port}`,
  // Re-announce every 2 s instead of the tracker's 30 min, so peers that start later are found.
  "--bt-tracker-interval=2",
  `--dir=${dir}`, "--file-allocation=none", "--allow-overwrite=true", "--auto-file-renaming=false",
  "--summary-interval=1", "--console-log-level=notice", "--enable-color=false"
]

const launch = (name: string, port: number | undefined, args: (port: number) => ReadonlyArray<string>, lifetime: Duration.DurationInput | undefined) =>
  Effect.gen(function*() {
    const listen = port ?? (yield* freePort)
    const child = yield* spawn({
      name: `${name}:${listen}`,
      command: "aria2c",
      args: args(listen),
      ready: /listening on TCP port/,
      readyTimeout: "90 seconds",
      ...(lifetime === undefined ? {} : { lifetime })
    })
    return { port: listen, child }
  })

/**
 * An aria2c seeder: verifies the data in `dataDir` (-V), then seeds until stopped. aria2 1.36
 * treats BEP 47 pad files as real files: they must exist on disk (see `writePadFiles`).
 */
export const aria2Seeder = (options: Aria2Options & { readonly dataDir: string }): Effect.Effect<Aria2Client, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const { child, port } = yield* launch("aria2-seeder", options.port, (port) => [
      ...commonArgs(port, options.dataDir),
      "--check-integrity=true", "--bt-seed-unverified=false", "--seed-ratio=0.0",
      options.torrentPath
    ], options.lifetime)
    const verified = yield* child.waitForLine(/(Verification finished successfully)|Checksum error detected/, "90 seconds")
    if (verified[1] === undefined) return yield* child.failure("Unexpected", `data in ${options.dataDir} failed verification`)
    return { port, process: child, waitFinished: () => Effect.void }
  })

/** An aria2c leecher saving into `dir`; it exits 0 once the download is complete (--seed-time=0). */
export const aria2Leecher = (options: Aria2Options & { readonly dir: string }): Effect.Effect<Aria2Client, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const { child, port } = yield* launch("aria2-leecher", options.port, (port) => [
      ...commonArgs(port, options.dir),
      "--seed-time=0",
      ...(options.args ?? []),
      options.torrentPath
    ], options.lifetime)
    return { port, process: child, waitFinished: (timeout = Duration.seconds(60)) => child.waitForSuccess(timeout) }
  })
