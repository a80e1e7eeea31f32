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
import * as MemoryNetwork from "./MemoryNetwork.js"
import type { TestTorrent } from "./TestTorrent.js"

/** The services a simulated host runs a session on. */
export type HostServices = Network | Storage | MemoryStorage.MemoryDisk | TrackerClient.TrackerClient

/** One simulated machine: its name on the switchboard and its services. */
export interface Host {
  readonly name: string
  readonly services: Context.Context<HostServices>
}

/** The port hosts' sessions listen on. */
export const PORT = 6881

/** Download directory on every host's disk. */
export const DIRECTORY = "/data"

/**
 * A host `name` on `switchboard`: its view of the network, an empty memory disk, and the live
 * tracker client over its view (or `trackerClient`, e.g. a `FakeTracker.client`).
 */
export const host = (
  switchboard: MemoryNetwork.Switchboard,
  name: string,
  options?: { readonly trackerClient?: Layer.Layer<TrackerClient.TrackerClient, never, Network> }
): Effect.Effect<Host, never, Scope.Scope> =>
  Effect.map(
    Layer.build(
      Layer.mergeAll(MemoryStorage.layer, options?.trackerClient ?? TrackerClient.layer()).pipe(
        Layer.provideMerge(MemoryNetwork.layer(switchboard, { host: name }))
      )
    ),
    (services) => ({ name, services })
  )

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
