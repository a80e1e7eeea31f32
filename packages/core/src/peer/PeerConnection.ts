/**
 * The per-peer actor: handshake, then a reader fiber (socket -> Framer -> torrent mailbox) and a
 * writer fiber (outbox -> socket), plus keep-alives. Requests the peer makes of us are served
 * here, not by the supervisor, so uploading never waits on the torrent's mailbox.
 */
import { Chunk, Deferred, Duration, Effect, Either, Option, Queue, Schedule } from "effect"
import { type Info, pieceSize as pieceLength } from "../metainfo/Metainfo.js"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type Address, type Connection, formatAddress, Network } from "../net/Network.js"
import * as BitfieldModule from "../picker/Bitfield.js"
import type { ReadCache } from "../storage/ReadCache.js"
import type { TorrentEvent } from "../torrent/TorrentEvent.js"
import type { BlockPool } from "../wire/BlockPool.js"
import * as Framer from "../wire/Framer.js"
import * as Handshake from "../wire/Handshake.js"
import * as Message from "../wire/Message.js"
import {
  ConnectFailed,
  ConnectionLost,
  Dropped,
  HandshakeFailed,
  IdleTimeout,
  type PeerError,
  ProtocolViolation,
  readFailed
} from "./PeerError.js"
import * as EncryptedHandshake from "./EncryptedHandshake.js"
import type { PeerLink } from "./PeerLink.js"
import type { PeerId } from "./PeerId.js"

/** Timeouts and limits of one connection. */
export interface PeerConfig {
  readonly connectTimeout: Duration.DurationInput
  readonly handshakeTimeout: Duration.DurationInput
  /** Message stream encryption: see `SessionConfig.encryption`. */
  readonly encryption: EncryptedHandshake.Policy
  /** A peer that sends nothing (not even a keep-alive) for this long is dropped. */
  readonly idleTimeout: Duration.DurationInput
  readonly keepAliveInterval: Duration.DurationInput
  readonly maxMessageLength: number
  /** Requests from the peer queued for upload; more are rejected (fast extension) or ignored. */
  readonly maxPendingUploads: number
  /** Largest block a peer may request. */
  readonly maxBlockLength: number
}

/** What a connection needs of its torrent. */
export interface PeerContext {
  readonly infoHash: InfoHash.InfoHash
  readonly peerId: PeerId
  readonly info: Info
  /** Our verified pieces: the supervisor's live bitfield, read here to validate requests. */
  readonly have: BitfieldModule.Bitfield
  /** Our pieces' blocks, for uploads. */
  readonly pieces: ReadCache
  readonly events: Queue.Enqueue<TorrentEvent>
  /** Where received blocks are copied; the torrent gives each back once it is in its piece. */
  readonly blocks: BlockPool
  readonly config: PeerConfig
  /** Whether we run a DHT node (the BEP 5 reserved bit). */
  readonly dht: boolean
}

/** A connection whose handshake has been read, and the bytes that followed it. */
export interface OpenedWire {
  readonly connection: Connection
  readonly handshake: Handshake.Handshake
  /** Bytes that arrived after the handshake in the same read: valid until the connection's next read. */
  readonly rest: Uint8Array
}

type Outgoing = Message.Message | { readonly _tag: "Upload"; readonly request: Message.Request }

const ourHandshake = (ctx: PeerContext) =>
  Handshake.encode(
    Handshake.make({ infoHash: ctx.infoHash, peerId: ctx.peerId, fast: true, extensionProtocol: true, dht: ctx.dht })
  )

/** Reads the 68-byte handshake from a fresh connection. */
export const readHandshake = (
  connection: Connection,
  timeout: Duration.DurationInput
): Effect.Effect<OpenedWire, HandshakeFailed | ConnectionLost> =>
  withTimeout(connection, timeout, readHandshakeAfter(connection, new Uint8Array(0)))

/**
 * Reads the handshake of a fresh incoming connection, plain or after a key exchange (message
 * stream encryption) that names one of `infoHashes`.
 */
export const readIncoming = (
  connection: Connection,
  options: { readonly timeout: Duration.DurationInput; readonly encryption: EncryptedHandshake.Policy },
  infoHashes: () => Iterable<InfoHash.InfoHash>
): Effect.Effect<OpenedWire, HandshakeFailed | ConnectionLost> =>
  withTimeout(
    connection,
    options.timeout,
    Effect.flatMap(EncryptedHandshake.accept(connection, infoHashes, EncryptedHandshake.methodsOf(options.encryption)), (opened) =>
      Effect.flatMap(readHandshakeAfter(opened.connection, opened.received), (wire) =>
        opened.infoHash === undefined || InfoHash.equals(wire.handshake.infoHash, opened.infoHash)
          ? Effect.succeed(wire)
          : Effect.fail(new HandshakeFailed({ address: formatAddress(connection.remote), reason: "InfoHashMismatch" }))
      )
    )
  )

