/**
 * Builders for simulated swarms on a `MemoryNetwork`: hosts that each run a real bitfiber
 * Session on their own view of the network and their own memory disk, honest seeders made of
 * them, and reading a torrent's bytes back from a host's disk.
 */
import { Context, Effect, Layer, Option, type Scope } from "effect"
import * as NodePath from "node:path"
import type { Metainfo } from "../metainfo/Metainfo.js"
import type { Address, Network, NetworkError } from "../net/Network.js"
import * as Session from "../session/Session.js"
import * as SessionConfig from "../session/SessionConfig.js"
import * as MemoryStorage from "../storage/MemoryStorage.js"
import type { Storage } from "../storage/Storage.js"
import type { Torrent } from "../torrent/Torrent.js"
import * as TrackerClient from "../tracker/TrackerClient.js"
import * as FaultyStorage from "./FaultyStorage.js"
import * as MemoryNetwork from "./MemoryNetwork.js"
import type { TestTorrent } from "./TestTorrent.js"

/** The services a simulated host runs a session on. */
export type HostServices = Network | Storage | MemoryStorage.MemoryDisk | TrackerClient.TrackerClient

/** One simulated machine: its name on the switchboard and its services. */
export interface Host {
  readonly name: string
  readonly services: Context.Context<HostServices>
  /** The disk's fault control, when the host was made with `faults`. */
  readonly faults: Option.Option<FaultyStorage.Control["Type"]>
}

/** A memory disk (a `MemoryStorage` layer built once), to give several hosts or sessions the same files. */
export type Disk = Context.Context<Storage | MemoryStorage.MemoryDisk>

/** A fresh memory disk that lives as long as the scope. */
export const disk: Effect.Effect<Disk, never, Scope.Scope> = Layer.build(MemoryStorage.layer)

/** How a host is built. */
export interface HostOptions {
  /** The tracker client (default: the live one over the host's view; e.g. `FakeTracker.client(...)`). */
  readonly trackerClient?: Layer.Layer<TrackerClient.TrackerClient, never, Network>
  /** The disk (default: a fresh one); pass the disk of an earlier host to restart on its files. */
  readonly disk?: Disk
  /** Faults of the disk, through `FaultyStorage` (the files still land on `disk`). */
  readonly faults?: FaultyStorage.Faults
}

/** The port hosts' sessions listen on. */
export const PORT = 6881

/** Download directory on every host's disk. */
export const DIRECTORY = "/data"

/**
 * A host `name` on `switchboard`: its view of the network, a memory disk (fresh, or `disk`),
 * optionally with `faults`, and a tracker client (the live one over its view by default).
 */
export const host = (
  switchboard: MemoryNetwork.Switchboard,
  name: string,
  options?: HostOptions
): Effect.Effect<Host, never, Scope.Scope> =>
  Effect.gen(function* () {
    const files = options?.disk ?? (yield* disk)
    const faulty = options?.faults === undefined
      ? Option.none()
      : Option.some(yield* Layer.build(Layer.provide(FaultyStorage.layer(options.faults), Layer.succeedContext(files))))
    const network = yield* Layer.build(
      Layer.provideMerge(options?.trackerClient ?? TrackerClient.layer(), MemoryNetwork.layer(switchboard, { host: name }))
    )
    const services = Context.merge(Context.merge(files, network), Option.getOrElse(faulty, () => Context.empty()))
    return { name, services, faults: Option.map(faulty, Context.get(FaultyStorage.Control)) }
  })

/** Where a host's session listens. */
export const address = (host: Host): Address => ({ host: host.name, port: PORT })

/** A session on `host` listening on `PORT`, with `config` over the defaults; it ends with the scope. */
export const session = (
  host: Host,
  config?: SessionConfig.SessionConfigInput
): Effect.Effect<Session.SessionService, NetworkError, Scope.Scope> =>
  SessionConfig.make({ port: PORT, ...config }).pipe(
    Effect.orDie,
    Effect.flatMap(Session.make),
    Effect.provide(host.services)
  )

/** Puts `content` on `host`'s disk as the files of `metainfo` under `directory` (padding left out). */
export const putContent = (host: Host, metainfo: Metainfo, content: Uint8Array, directory = DIRECTORY) =>
  Effect.flatMap(MemoryStorage.MemoryDisk, (disk) =>
    Effect.forEach(
      metainfo.info.files.filter((file) => !file.padding),
      (file) => disk.put(NodePath.join(directory, ...file.path), content.subarray(file.offset, file.offset + file.length)),
      { discard: true }
    )).pipe(Effect.provide(host.services))

/**
 * The torrent's bytes as `host`'s disk holds them (padding as zeros), `None` while a file is
 * missing or short.
 */
export const readContent = (host: Host, metainfo: Metainfo, directory = DIRECTORY) =>
  Effect.gen(function* () {
    const disk = yield* MemoryStorage.MemoryDisk
    const out = new Uint8Array(metainfo.info.totalLength)
    for (const file of metainfo.info.files) {
      if (file.padding) continue
      const bytes = yield* disk.file(NodePath.join(directory, ...file.path))
      if (Option.isNone(bytes) || bytes.value.length !== file.length) return Option.none<Uint8Array>()
      out.set(bytes.value, file.offset)
    }
    return Option.some(out)
  }).pipe(Effect.provide(host.services))

/** A running honest bitfiber peer. */
export interface EnginePeer {
  readonly host: Host
  readonly session: Session.SessionService
  readonly torrent: Torrent
  /** Where other peers reach it. */
  readonly address: Address
}

/** An honest bitfiber seeder of `test` on `host`: the files are put on its disk, then the torrent added. */
export const seeder = (
  host: Host,
  test: TestTorrent,
  config?: SessionConfig.SessionConfigInput
): Effect.Effect<EnginePeer, NetworkError | Session.AddError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* putContent(host, test.metainfo, test.content)
    const running = yield* session(host, config)
    const torrent = yield* running.add({ torrent: test.metainfo, directory: DIRECTORY })
    return { host, session: running, torrent, address: address(host) }
  })

/** An honest bitfiber leecher of `test` on `host`, dialing `peers`. */
export const leecher = (
  host: Host,
  test: TestTorrent,
  peers: ReadonlyArray<Address>,
  config?: SessionConfig.SessionConfigInput
): Effect.Effect<EnginePeer, NetworkError | Session.AddError, Scope.Scope> =>
  Effect.gen(function* () {
    const running = yield* session(host, config)
    const torrent = yield* running.add({ torrent: test.metainfo, directory: DIRECTORY, peers })
    return { host, session: running, torrent, address: address(host) }
  })

/** Whether `host`'s disk holds exactly `test`'s bytes. */
export const hasContent = (host: Host, test: TestTorrent) =>
  Effect.map(readContent(host, test.metainfo), Option.exists((bytes) => Buffer.compare(bytes, test.content) === 0))
