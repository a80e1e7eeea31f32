/**
 * The Promise facade for code that does not use Effect: `createClient()` starts a session on the
 * live network and disk; torrents expose `done()` and an async iterator of progress.
 */
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { readFile } from "node:fs/promises"
import * as InfoHash from "../metainfo/InfoHash.js"
import type { Address } from "../net/Network.js"
import * as NodeNetwork from "../net/NodeNetwork.js"
import * as NodeStorage from "../storage/NodeStorage.js"
import type * as Torrent from "../torrent/Torrent.js"
import * as TrackerClient from "../tracker/TrackerClient.js"
import { Session } from "./Session.js"
import * as SessionModule from "./Session.js"
import * as SessionConfig from "./SessionConfig.js"

/** A torrent of a client. */
export interface ClientTorrent {
  readonly infoHash: string
  readonly name: string
  /** Resolves when every piece is verified and on disk; rejects if the torrent fails or is removed. */
  readonly done: () => Promise<void>
  /** The latest progress. */
  readonly progress: () => Promise<Torrent.Progress>
  /** Progress snapshots as they change (about once a second). */
  readonly updates: () => AsyncIterable<Torrent.Progress>
  readonly pause: () => Promise<void>
  readonly resume: () => Promise<void>
  /** Stops the torrent and forgets it; its files stay on disk. */
  readonly remove: () => Promise<void>
}

/** A running session. */
export interface Client {
  /** The port incoming peers reach us on. */
  readonly port: number
  /** Adds a torrent from a `.torrent` path or its bytes. */
  readonly add: (
    torrent: string | Uint8Array,
    options: { readonly directory: string; readonly peers?: ReadonlyArray<Address> }
  ) => Promise<ClientTorrent>
  /** Stops every torrent and closes every socket and file. */
  readonly close: () => Promise<void>
}

/** Starts a client with the given configuration (see `SessionConfig` for the fields and defaults). */
export const createClient = async (config: SessionConfig.SessionConfigInput = {}): Promise<Client> => {
  const services = Layer.mergeAll(NodeStorage.layer(), TrackerClient.layer()).pipe(Layer.provideMerge(NodeNetwork.layer))
  const session = Layer.unwrapEffect(Effect.map(Effect.orDie(SessionConfig.make(config)), SessionModule.layer))
  const runtime = ManagedRuntime.make(session.pipe(Layer.provide(services)))
  const service = await runtime.runPromise(Session)
  const runtimeValue = await runtime.runtime()

  const wrap = (torrent: Torrent.Torrent): ClientTorrent => ({
    infoHash: InfoHash.toHex(torrent.infoHash),
    name: torrent.metainfo.info.name,
    done: () => runtime.runPromise(torrent.completed),
    progress: () => runtime.runPromise(torrent.progress),
    updates: () => Stream.toAsyncIterableRuntime(torrent.changes, runtimeValue),
    pause: () => runtime.runPromise(torrent.pause),
    resume: () => runtime.runPromise(torrent.resume),
    remove: () => runtime.runPromise(service.remove(torrent.infoHash))
  })

  return {
    port: service.port,
    add: (torrent, options) =>
      runtime.runPromise(
        Effect.gen(function* () {
          const bytes = typeof torrent === "string" ? yield* Effect.promise(() => readFile(torrent)) : torrent
          return wrap(
            yield* service.add({
              torrent: bytes,
              directory: options.directory,
              ...(options.peers === undefined ? {} : { peers: options.peers })
            })
          )
        })
      ),
    close: () => runtime.dispose()
  }
}