const withTimeout = <A, E>(connection: Connection, timeout: Duration.DurationInput, effect: Effect.Effect<A, E>) =>
  Effect.timeoutFail(effect, {
    duration: timeout,
    onTimeout: () => new HandshakeFailed({ address: formatAddress(connection.remote), reason: "Timeout" })
  })

/** Reads the handshake from `received` (bytes already read) and then the connection. */
const readHandshakeAfter = (
  connection: Connection,
  received: Uint8Array
): Effect.Effect<OpenedWire, HandshakeFailed | ConnectionLost> =>
  Effect.gen(function* () {
    const address = formatAddress(connection.remote)
    const reader = Framer.makeHandshakeReader()
    let chunks: Chunk.Chunk<Uint8Array> = received.length > 0 ? Chunk.of(received) : Chunk.empty()
    while (true) {
      let index = 0
      for (const chunk of chunks) {
        index++
        const result = reader.push(chunk)
        if (Either.isLeft(result)) return yield* new HandshakeFailed({ address, reason: "Malformed" })
        if (Option.isSome(result.right)) {
          const after = Chunk.toReadonlyArray(Chunk.drop(chunks, index))
          const rest = after.length === 0 ? result.right.value.rest : Buffer.concat([result.right.value.rest, ...after])
          return { connection, handshake: result.right.value.handshake, rest } satisfies OpenedWire
        }
      }
      chunks = yield* connection.read.pipe(Effect.mapError(readFailed(address, "handshake")))
    }
  })

/** How an outgoing connection is opened: `PeerConfig`'s timeouts and encryption policy. */
export type DialOptions = Pick<PeerConfig, "connectTimeout" | "handshakeTimeout" | "encryption">

/**
 * Connects to `address`, sends `handshake` (ours, encoded) for `infoHash` — in a key exchange
 * first unless the policy is "accept" — reads the peer's, and runs `use` on the wire; the
 * connection closes when `use` ends. With "prefer", a peer that will not finish a key exchange is
 * dialed again, plain.
 */
