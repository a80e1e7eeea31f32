/** The two Storage implementations under test, each with a way to see the files it holds. */
import { MemoryStorage, NodeStorage, type Storage } from "@bitfiber/core"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { Context, Effect, Layer, Option, type Scope } from "effect"

/** Where a test's torrent lives and what ended up there. */
export class TestDisk extends Context.Tag("test/TestDisk")<
  TestDisk,
  {
    /** A fresh, empty download directory for one test. */
    readonly directory: Effect.Effect<string, never, Scope.Scope>
    /** The bytes of the file at `path`, none if it does not exist. */
    readonly file: (path: string) => Effect.Effect<Option.Option<Uint8Array>>
    /** Stores a file (creating directories), as if it was there before the torrent opened. */
    readonly put: (path: string, bytes: Uint8Array) => Effect.Effect<void>
  }
>() {}

/** Bound on open handles in the node layer: small, so tests cross it. */
export const maxOpenFiles = 4

const nodeDisk = Layer.succeed(TestDisk, {
  directory: Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(NodePath.join(Os.tmpdir(), "bitfiber-storage-"))),
    (directory) => Effect.promise(() => Fs.rm(directory, { recursive: true, force: true }))
  ),
  file: (path) =>
    Effect.promise(() => Fs.readFile(path).then((bytes) => Option.some(new Uint8Array(bytes)), () => Option.none())),
  put: (path, bytes) =>
    Effect.promise(() => Fs.mkdir(NodePath.dirname(path), { recursive: true }).then(() => Fs.writeFile(path, bytes)))
})

let memoryDirectories = 0
const memoryDisk = Layer.effect(
  TestDisk,
  Effect.map(MemoryStorage.MemoryDisk, (disk) => ({
    directory: Effect.sync(() => `/memory/${++memoryDirectories}`),
    file: disk.file,
    put: disk.put
  }))
)

/** Both implementations, for suites that must behave the same on each. */
export const implementations: ReadonlyArray<{
  readonly name: string
  readonly layer: Layer.Layer<Storage.Storage | TestDisk>
}> = [
  { name: "NodeStorage", layer: Layer.merge(NodeStorage.layer({ maxOpenFiles }), nodeDisk) },
  { name: "MemoryStorage", layer: Layer.provideMerge(memoryDisk, MemoryStorage.layer) }
]
