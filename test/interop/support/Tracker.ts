/** opentracker on 127.0.0.1 (HTTP and UDP on one port), for interop tests. */
import { chmod, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { tempDir } from "./Payload.js"
import { freePort } from "./Ports.js"
import { type Child, live, ProcessError, spawn } from "./Process.js"

/** A running opentracker. */
export interface Tracker {
  readonly port: number
  /** "http://127.0.0.1:PORT/announce" */
  readonly httpUrl: string
  /** "udp://127.0.0.1:PORT/announce" (libtorrent and bitfiber; aria2c without DHT hangs on UDP trackers) */
  readonly udpUrl: string
  /** Whitelists one more info-hash (hex) and waits until the tracker serves it. */
  readonly addInfoHash: (infoHashHex: string) => Effect.Effect<void, ProcessError>
  readonly process: Child
}

const notAuthorized = "not authorized"

/**
 * Starts opentracker serving the given info-hashes (hex). Debian builds it in whitelist mode:
 * it serves only whitelisted torrents, chroots into `-d` and reads `-w` relative to it, and
 * reloads the list on SIGHUP.
 */
export const opentracker = (options: { readonly infoHashes?: ReadonlyArray<string> } = {}): Effect.Effect<Tracker, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir("opentracker")
    const whitelist = join(dir, "whitelist.txt")
    const hashes = (options.infoHashes ?? []).map((hash) => hash.toLowerCase())
    // It drops root for "nobody" and re-reads the list on SIGHUP, so nobody must be able to read it.
    yield* Effect.promise(async () => {
      await chmod(dir, 0o755)
      await writeFile(whitelist, hashes.map((hash) => `${hash}\n`).join(""), { mode: 0o644 })
    })
    const launch = Effect.gen(function*() {
      const port = yield* freePort
      const child = yield* spawn({
        name: `opentracker:${port}`,
        command: "opentracker",
        args: ["-i", "127.0.0.1", "-p", String(port), "-P", String(port), "-d", dir, "-w", "/whitelist.txt"],
        readyPort: port
      })
      return { port, child }
    })
    // A port taken between freePort and the bind makes opentracker exit: try another.
    const { child, port } = yield* launch.pipe(Effect.retry({ times: 2, while: (e) => e.reason === "Exited" }))

    const httpUrl = `http://127.0.0.1:${port}/announce`
    const served = (hash: string) =>
      Effect.promise(async () => {
        // A "stopped" announce from a peer the tracker never saw: answered, but adds no peer.
        const infoHash = hash.replace(/../g, "%$&")
        const url = `${httpUrl}?info_hash=${infoHash}&peer_id=-BF0000-harnessprobe&port=1&uploaded=0&downloaded=0&left=0&event=stopped&compact=1`
        const reply = await fetch(url).then((response) => response.text()).catch(() => notAuthorized)
        return !reply.includes(notAuthorized)
      })
    const waitServed = (hash: string) =>
      live(
        Effect.gen(function*() {
          while (!(yield* served(hash))) yield* Effect.sleep("50 millis")
        }).pipe(
          Effect.timeoutFail({
            duration: "5 seconds",
            onTimeout: () =>
              new ProcessError({ reason: "Timeout", process: child.name, detail: `info-hash ${hash} not served after reload`, log: child.log() })
          })
        )
      )
    yield* Effect.forEach(hashes, waitServed, { discard: true })

    const addInfoHash = (infoHashHex: string) =>
      Effect.gen(function*() {
        const hash = infoHashHex.toLowerCase()
        hashes.push(hash)
        yield* Effect.promise(() => writeFile(whitelist, hashes.map((h) => `${h}\n`).join("")))
        yield* child.signal("SIGHUP")
        yield* waitServed(hash)
      })

    return { port, httpUrl, udpUrl: `udp://127.0.0.1:${port}/announce`, addInfoHash, process: child }
  })
