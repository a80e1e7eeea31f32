/**
 * Fetches a torrent's info dictionary from peers (BEP 9 ut_metadata over BEP 10), for a download
 * that starts from a magnet link. Several peers are asked at once; the first complete copy whose
 * SHA-1 is the info-hash wins, a peer whose copy hashes wrong is never asked again.
 */
import { Chunk, Data, Deferred, Duration, Effect, Either, Fiber, Queue, Schedule, type Scope, Stream } from "effect"
import type * as Dht from "../dht/Dht.js"
import { createHash } from "node:crypto"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type Address, formatAddress, Network } from "../net/Network.js"
import type * as EncryptedHandshake from "../peer/EncryptedHandshake.js"
import { type OpenedWire, withOutgoing } from "../peer/PeerConnection.js"
import type { PeerId } from "../peer/PeerId.js"
import * as Announcer from "../tracker/Announcer.js"
import type { TrackerClient } from "../tracker/TrackerClient.js"
import * as Extension from "../wire/Extension.js"
import * as Framer from "../wire/Framer.js"
import * as Handshake from "../wire/Handshake.js"
import * as Message from "../wire/Message.js"

/** Why metadata could not be fetched. */
export class MetadataError extends Data.TaggedError("MetadataError")<{
  readonly reason: "Timeout"
  readonly message: string
}> {}

/** Why one peer could not give us the metadata (logged, never fatal). */
class PeerMetadataError extends Data.TaggedError("PeerMetadataError")<{
  readonly address: string
  readonly reason: "Connect" | "Handshake" | "NoSupport" | "TooLarge" | "Rejected" | "BadData" | "HashMismatch" | "Closed"
}> {}

/** What to fetch and from where. */
export interface Options {
  readonly infoHash: InfoHash.InfoHash
  readonly peerId: PeerId
  /** Our listening port, for the trackers. */
  readonly port: number
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  readonly peers: ReadonlyArray<Address>
  /** Largest info dictionary accepted (default 16 MiB). */
  readonly maxSize?: number
  /** Peers asked at once (default 5). */
  readonly concurrency?: number
  /** Time one peer has to deliver (default 30 s). */
  readonly peerTimeout?: Duration.DurationInput
  readonly connectTimeout?: Duration.DurationInput
  /** Message stream encryption, as for the download (default "accept": plain). */
  readonly encryption?: EncryptedHandshake.Policy
  /** A DHT node to ask for peers too. */
  readonly dht?: Dht.Dht
}

/** The metadata and the peers learnt while fetching it (worth dialling for the download). */
export interface Fetched {
  readonly infoBytes: Uint8Array
  readonly peers: ReadonlyArray<Address>
}

/** Our extension id for ut_metadata messages sent to us. */
const OUR_UT_METADATA = 1
const DEFAULT_MAX_SIZE = 16 * 1024 * 1024

/** Fetches the info dictionary; runs until it has it (bound it with a timeout). */
export const fetch = (options: Options): Effect.Effect<Fetched, never, Network | TrackerClient | Scope.Scope> =>
  Effect.gen(function* () {
    const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE
    const found = yield* Queue.unbounded<Address>()
    const seen = new Set<string>()
    const learnt: Array<Address> = []
    const offer = (addresses: ReadonlyArray<Address>) =>
      Effect.forEach(
        addresses,
        (address) => {
          const key = formatAddress(address)
          if (seen.has(key) || seen.size >= 10_000) return Effect.void
          seen.add(key)
          learnt.push(address)
          return Queue.offer(found, address)
        },
        { discard: true }
      )
    yield* offer(options.peers)
    if (options.trackers.length > 0) {
      yield* Announcer.make({
        tiers: options.trackers,
        infoHash: options.infoHash,
        peerId: options.peerId,
        port: options.port,
        // Size unknown until the metadata arrives; a non-zero `left` marks us as a leecher.
        stats: Effect.succeed({ uploaded: 0, downloaded: 0, left: 16384 }),
        onPeers: offer
      })
    }
    if (options.dht !== undefined) {
      yield* Effect.forkScoped(
        // Repeated: a lookup that converged before the torrent's seeders announced finds them later.
        Stream.runForEach(Stream.grouped(options.dht.getPeers(options.infoHash), 1), (peers) => offer(Chunk.toReadonlyArray(peers))).pipe(
          Effect.repeat(Schedule.spaced("30 seconds"))
        )
      )
    }
    const result = yield* Deferred.make<Uint8Array>()
    const worker = Effect.forever(
      Effect.gen(function* () {
        const address = yield* Queue.take(found)
        yield* fromPeer(options, address, maxSize).pipe(
          Effect.timeoutFail({
            duration: options.peerTimeout ?? Duration.seconds(30),
            onTimeout: () => new PeerMetadataError({ address: formatAddress(address), reason: "Closed" })
          }),
          Effect.flatMap((bytes) => Deferred.succeed(result, bytes)),
          Effect.catchAll((error) => Effect.logDebug(`metadata from ${error.address}: ${error.reason}`))
        )
      })
    )
    const workers = yield* Effect.forkScoped(
      Effect.all(Array.from({ length: options.concurrency ?? 5 }, () => worker), { concurrency: "unbounded" })
    )
    const infoBytes = yield* Deferred.await(result)
    yield* Fiber.interrupt(workers)
    return { infoBytes, peers: learnt }
  })

