/**
 * One torrent in a session: its storage, the resume check, and runs of the supervisor with the
 * announcer beside it. Pausing interrupts the run (closing every peer and announcing `stopped`);
 * resuming starts a new run from the pieces verified so far.
 */
import {
  Chunk,
  Data,
  Deferred,
  Effect,
  FiberHandle,
  Option,
  Queue,
  Ref,
  Schedule,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type Metainfo, pieceSize } from "../metainfo/Metainfo.js"
import type { Address, Network } from "../net/Network.js"
import type { OpenedWire } from "../peer/PeerConnection.js"
import type { PeerError } from "../peer/PeerError.js"
import type { PeerId } from "../peer/PeerId.js"
import type { Bitfield } from "../picker/Bitfield.js"
import type { SessionConfig } from "../session/SessionConfig.js"
import * as Resume from "../storage/Resume.js"
import { Storage, type StorageError } from "../storage/Storage.js"
import * as Announcer from "../tracker/Announcer.js"
import type { TrackerClient } from "../tracker/TrackerClient.js"
import type * as Dht from "../dht/Dht.js"
import * as Supervisor from "./Supervisor.js"
import type { TorrentEvent } from "./TorrentEvent.js"

/** Where a torrent is in its life. */
export type State = "checking" | "downloading" | "seeding" | "paused" | "failed" | "removed"

/**
 * A snapshot of a torrent's progress, published every second while it has peers (or is dialing
 * some), and at once when its state or a tracker's status changes.
 */
export interface Progress extends Supervisor.SwarmStats {
  readonly state: State
  readonly name: string
  readonly infoHash: string
  readonly pieceCount: number
  readonly totalLength: number
  /** Pieces checked so far by the resume check (equals `pieceCount` once it is done). */
  readonly checkedPieces: number
  /** Seconds to completion at the current rate; undefined when unknown or complete. */
  readonly eta: number | undefined
  /** Why the torrent failed, when `state` is `failed`. */
  readonly error: string | undefined
  /** Trackers and how they are doing. */
  readonly trackers: ReadonlyArray<Announcer.TrackerStatus>
}

/** Why a torrent stopped before completing. */
export class TorrentError extends Data.TaggedError("TorrentError")<{
  readonly reason: "Storage" | "Removed"
  readonly message: string
  readonly cause?: StorageError
}> {}

/** A torrent added to a session. */
export interface Torrent {
  readonly infoHash: InfoHash.InfoHash
  readonly metainfo: Metainfo
  readonly directory: string
  /** The latest progress. */
  readonly progress: Effect.Effect<Progress>
  /** Progress snapshots, starting with the current one. */
  readonly changes: Stream.Stream<Progress>
  /** Succeeds once every piece is verified and on disk; fails if the torrent fails or is removed first. */
  readonly completed: Effect.Effect<void, TorrentError>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  /** Adds peers to dial (kept across pause/resume). */
  readonly addPeers: (addresses: ReadonlyArray<Address>) => Effect.Effect<void>
  /** Runs an incoming connection for this torrent; closes it at once when the torrent is not running. */
  readonly accept: (wire: OpenedWire) => Effect.Effect<void>
  /** Why the last `MAX_PEER_ERRORS` peer connections (or attempts) ended, oldest first: bans, violations, timeouts. */
  readonly peerErrors: Effect.Effect<ReadonlyArray<PeerError>>
}

/** Peer errors a torrent remembers for `peerErrors`. */
export const MAX_PEER_ERRORS = 1000

/** What a torrent needs from its session. */
export interface Options {
  readonly metainfo: Metainfo
  readonly directory: string
  readonly peerId: PeerId
  /** The port announced to trackers. */
  readonly port: Effect.Effect<number>
  readonly config: SessionConfig
  readonly peers?: ReadonlyArray<Address>
  /** Whether to start paused. */
  readonly paused?: boolean
  /** The session's DHT node, if it runs one (never used for private torrents, BEP 27). */
  readonly dht?: Dht.Dht
}