export const withOutgoing = <A, E, R>(
  address: Address,
  infoHash: InfoHash.InfoHash,
  handshake: Uint8Array,
  options: DialOptions,
  use: (wire: OpenedWire) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | ConnectFailed | HandshakeFailed | ConnectionLost, R | Network> => {
  const { encryption, handshakeTimeout } = options
  const attempt = (encrypted: boolean) =>
    Effect.scoped(
      Effect.gen(function* () {
        const network = yield* Network
        const label = formatAddress(address)
        const connection = yield* network
          .connect(address, { timeout: options.connectTimeout })
          .pipe(Effect.mapError((cause) => new ConnectFailed({ address: label, cause })))
        const wire = encrypted
          ? yield* withTimeout(
              connection,
              handshakeTimeout,
              Effect.flatMap(
                EncryptedHandshake.initiate(connection, infoHash, handshake, EncryptedHandshake.methodsOf(encryption)),
                (opened) => readHandshakeAfter(opened.connection, opened.received)
              )
            )
          : yield* connection.write(handshake).pipe(
              Effect.mapError((cause) => new ConnectionLost({ address: label, cause })),
              Effect.zipRight(readHandshake(connection, handshakeTimeout))
            )
        return yield* use(wire)
      })
    )
  if (encryption === "accept") return attempt(false)
  if (encryption === "require") return attempt(true)
  return Effect.catchIf(
    attempt(true),
    (error) => error instanceof HandshakeFailed && (error.reason === "Closed" || error.reason === "Encryption"),
    () => attempt(false)
  )
}

/** Dials a peer, handshakes (see `withOutgoing`), and runs the connection until it fails. */
export const dial = (ctx: PeerContext, address: Address): Effect.Effect<never, PeerError, Network> =>
  withOutgoing(address, ctx.infoHash, ourHandshake(ctx), ctx.config, (wire) => run(ctx, wire, "outgoing"))

/** Runs an incoming connection whose handshake the session has read and routed to this torrent. */
export const accept = (ctx: PeerContext, wire: OpenedWire): Effect.Effect<never, PeerError> =>
  Effect.gen(function* () {
    const address = formatAddress(wire.connection.remote)
    yield* wire.connection.write(ourHandshake(ctx)).pipe(Effect.mapError((cause) => new ConnectionLost({ address, cause })))
    return yield* run(ctx, wire, "incoming")
  })

const blockKey = (index: number, begin: number, length: number) => `${index}:${begin}:${length}`

/** Runs a handshaken connection: registers it with the torrent, then reads and writes until it ends. */
const run = (
  ctx: PeerContext,
  wire: OpenedWire,
  direction: PeerLink["direction"]
): Effect.Effect<never, PeerError> =>
  Effect.gen(function* () {
    const { connection, handshake } = wire
    const address = formatAddress(connection.remote)
    if (!InfoHash.equals(handshake.infoHash, ctx.infoHash)) {
      return yield* new HandshakeFailed({ address, reason: "InfoHashMismatch" })
    }
    if (InfoHash.equals(handshake.peerId, ctx.peerId)) {
      return yield* new HandshakeFailed({ address, reason: "SelfConnection" })
    }
    const { config, info } = ctx
    const fast = handshake.fast
    // What the writer sends next: an array and a latch, not a Queue, whose takeUpTo builds its
    // batch one prepend at a time (a tenth of a download's allocations, measured).
    const outbox: Array<Outgoing> = []
    const outboxFilled = yield* Effect.makeLatch(false)
    const post = (item: Outgoing) => {
      outbox.push(item)
      outboxFilled.unsafeOpen()
    }
    const dropped = yield* Deferred.make<never, Dropped>()
    // Upload requests not yet served; a cancel removes its entry and the writer skips it.
    const pending = new Set<string>()
    // Uploads and rejects in the outbox: what the peer's requests make us queue, bounded against floods.
    let queuedForRequests = 0
    // Read synchronously (per read, per write, per watchdog round): an Effect step each costs more.
    const clock = yield* Effect.clock
    let lastWriteAt = clock.unsafeCurrentTimeMillis()
    let lastReadAt = lastWriteAt
    const link: PeerLink = {
      key: address,
      address: connection.remote,
      handshake,
      direction,
      send: (messages) => {
        for (const message of messages) post(message)
      },
      drop: (reason) => {
        Deferred.unsafeDone(dropped, Effect.fail(new Dropped({ address, reason })))
      },
      choking: true,
      stats: { downloaded: 0, uploaded: 0 }
    }

    const violation = (reason: ProtocolViolation["reason"], detail?: string) =>
      new ProtocolViolation({ address, reason, ...(detail === undefined ? {} : { detail }) })

    const reject = (request: Message.Request) => {
      if (!fast) return
      queuedForRequests++
      post(Message.Reject(request.index, request.begin, request.length))
    }

    // Handles what the connection answers itself; returns the messages for the supervisor.
    const inspect = (messages: ReadonlyArray<Message.Message>): ReadonlyArray<Message.Message> | ProtocolViolation => {
      const forward: Array<Message.Message> = []
      for (const message of messages) {
        switch (message._tag) {
          case "KeepAlive":
            break
          case "Request": {
            const { index, begin, length } = message
            if (
              index >= info.pieceCount ||
              length <= 0 ||
              length > config.maxBlockLength ||
              begin + length > pieceLength(info, index)
            ) {
              return violation("BadRequest", `${index}:${begin}:${length}`)
            }
            if (queuedForRequests >= 2 * config.maxPendingUploads) {
              return violation("RequestFlood", `${queuedForRequests} requests waiting for an answer`)
            }
            const key = blockKey(index, begin, length)
            if (link.choking || !ctx.have.has(index) || pending.size >= config.maxPendingUploads) reject(message)
            else if (!pending.has(key)) {
              pending.add(key)
              queuedForRequests++
              post({ _tag: "Upload", request: message })
              ctx.pieces.prefetch(index)
            }
            break
          }
          case "Cancel":
            pending.delete(blockKey(message.index, message.begin, message.length))
            break
          // Accepted after other messages too: aria2 sends a fresh bitfield instead of many haves.
          case "Bitfield":
          case "HaveAll":
          case "HaveNone":
            if (message._tag === "Bitfield" && Either.isLeft(BitfieldModule.Bitfield.fromBytes(message.bytes, info.pieceCount))) {
              return violation("Bitfield")
            }
            if (message._tag !== "Bitfield" && !fast) return violation("UnexpectedMessage", message._tag)
            forward.push(message)
            break
          case "Have":
          case "Suggest":
          case "AllowedFast":
            if (message.index >= info.pieceCount) return violation("HaveOutOfRange", `${message._tag} ${message.index}`)
            forward.push(message)
            break
          case "Piece":
            link.stats.downloaded += message.block.length
            forward.push(message)
            break
          default:
            forward.push(message)
        }
      }
      return forward
    }

    const framer = Framer.make({ maxMessageLength: config.maxMessageLength, blocks: ctx.blocks, chunksReused: true })
    // Frames every chunk of a read before posting anything: blocks are copied out as they are
    // framed (ctx.blocks), and the chunks are only valid until the next read.
    const deliver = (chunks: Iterable<Uint8Array>): Effect.Effect<void, ProtocolViolation> => {
      const messages: Array<Message.Message> = []
      for (const chunk of chunks) {
        const decoded = framer.push(chunk)
        if (Either.isLeft(decoded)) {
          return Effect.fail(new ProtocolViolation({ address, reason: "Frame", cause: decoded.left }))
        }
        for (const message of decoded.right) messages.push(message)
      }
      if (messages.length === 0) return Effect.void
      const forward = inspect(messages)
      if (forward instanceof ProtocolViolation) return Effect.fail(forward)
      return forward.length === 0
        ? Effect.void
        : Queue.offer(ctx.events, { _tag: "PeerMessages", key: address, messages: forward })
    }

    const reader = Effect.gen(function* () {
      if (wire.rest.length > 0) yield* deliver([wire.rest])
      while (true) {
        const chunks = yield* wire.connection.read.pipe(Effect.mapError(readFailed(address, "wire")))
        lastReadAt = clock.unsafeCurrentTimeMillis()
        yield* deliver(chunks)
      }
    })

    const FLUSH_BYTES = 256 * 1024
    const writer = Effect.gen(function* () {
      // Blocks in the parts not yet written: the cache's, given back once their write completed.
      let blocks: Array<Uint8Array> = []
      const write = (parts: Array<Uint8Array>) => {
        const sent = blocks
        blocks = []
        return connection.write(parts.length === 1 ? parts[0]! : parts).pipe(
          Effect.mapError((cause) => new ConnectionLost({ address, cause })),
          Effect.tap(() => {
            for (const block of sent) ctx.pieces.release(block)
          })
        )
      }
      while (true) {
        // Everything queued so far goes out together: the requests the supervisor queued after a
        // message, in the same write.
        yield* outboxFilled.await
        outboxFilled.unsafeClose()
        const items = outbox.splice(0)
        const parts: Array<Uint8Array> = []
        let size = 0
        // Consecutive messages other than blocks are encoded into one buffer, not one each.
        let run: Array<Message.Message> = []
        const endRun = () => {
          if (run.length === 0) return
          const bytes = Message.encodeAll(run)
          parts.push(bytes)
          size += bytes.length
          run = []
        }
        for (const item of items) {
          if (item._tag === "Upload" || item._tag === "Reject") queuedForRequests--
          if (item._tag === "Upload") {
            const { index, begin, length } = item.request
            const key = blockKey(index, begin, length)
            if (!pending.delete(key) || link.choking) continue
            const block = ctx.pieces.cached(index, begin, length) ?? (yield* ctx.pieces.read(index, begin, length).pipe(
              Effect.catchAll((error) =>
                Queue.offer(ctx.events, { _tag: "StorageFailed", error }).pipe(Effect.as(undefined))
              )
            ))
            if (block === undefined) continue
            endRun()
            parts.push(Message.encodePieceHeader(index, begin, length), block)
            blocks.push(block)
            size += block.length
            link.stats.uploaded += block.length
          } else {
            if (item._tag === "Choke") pending.clear()
            run.push(item)
          }
          if (size >= FLUSH_BYTES) {
            yield* write(parts.splice(0))
            size = 0
          }
        }
        endRun()
        if (parts.length > 0) yield* write(parts)
        lastWriteAt = clock.unsafeCurrentTimeMillis()
      }
    })

    // One timer per connection for both directions, not one per read: keep-alives when we have
    // been silent, and the idle timeout when the peer has.
    const keepAliveMillis = Duration.toMillis(config.keepAliveInterval)
    const idleMillis = Duration.toMillis(config.idleTimeout)
    const watchdog = Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      if (now - lastReadAt >= idleMillis) return Effect.fail(new IdleTimeout({ address }))
      if (now - lastWriteAt >= keepAliveMillis) post(Message.KeepAlive)
      return Effect.void
    }).pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, Math.min(keepAliveMillis, idleMillis) / 4)))),
      Effect.zipRight(Effect.never)
    )

    yield* Queue.offer(ctx.events, { _tag: "PeerConnected", link })
    return yield* Effect.all([reader, writer, watchdog, Deferred.await(dropped)], {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.zipRight(Effect.never))
  }).pipe(Effect.annotateLogs("peer", formatAddress(wire.connection.remote)))
