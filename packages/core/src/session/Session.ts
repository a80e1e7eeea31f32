/**
 * The public entry point: a session runs many torrents, owns our peer id and the listening
 * socket, and routes each incoming connection to the torrent its handshake names.
 */
import { Context, Data, Duration, Effect, Either, ExecutionStrategy, Exit, Iterable, Layer, Option, Ref, Scope } from "effect"
import * as Dht from "../dht/Dht.js"
import * as InfoHash from "../metainfo/InfoHash.js"
import type * as Magnet from "../metainfo/Magnet.js"
import * as Metainfo from "../metainfo/Metainfo.js"
import type { MetainfoError } from "../metainfo/Metainfo.js"
import { type Address, formatAddress, Network, type NetworkError } from "../net/Network.js"
import * as PeerConnection from "../peer/PeerConnection.js"
import * as PeerId from "../peer/PeerId.js"
import { Storage, type StorageError } from "../storage/Storage.js"
import * as MetadataFetcher from "../torrent/MetadataFetcher.js"
import * as Torrent from "../torrent/Torrent.js"
import { TrackerClient } from "../tracker/TrackerClient.js"
import { SessionConfig } from "./SessionConfig.js"

/** Why a torrent could not be added. */
export class AddError extends Data.TaggedError("AddError")<{
  readonly reason: "Duplicate" | "InvalidTorrent" | "Storage"
  readonly message: string
  readonly cause?: MetainfoError | StorageError
}> {}

/** What to add: a `.torrent`'s bytes or a parsed one, and where its files live. */
export interface AddOptions {
  readonly torrent: Uint8Array | Metainfo.Metainfo
  /** The download directory: the torrent's files go (or are) under it. */
  readonly directory: string
  /** Peers to dial besides those the trackers give. */
  readonly peers?: ReadonlyArray<Address>
  readonly paused?: boolean
}

/** The session service. */
export interface SessionService {
  readonly peerId: PeerId.PeerId
  /** The port incoming peers reach us on (the real one when 0 was configured). */
  readonly port: number
  /** The DHT node, when `config.dht` is on. */
  readonly dht: Dht.Dht | undefined
  readonly add: (options: AddOptions) => Effect.Effect<Torrent.Torrent, AddError>
  /**
   * Adds a torrent from a magnet link: fetches its metadata from peers (the link's `x.pe` peers,
   * its trackers, `peers`) first, then starts it like `add`. Bound the wait with `metadataTimeout`.
   */
  readonly addMagnet: (
    magnet: Magnet.Magnet,
    options: Omit<AddOptions, "torrent"> & { readonly metadataTimeout?: Duration.DurationInput }
  ) => Effect.Effect<Torrent.Torrent, AddError | MetadataFetcher.MetadataError>
  readonly get: (infoHash: InfoHash.InfoHash) => Effect.Effect<Option.Option<Torrent.Torrent>>
  readonly list: Effect.Effect<ReadonlyArray<Torrent.Torrent>>
  /** Stops a torrent (closing its peers and files, announcing `stopped`) and forgets it. Its files stay. */
  readonly remove: (infoHash: InfoHash.InfoHash) => Effect.Effect<void>
}

/** The session tag. */
export class Session extends Context.Tag("bitfiber/Session")<Session, SessionService>() {}

interface Entry {
  readonly torrent: Torrent.Torrent
  readonly scope: Scope.CloseableScope
}

