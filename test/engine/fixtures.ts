import { NodeNetwork, NodeStorage, Session, SessionConfig, TrackerClient } from "@bitfiber/core"
import type { Metainfo } from "@bitfiber/core"
import { Effect, Fiber, Layer, Option, TestClock } from "effect"
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"

/** The live services a session runs on, over real loopback sockets and files. */
export const liveServices = Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer()).pipe(
  Layer.provideMerge(NodeNetwork.layer)
)

/** A temporary directory removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(Path.join(tmpdir(), "bitfiber-test-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** Writes a torrent's content as its files under `dir` (padding files skipped). */
export const writeContent = (metainfo: Metainfo.Metainfo, content: Uint8Array, dir: string) =>
  Effect.promise(async () => {
    for (const file of metainfo.info.files) {
      if (file.padding) continue
      const path = Path.join(dir, ...file.path)
      await mkdir(Path.dirname(path), { recursive: true })
      await writeFile(path, content.subarray(file.offset, file.offset + file.length))
    }
  })

/** Reads a torrent's files back from `dir` as one buffer (padding as zeros). */
export const readContent = (metainfo: Metainfo.Metainfo, dir: string) =>
  Effect.promise(async () => {
    const out = new Uint8Array(metainfo.info.totalLength)
    for (const file of metainfo.info.files) {
      if (file.padding) continue
      out.set(await readFile(Path.join(dir, ...file.path)), file.offset)
    }
    return out
  })

/** A session on 127.0.0.1 with an ephemeral port. */
export const loopbackSession = (config: SessionConfig.SessionConfigInput = {}) =>
  Effect.flatMap(
    SessionConfig.make({ listenHost: "127.0.0.1", port: 0, ...config }).pipe(Effect.orDie),
    Session.make
  )

/** Advances the TestClock a second at a time until `fiber` is done (at most `maxSeconds`), then joins it. */
export const runUnderTestClock = <A, E>(fiber: Fiber.Fiber<A, E>, maxSeconds: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSeconds && Option.isNone(yield* Fiber.poll(fiber)); i++) yield* TestClock.adjust("1 second")
    return yield* Fiber.join(fiber)
  })
