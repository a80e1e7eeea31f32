/**
 * transmission-cli (3.00) as leecher or seeder on 127.0.0.1. Its quirks: as a leecher it does not
 * dial peers at 127.x addresses (it downloads only from peers that dial it, e.g. a libtorrent
 * seeder given its port); it never exits by itself; it decides interest and unchokes every
 * 10 s, so even small transfers take 10-15 s.
 */
import { existsSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Duration, Effect, type Scope } from "effect"
import { tempDir } from "./Payload.js"
import { freePort } from "./Ports.js"
import { type Child, live, type ProcessError, spawn } from "./Process.js"

/** A running transmission-cli. */
export interface TransmissionClient {
  readonly port: number
  readonly process: Child
  /** Leecher: waits until its finish script ran, then stops it (flushing its files). */
  readonly waitFinished: (timeout?: Duration.DurationInput) => Effect.Effect<void, ProcessError>
}

/** Options common to transmission-cli seeders and leechers. */
export interface TransmissionOptions {
  readonly torrentPath: string
  /** Listen port; default: a free one. */
  readonly port?: number
  /** Upper bound of the process's life (default 5 minutes). */
  readonly lifetime?: Duration.DurationInput
}

const settings = (port: number) => ({
  "dht-enabled": false,
  "lpd-enabled": false,
  "pex-enabled": false,
  "utp-enabled": false,
  "port-forwarding-enabled": false,
  "bind-address-ipv4": "127.0.0.1",
  "bind-address-ipv6": "::1",
  "peer-port": port,
  "peer-port-random-on-start": false,
  "rpc-enabled": false,
  // Plaintext preferred (MSE tolerated), so clients without encryption are served too.
  encryption: 0,
  "rename-partial-files": false,
  "download-queue-enabled": false,
  "seed-queue-enabled": false,
  "ratio-limit-enabled": false,
  "idle-seeding-limit-enabled": false,
  "speed-limit-up-enabled": false,
  "speed-limit-down-enabled": false,
  // Debug level: the readiness lines ("Verification is done") are logged there.
  "message-level": 3
})

const launch = (name: string, options: TransmissionOptions, dir: string) =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const config = yield* tempDir("transmission")
    const marker = join(config, "finished")
    const script = join(config, "finished.sh")
    yield* Effect.promise(async () => {
      await writeFile(join(config, "settings.json"), JSON.stringify(settings(port), null, 2))
      await writeFile(script, `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o755 })
    })
    const child = yield* spawn({
      name: `${name}:${port}`,
      command: "transmission-cli",
      args: ["-g", config, "-w", dir, "-p", String(port), "-M", "-f", script, options.torrentPath],
      ready: /Verification is done/,
      readyTimeout: "90 seconds",
      ...(options.lifetime === undefined ? {} : { lifetime: options.lifetime })
    })
    const waitFinished = (timeout: Duration.DurationInput = Duration.seconds(60)) =>
      live(
        Effect.gen(function*() {
          while (!existsSync(marker)) {
            if (child.exitCode() !== undefined) {
              return yield* child.failure("Exited", "exited before finishing")
            }
            yield* Effect.sleep("200 millis")
          }
          yield* child.stop
        }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              child.failure("Timeout", `not finished within ${Duration.format(Duration.decode(timeout))}`)
          })
        )
      )
    return { port, process: child, waitFinished }
  })

/**
 * A transmission-cli leecher saving into `dir`. It downloads only from peers that dial
 * 127.0.0.1:`port` (for a libtorrent seeder: `connectPeer` or `peers`).
 */
export const transmissionLeecher = (options: TransmissionOptions & { readonly dir: string }): Effect.Effect<TransmissionClient, ProcessError, Scope.Scope> =>
  launch("transmission-leecher", options, options.dir)

/**
 * A transmission-cli seeder of the data in `dataDir`, ready once it has verified it all. It
 * predates BEP 47: a torrent's pad files must exist on disk (see `writePadFiles`).
 */
export const transmissionSeeder = (options: TransmissionOptions & { readonly dataDir: string }): Effect.Effect<TransmissionClient, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* launch("transmission-seeder", options, options.dataDir)
    // After verifying, its status line says "Seeding, ..." or, with data missing, "Progress: ...".
    const status = yield* client.process.waitForLine(/^(Seeding), |^(Progress): /, "30 seconds")
    if (status[1] === undefined) return yield* client.process.failure("Unexpected", `data in ${options.dataDir} is incomplete: ${status.input}`)
    return client
  })