/** Asks one peer for the whole info dictionary. */
const fromPeer = (
  options: Options,
  address: Address,
  maxSize: number
): Effect.Effect<Uint8Array, PeerMetadataError, Network> =>
  withOutgoing(
    address,
    options.infoHash,
    Handshake.encode(Handshake.make({ infoHash: options.infoHash, peerId: options.peerId, extensionProtocol: true, fast: true })),
    {
      connectTimeout: options.connectTimeout ?? Duration.seconds(10),
      handshakeTimeout: Duration.seconds(10),
      encryption: options.encryption ?? "accept"
    },
    (wire) => metadataOver(options, wire, maxSize)
  ).pipe(
    Effect.mapError((error) =>
      error._tag === "PeerMetadataError"
        ? error
        : new PeerMetadataError({ address: formatAddress(address), reason: error._tag === "ConnectFailed" ? "Connect" : "Handshake" })
    )
  )

/** Asks the peer at the other end of `wire` for the info dictionary, over ut_metadata. */
const metadataOver = (options: Options, wire: OpenedWire, maxSize: number): Effect.Effect<Uint8Array, PeerMetadataError> =>
  Effect.gen(function* () {
    const { connection } = wire
    const label = formatAddress(connection.remote)
    const fail = (reason: PeerMetadataError["reason"]) => new PeerMetadataError({ address: label, reason })
    const send = (messages: ReadonlyArray<Message.Message>) =>
      connection.write(Message.encodeAll(messages)).pipe(Effect.mapError(() => fail("Closed")))
    if (!InfoHash.equals(wire.handshake.infoHash, options.infoHash)) return yield* fail("Handshake")
    if (!wire.handshake.extensionProtocol) return yield* fail("NoSupport")
    yield* send([
      Message.Extended(
        Extension.HANDSHAKE_ID,
        Extension.encodeHandshake({ extensions: new Map([[Extension.UT_METADATA, OUR_UT_METADATA]]), client: "bitfiber/0.1.0" })
      )
    ])

    // Not `chunksReused`: each batch is decoded before the next read, and a metadata piece is
    // copied out of its message below.
    const framer = Framer.make()
    let pieces: Array<Uint8Array | undefined> | undefined
    let size = 0
    let pending: ReadonlyArray<Uint8Array> = [wire.rest]
    while (true) {
      const batch: Array<Message.Message> = []
      for (const chunk of pending) {
        const decoded = framer.push(chunk)
        if (Either.isLeft(decoded)) return yield* fail("BadData")
        batch.push(...decoded.right)
      }
      for (const message of batch) {
        if (message._tag !== "Extended") continue
        if (message.id === Extension.HANDSHAKE_ID) {
          const handshake = Either.getOrUndefined(Extension.decodeHandshake(message.payload))
          const theirId = handshake?.extensions.get(Extension.UT_METADATA)
          size = handshake?.metadataSize ?? 0
          if (theirId === undefined || theirId === 0 || size <= 0) return yield* fail("NoSupport")
          if (size > maxSize) return yield* fail("TooLarge")
          const count = Math.ceil(size / Extension.METADATA_PIECE_LENGTH)
          pieces = new Array(count).fill(undefined)
          yield* send(
            pieces.map((_, piece) =>
              Message.Extended(theirId, Extension.encodeMetadata({ _tag: "MetadataRequest", piece }))
            )
          )
        } else if (message.id === OUR_UT_METADATA && pieces !== undefined) {
          const decoded = Either.getOrUndefined(Extension.decodeMetadata(message.payload))
          if (decoded === undefined) return yield* fail("BadData")
          if (decoded._tag === "MetadataReject") return yield* fail("Rejected")
          if (decoded._tag !== "MetadataData") continue
          const expected = Math.min(Extension.METADATA_PIECE_LENGTH, size - decoded.piece * Extension.METADATA_PIECE_LENGTH)
          if (decoded.totalSize !== size || decoded.piece >= pieces.length || decoded.data.length !== expected) {
            return yield* fail("BadData")
          }
          pieces[decoded.piece] = Uint8Array.from(decoded.data)
          if (pieces.every((piece) => piece !== undefined)) {
            const bytes = Buffer.concat(pieces as Array<Uint8Array>)
            const hash = createHash("sha1").update(bytes).digest()
            if (!InfoHash.equals(hash, options.infoHash)) return yield* fail("HashMismatch")
            return new Uint8Array(bytes)
          }
        }
      }
      pending = Chunk.toReadonlyArray(yield* wire.connection.read.pipe(Effect.mapError(() => fail("Closed"))))
    }
  })