const MAILBOX_CAPACITY = 256

const emptyStats: Supervisor.SwarmStats = {
  verifiedPieces: 0,
  verifiedBytes: 0,
  downloaded: 0,
  uploaded: 0,
  downloadRate: 0,
  uploadRate: 0,
  peers: 0,
  seeds: 0,
  connecting: 0,
  candidates: 0,
  complete: false
}

/** Opens a torrent's storage and starts it (unless `paused`); everything closes with the scope. */
export const make = (
  options: Options
): Effect.Effect<Torrent, StorageError, Network | Storage | TrackerClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { config, metainfo } = options
    const info = metainfo.info
    const storage = yield* (yield* Storage).open(info, options.directory)
    const progress = yield* SubscriptionRef.make<Progress>({
      ...emptyStats,
      state: "checking",
      name: info.name,
      infoHash: InfoHash.toHex(metainfo.infoHash),
      pieceCount: info.pieceCount,
      totalLength: info.totalLength,
      checkedPieces: 0,
      eta: undefined,
      error: undefined,
      trackers: []
    })
    const completed = yield* Deferred.make<void, TorrentError>()
    const incoming = yield* Ref.make(Option.none<Supervisor.AcceptPeer>())
    const mailboxRef = yield* Ref.make(Option.none<Queue.Enqueue<TorrentEvent>>())
    const manualPeers: Array<Address> = [...(options.peers ?? [])]
    const peerErrors: Array<PeerError> = []
    const running = yield* FiberHandle.make<void, never>()
    let have: Bitfield | undefined
    // Runs outlive the call that started them (resume): they carry the services along.
    const services = yield* Effect.context<Network | TrackerClient>()

    const update = (f: (p: Progress) => Partial<Progress>) => SubscriptionRef.update(progress, (p) => ({ ...p, ...f(p) }))

    const fail = (error: StorageError) =>
      Effect.gen(function* () {
        const failure = new TorrentError({ reason: "Storage", message: error.message, cause: error })
        yield* Effect.logError(`torrent ${info.name} stopped: ${error.message}`)
        yield* update(() => ({ state: "failed" as const, error: error.message }))
        yield* Deferred.fail(completed, failure)
      })

    const runOnce = Effect.gen(function* () {
      if (have === undefined) {
        yield* update(() => ({ state: "checking" as const }))
        have = yield* Resume.check(storage, (checked) => update(() => ({ checkedPieces: checked })))
      }
      const verified = have
      const complete = verified.isComplete
      let verifiedBytes = 0
      for (const index of verified.indices()) verifiedBytes += pieceSize(info, index)
      yield* update(() => ({
        state: complete ? ("seeding" as const) : ("downloading" as const),
        checkedPieces: info.pieceCount,
        verifiedPieces: verified.count,
        verifiedBytes,
        complete
      }))
      if (complete) yield* Deferred.succeed(completed, undefined)

      const mailbox = yield* Effect.acquireRelease(Queue.bounded<TorrentEvent>(MAILBOX_CAPACITY), Queue.shutdown)
      yield* Effect.acquireRelease(Ref.set(mailboxRef, Option.some(mailbox)), () => Ref.set(mailboxRef, Option.none()))
      if (manualPeers.length > 0) yield* Queue.offer(mailbox, { _tag: "PeersFound", addresses: manualPeers, source: "manual" })

      // Announces before the first tick must already say what we have (a seeder announces left=0).
      let latest: Supervisor.SwarmStats = { ...emptyStats, verifiedPieces: verified.count, verifiedBytes, complete }
      const announcer =
        metainfo.trackers.length === 0
          ? undefined
          : yield* Announcer.make({
              tiers: metainfo.trackers,
              infoHash: metainfo.infoHash,
              peerId: options.peerId,
              port: yield* options.port,
              numwant: config.numwant,
              stats: Effect.sync(() => ({
                uploaded: latest.uploaded,
                downloaded: latest.downloaded,
                left: info.totalLength - latest.verifiedBytes
              })),
              onPeers: (addresses) => Queue.offer(mailbox, { _tag: "PeersFound", addresses, source: "tracker" }),
              // Tracker status reaches the progress as it changes: a quiet torrent (no peers) does not tick.
              onStatus: (trackers) => update(() => ({ trackers }))
            })
      const dht = info.private ? undefined : options.dht
      if (dht !== undefined) {
        const port = yield* options.port
        // Look up and announce at once, then every 15 minutes so DHT nodes keep us stored.
        yield* Effect.forkScoped(
          (port > 0
            ? Effect.map(dht.announce(metainfo.infoHash, port), (result): ReadonlyArray<Address> => result.peers)
            : Effect.map(Stream.runCollect(dht.getPeers(metainfo.infoHash)), Chunk.toReadonlyArray)
          ).pipe(
            Effect.flatMap((peers) =>
              peers.length === 0 ? Effect.void : Queue.offer(mailbox, { _tag: "PeersFound", addresses: peers, source: "dht" })
            ),
            Effect.repeat(Schedule.spaced("15 minutes"))
          )
        )
      }

      yield* Supervisor.run({
        metainfo,
        port: yield* options.port,
        peerId: options.peerId,
        storage,
        have: verified,
        config,
        mailbox,
        incoming,
        ...(announcer === undefined ? {} : { needPeers: announcer.needPeers }),
        ...(dht === undefined ? {} : { dht: { port: dht.address.port, addNode: dht.addNode } }),
        onComplete: Effect.gen(function* () {
          yield* update(() => ({ state: "seeding" as const }))
          yield* Deferred.succeed(completed, undefined)
          if (announcer !== undefined) yield* announcer.complete
        }),
        onPeerClosed: (error) =>
          Effect.sync(() => {
            if (peerErrors.push(error) > MAX_PEER_ERRORS) peerErrors.shift()
          }),
        onStats: (stats) =>
          Effect.suspend(() => {
            latest = stats
            const left = info.totalLength - stats.verifiedBytes
            return update(() => ({ ...stats, eta: left > 0 && stats.downloadRate > 1 ? Math.ceil(left / stats.downloadRate) : undefined }))
          })
      })
    }).pipe(Effect.scoped, Effect.catchAll(fail), Effect.provide(services))

    const resume = Effect.gen(function* () {
      const state = (yield* SubscriptionRef.get(progress)).state
      if (state === "failed" || state === "removed") return
      yield* FiberHandle.run(running, runOnce, { onlyIfMissing: true })
    })

    const pause = Effect.gen(function* () {
      yield* FiberHandle.clear(running)
      yield* update((p) => (p.state === "failed" ? {} : { state: "paused" as const, peers: 0, connecting: 0 }))
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* FiberHandle.clear(running)
        yield* Deferred.fail(completed, new TorrentError({ reason: "Removed", message: `${info.name} was removed` }))
        yield* update(() => ({ state: "removed" as const }))
      })
    )
    if (options.paused === true) yield* update(() => ({ state: "paused" as const }))
    else yield* resume

    return {
      infoHash: metainfo.infoHash,
      metainfo,
      directory: options.directory,
      progress: SubscriptionRef.get(progress),
      changes: progress.changes,
      completed: Deferred.await(completed),
      pause,
      resume,
      addPeers: (addresses) =>
        Effect.gen(function* () {
          manualPeers.push(...addresses)
          const mailbox = yield* Ref.get(mailboxRef)
          if (Option.isSome(mailbox)) {
            yield* Queue.offer(mailbox.value, { _tag: "PeersFound", addresses, source: "manual" })
          }
        }),
      accept: (wire) =>
        Effect.flatMap(Ref.get(incoming), Option.match({ onNone: () => wire.connection.close, onSome: (run) => run(wire) })),
      peerErrors: Effect.sync(() => peerErrors.slice())
    } satisfies Torrent
  })