/** Starts a session in the current scope: listens (unless disabled) and serves torrents added to it. */
export const make = (
  config: SessionConfig
): Effect.Effect<SessionService, NetworkError, Network | Storage | TrackerClient | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Network | Storage | TrackerClient>()
    const peerId = PeerId.generate()
    const torrents = yield* Ref.make(new Map<string, Entry>())
    let incomingCount = 0

    const onIncoming = (connection: Parameters<Parameters<typeof network.listen>[1]>[0]) =>
      Effect.gen(function* () {
        if (incomingCount >= config.maxConnections) return
        incomingCount++
        yield* Effect.gen(function* () {
          const known = yield* Ref.get(torrents)
          const wire = yield* PeerConnection.readIncoming(
            connection,
            { timeout: config.handshakeTimeout, encryption: config.encryption },
            () => Iterable.map(known.values(), (entry) => entry.torrent.infoHash)
          )
          const entry = (yield* Ref.get(torrents)).get(InfoHash.toHex(wire.handshake.infoHash))
          if (entry === undefined) {
            return yield* Effect.logDebug(`refused ${formatAddress(connection.remote)}: unknown info-hash`)
          }
          yield* entry.torrent.accept(wire)
        }).pipe(
          Effect.scoped,
          Effect.catchAll((error) => Effect.logDebug(`incoming ${formatAddress(connection.remote)}: ${error._tag}`)),
          Effect.ensuring(Effect.sync(() => incomingCount--))
        )
      })

    const port = config.listen
      ? (yield* network.listen({ host: config.listenHost, port: config.port }, onIncoming)).address.port
      : 0
    const dht = config.dht ? yield* startDht(config, port) : undefined

    const add = (options: AddOptions) =>
      Effect.gen(function* () {
        const metainfo =
          options.torrent instanceof Uint8Array
            ? yield* Either.mapLeft(
                Metainfo.parse(options.torrent),
                (cause) => new AddError({ reason: "InvalidTorrent", message: cause.message, cause })
              )
            : options.torrent
        const key = InfoHash.toHex(metainfo.infoHash)
        if ((yield* Ref.get(torrents)).has(key)) {
          return yield* new AddError({ reason: "Duplicate", message: `${metainfo.info.name} (${key}) is already added` })
        }
        const torrentScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const torrent = yield* Torrent.make({
          metainfo,
          directory: options.directory,
          peerId,
          port: Effect.succeed(port),
          config,
          ...(dht === undefined ? {} : { dht }),
          ...(options.peers === undefined ? {} : { peers: options.peers }),
          ...(options.paused === undefined ? {} : { paused: options.paused })
        }).pipe(
          Scope.extend(torrentScope),
          Effect.provide(context),
          Effect.tapError((error) => Scope.close(torrentScope, Exit.fail(error))),
          Effect.mapError((cause) => new AddError({ reason: "Storage", message: cause.message, cause }))
        )
        yield* Ref.update(torrents, (map) => new Map(map).set(key, { torrent, scope: torrentScope }))
        return torrent
      })

    const addMagnet: SessionService["addMagnet"] = (magnet, options) =>
      Effect.gen(function* () {
        const key = InfoHash.toHex(magnet.infoHash)
        if ((yield* Ref.get(torrents)).has(key)) {
          return yield* new AddError({ reason: "Duplicate", message: `${magnet.name ?? key} is already added` })
        }
        const trackers = magnet.trackers.map((url) => [url])
        const fetch = MetadataFetcher.fetch({
          infoHash: magnet.infoHash,
          peerId,
          port,
          trackers,
          peers: [...magnet.peers, ...(options.peers ?? [])],
          encryption: config.encryption,
          ...(dht === undefined ? {} : { dht })
        }).pipe(Effect.scoped, Effect.provide(context))
        const fetched = yield* (options.metadataTimeout === undefined
          ? fetch
          : fetch.pipe(
              Effect.timeoutFail({
                duration: options.metadataTimeout,
                onTimeout: () =>
                  new MetadataFetcher.MetadataError({
                    reason: "Timeout",
                    message: `no peer sent the metadata of ${magnet.name ?? key} in ${Duration.format(options.metadataTimeout!)}`
                  })
              })
            ))
        const parsed = yield* Either.mapLeft(
          Metainfo.parseInfo(fetched.infoBytes, magnet.infoHash),
          (cause) => new AddError({ reason: "InvalidTorrent", message: cause.message, cause })
        )
        return yield* add({
          ...options,
          torrent: { ...parsed, trackers, urlList: magnet.webSeeds },
          peers: fetched.peers
        })
      })

    const remove = (infoHash: InfoHash.InfoHash) =>
      Effect.gen(function* () {
        const key = InfoHash.toHex(infoHash)
        const entry = (yield* Ref.get(torrents)).get(key)
        if (entry === undefined) return
        yield* Ref.update(torrents, (map) => {
          const next = new Map(map)
          next.delete(key)
          return next
        })
        yield* Scope.close(entry.scope, Exit.void)
      })

    return {
      peerId,
      port,
      dht,
      add,
      addMagnet,
      get: (infoHash) => Effect.map(Ref.get(torrents), (map) => Option.fromNullable(map.get(InfoHash.toHex(infoHash))?.torrent)),
      list: Effect.map(Ref.get(torrents), (map) => [...map.values()].map((entry) => entry.torrent)),
      remove
    } satisfies SessionService
  })

/** Starts the DHT node on the same port number as TCP (UDP), bootstrapping in the background. */
const startDht = (config: SessionConfig, port: number) =>
  Effect.gen(function* () {
    const bootstrap = config.dhtBootstrap.flatMap((text) => {
      const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text)
      return match === null ? [] : [{ host: match[1]!, port: Number(match[2]) }]
    })
    const dht = yield* Dht.make({ address: { host: config.listenHost, port }, bootstrap })
    yield* Effect.forkScoped(dht.bootstrap)
    return dht
  })

/** A session layer from a (partial) configuration. */
export const layer = (
  config: SessionConfig
): Layer.Layer<Session, NetworkError, Network | Storage | TrackerClient> => Layer.scoped(Session, make(config))

export { SessionConfig }
