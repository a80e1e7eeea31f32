/**
 * `bitfiber demo`: a whole swarm on this machine, no internet needed. Makes a sample payload,
 * starts the embedded tracker and several seeders on loopback, downloads the payload with the
 * live progress display, checks the bytes and prints a summary.
 */
import { Create, InfoHash, NodeNetwork, type Session, TrackerServer } from "@bitfiber/core"
import { Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Either } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { CommandError } from "../CommandError.js"
import * as Engine from "../Engine.js"
import * as ExitCode from "../ExitCode.js"
import * as Format from "../ui/Format.js"
import * as Progress from "../ui/Progress.js"
import * as StatusLine from "../ui/StatusLine.js"

const NAME = "bitfiber-demo"

/** The sample payload: a few files of pseudo-random bytes in nested directories, `size` bytes in all. */
const layout = (size: number) => [
  { path: ["README.txt"], length: Math.min(4096, size) },
  { path: ["video", "sample.bin"], length: Math.floor(size * 0.6) },
  { path: ["video", "empty.txt"], length: 0 },
  { path: ["data", "set", "table.bin"], length: Math.max(0, size - Math.min(4096, size) - Math.floor(size * 0.6)) }
]

const writePayload = (root: string, size: number) =>
  Effect.promise(async () => {
    for (const file of layout(size)) {
      const path = Path.join(root, NAME, ...file.path)
      await mkdir(Path.dirname(path), { recursive: true })
      await writeFile(path, randomBytes(file.length))
    }
  })

const sha256 = (path: string) =>
  Effect.async<string>((resume) => {
    const hash = createHash("sha256")
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resume(Effect.succeed(hash.digest("hex"))))
      .on("error", () => resume(Effect.succeed("unreadable")))
  })

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(Path.join(tmpdir(), "bitfiber-demo-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** The `demo` command. */
export const command = Command.make(
  "demo",
  {
    size: Options.text("size").pipe(
      Options.withDescription("payload size, e.g. 64M, 1G"),
      Options.withDefault("64M")
    ),
    seeders: Options.integer("seeders").pipe(Options.withDescription("seeders in the swarm"), Options.withDefault(3))
  },
  (options) =>
    Effect.scoped(
      Effect.gen(function*() {
        const size = yield* Either.match(Format.parseSize(options.size), {
          onLeft: (problem) => Effect.fail(new CommandError({ problem, remedy: "give a size like 64M or 1G", exitCode: ExitCode.Usage })),
          onRight: Effect.succeed
        })
        if (options.seeders < 1 || options.seeders > 20) {
          return yield* new CommandError({ problem: `--seeders ${options.seeders} is out of range`, remedy: "use 1 to 20 seeders", exitCode: ExitCode.Usage })
        }
        const root = yield* tempDir
        const seedDir = Path.join(root, "seed")
        const leechDir = Path.join(root, "download")
        yield* Console.error(`demo: a swarm of ${options.seeders} seeders and 1 downloader on 127.0.0.1, in ${root}`)
        yield* writePayload(seedDir, size)

        const tracker = yield* TrackerServer.make({ http: { host: "127.0.0.1", port: 0 }, interval: 60 }).pipe(
          Effect.provide(NodeNetwork.layer)
        )
        const announceUrl = tracker.http!.announceUrl
        const hashing = yield* Progress.make({ label: "hashing" })
        const created = yield* Create.make(
          { path: Path.join(seedDir, NAME), trackers: [[announceUrl]], comment: "bitfiber demo" },
          (p) => hashing.update(p.hashedBytes, p.totalBytes)
        )
        yield* hashing.finish
        const { metainfo } = created
        yield* Console.error(
          `torrent: ${InfoHash.toHex(metainfo.infoHash)}, ${Format.bytes(metainfo.info.totalLength)} in ${metainfo.info.files.length} files, ${metainfo.info.pieceCount} pieces; tracker ${announceUrl}`
        )

        const seeders: Array<Session.SessionService> = []
        for (let i = 0; i < options.seeders; i++) {
          const session = yield* Engine.session({ listenHost: "127.0.0.1", port: 0 }, true)
          const torrent = yield* session.add({ torrent: created.torrent, directory: seedDir })
          yield* torrent.completed
          seeders.push(session)
        }
        yield* Console.error(`seeders ready on ports ${seeders.map((s) => s.port).join(", ")}`)

        const leecher = yield* Engine.session({ listenHost: "127.0.0.1", port: 0 }, true)
        const started = yield* Clock.currentTimeMillis
        const download = yield* leecher.add({ torrent: created.torrent, directory: leechDir })
        const status = yield* StatusLine.make(StatusLine.stderr())
        yield* Effect.forkScoped(Engine.watch(download, status, false))
        yield* download.completed
        const seconds = Math.max(0.001, ((yield* Clock.currentTimeMillis) - started) / 1000)
        const progress = yield* download.progress
        yield* status.done(
          `downloaded ${Format.bytes(metainfo.info.totalLength)} in ${Format.duration(seconds)} (${Format.rate(metainfo.info.totalLength / seconds)}) from ${progress.peers} peers`
        )

        let identical = true
        for (const file of metainfo.info.files) {
          const [source, copy] = yield* Effect.all([
            sha256(Path.join(seedDir, ...file.path)),
            sha256(Path.join(leechDir, ...file.path))
          ])
          if (source !== copy) identical = false
          yield* Console.log(`${source === copy ? "ok " : "BAD"}  ${Format.bytes(file.length).padStart(10)}  ${file.path.join("/")}`)
        }
        if (!identical) {
          return yield* new CommandError({
            problem: "the downloaded files differ from the originals",
            remedy: "this is a bug; please report it with BITFIBER_DEBUG=1 output",
            exitCode: ExitCode.Internal
          })
        }
        yield* Console.log(`all ${metainfo.info.files.length} files identical (sha256); every one of ${metainfo.info.pieceCount} pieces verified (SHA-1)`)
      })
    )
).pipe(Command.withDescription("Run a local demo swarm (tracker, seeders, a download) on loopback, with no internet."))
