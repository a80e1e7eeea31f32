/**
 * Crash and resume for real: the `bitfiber download` executable is SIGKILLed mid-download
 * against a bitfiber seeder on loopback, started again, and finishes with identical bytes,
 * downloading only what the first run had not verified.
 */
import { Network, NodeNetwork, NodeStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import { TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const main = path.resolve(import.meta.dirname, "../../packages/cli/src/main.ts")
// By absolute URL: the runs' working directory is a temp dir, where "tsx" would not resolve.
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

const test = TestTorrent.make({ files: [{ path: "payload.bin", length: 6 * 1024 * 1024 }], pieceLength: 256 * 1024, seed: 9 })
const { totalLength } = test.metainfo.info
/** The seeder's upload rate: the download takes about 6 s, time enough to kill it halfway. */
const RATE = 1024 * 1024

/** One `--json` line of `bitfiber download`. */
interface JsonLine {
  readonly type: "progress" | "done"
  readonly state?: string
  readonly verifiedBytes?: number
  readonly verifiedPieces?: number
  readonly downloaded: number
  readonly totalLength: number
}

/** A Network whose accepted connections write at most `bytesPerSecond` (on the live clock). */
const throttled = (network: Network.Network["Type"], bytesPerSecond: number): Network.Network["Type"] => ({
  ...network,
  listen: (address, handler) =>
    network.listen(address, (connection) =>
      handler({
        ...connection,
        write: (bytes) => Effect.zipRight(connection.write(bytes), Effect.sleep(Duration.millis((Network.byteLength(bytes) * 1000) / bytesPerSecond)))
      }))
})

/**
 * Runs `bitfiber download --json` until it exits, or until `killWhen` holds for a progress line
 * (then SIGKILLs it); returns its JSON lines and exit code.
 */
const download = (args: ReadonlyArray<string>, cwd: string, killWhen: (line: JsonLine) => boolean = () => false) =>
  Effect.async<{ readonly lines: ReadonlyArray<JsonLine>; readonly code: number | null; readonly signal: string | null; readonly stderr: string }>(
    (resume) => {
      const child = spawn(process.execPath, ["--conditions=@bitfiber/source", "--import", tsx, main, "download", ...args, "--json"], {
        cwd,
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<JsonLine> = []
      let buffered = ""
      let stderr = ""
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString()
        let newline: number
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffered.slice(0, newline)) as JsonLine
          buffered = buffered.slice(newline + 1)
          lines.push(line)
          if (killWhen(line)) child.kill("SIGKILL")
        }
      })
      child.on("close", (code, signal) => resume(Effect.succeed({ lines, code, signal, stderr })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }
  )

const fraction = (line: JsonLine) => (line.verifiedBytes ?? 0) / totalLength

describe("crash and resume of the real executable", () => {
  it.scopedLive("SIGKILLed at 30-70%, restarted: identical bytes, and only the missing part downloaded", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-crash-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const seedDir = path.join(dir, "seed")
      const downloadDir = path.join(dir, "download")
      fs.mkdirSync(seedDir)
      fs.writeFileSync(path.join(seedDir, "payload.bin"), test.content)
      fs.writeFileSync(path.join(dir, "t.torrent"), test.torrent)

      // A bitfiber seeder in this process, on loopback, uploading at RATE.
      // Built once for the test's scope: the torrent keeps using the storage (and its disk thread) after `add`.
      const live = yield* Layer.build(
        Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer()).pipe(Layer.provideMerge(NodeNetwork.layer))
      )
      const seeder = yield* Effect.gen(function* () {
        const network = yield* Network.Network
        const config = yield* SessionConfig.make({ listenHost: "127.0.0.1", port: 0 })
        return yield* Session.make(config).pipe(Effect.provideService(Network.Network, throttled(network, RATE)))
      }).pipe(Effect.provide(live))
      const seeding = yield* seeder.add({ torrent: test.metainfo, directory: seedDir }).pipe(Effect.provide(live))
      yield* seeding.completed

      const args = ["t.torrent", "-o", downloadDir, "--peer", `127.0.0.1:${seeder.port}`, "--port", "0"]
      const first = yield* download(args, dir, (line) => line.type === "progress" && fraction(line) >= 0.3)
      expect(first.signal, first.stderr).toBe("SIGKILL")
      const killedAt = fraction(first.lines.at(-1)!)
      expect(killedAt).toBeGreaterThanOrEqual(0.3)
      expect(killedAt).toBeLessThanOrEqual(0.7)

      const second = yield* download(args, dir)
      expect(second.code, second.stderr).toBe(0)
      const resumed = second.lines.find((line) => line.type === "progress" && line.state === "downloading")
      // The check found what the first run had verified (at least what it last reported).
      expect(resumed?.verifiedBytes).toBeGreaterThanOrEqual(killedAt * totalLength)
      const done = second.lines.at(-1)!
      expect(done.type).toBe("done")
      // Only the pieces the first run had not verified were downloaded again.
      expect(done.downloaded).toBeGreaterThan(0)
      expect(done.downloaded).toBeLessThanOrEqual((1 - killedAt) * totalLength)
      const bytes = fs.readFileSync(path.join(downloadDir, "payload.bin"))
      expect(Buffer.compare(bytes, test.content)).toBe(0)
    }), 150_000)
})
