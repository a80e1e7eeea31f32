/**
 * Scripted BitTorrent peers over any `Network` (the in-memory one or the live one): a script is a
 * sequence of steps (send bytes or messages, expect messages, wait, close) run against one
 * connection; `seed` and `leech` are ready-made scripts for an honest seeder or leecher with a
 * catalogue of misbehaviours (`Behaviour`, `LeechBehaviour`).
 *
 * Reading is pull-based: at most one chunk is read ahead of the script, so a script that stops
 * reading back-pressures its peer exactly as a real client would.
 */
import { Chunk, Data, Duration, Effect, Exit, Option, Queue, type Scope, Stream, Take } from "effect"
import { createHash } from "node:crypto"
import * as InfoHash from "../metainfo/InfoHash.js"
import * as Metainfo from "../metainfo/Metainfo.js"
import { type Address, type Connection, formatAddress, Network, type NetworkError } from "../net/Network.js"
import * as PeerId from "../peer/PeerId.js"
import { Bitfield } from "../picker/Bitfield.js"
import * as Framer from "../wire/Framer.js"
import * as Handshake from "../wire/Handshake.js"
import * as Message from "../wire/Message.js"
import { Prng } from "./Seed.js"

/** Why a script stopped before its end. */
export class ScriptError extends Data.TaggedError("ScriptError")<{
  /**
   * `Network`: the connection failed; `Protocol`: the peer sent bytes that do not frame;
   * `Ended`: the peer closed while a message was expected; `Unexpected`: another message came;
   * `Timeout`: nothing matching came in time; `HandshakeMismatch`: the peer's handshake is for another torrent.
   */
  readonly reason: "Network" | "Protocol" | "Ended" | "Unexpected" | "Timeout" | "HandshakeMismatch"
  readonly message: string
  readonly cause?: unknown
}> {}

/** A connection seen as BitTorrent wire traffic. */
export interface Wire {
  readonly connection: Connection
  /** Sends raw bytes. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, ScriptError>
  /** Sends messages in one write. */
  readonly send: (...messages: ReadonlyArray<Message.Message>) => Effect.Effect<void, ScriptError>
  /** The peer's 68-byte handshake; the bytes after it are left for `receive`. */
  readonly receiveHandshake: Effect.Effect<Handshake.Handshake, ScriptError>
  /** The peer's next message (keep-alives included), `None` once the peer closed. */
  readonly receive: Effect.Effect<Option.Option<Message.Message>, ScriptError>
}

/** One step of a script. Any function of a `Wire` is a step, so scripts can do anything. */
export type Step = (wire: Wire) => Effect.Effect<void, ScriptError>

const networkError = (cause: NetworkError): ScriptError =>
  new ScriptError({ reason: "Network", message: `${cause.reason} (${cause.address})`, cause })

/** Wraps a connection; its reader fiber lives in the scope. */
export const makeWire = (connection: Connection): Effect.Effect<Wire, never, Scope.Scope> =>
  Effect.gen(function* () {
    // One slot: the reader fiber is at most one chunk ahead of the script.
    const takes = yield* Effect.acquireRelease(Queue.bounded<Take.Take<Uint8Array, NetworkError>>(1), Queue.shutdown)
    yield* Effect.forkScoped(Stream.runIntoQueue(connection.chunks, takes))
    let ended = false
    const raw: Array<Uint8Array> = []
    const framer = Framer.make()
    let messages: ReadonlyArray<Message.Message> = []
    let nextMessage = 0

    // The next unread chunk, `None` at the end of the stream.
    const nextChunk: Effect.Effect<Option.Option<Uint8Array>, ScriptError> = Effect.suspend(() => {
      const buffered = raw.shift()
      if (buffered !== undefined) return Effect.succeed(Option.some(buffered))
      if (ended) return Effect.succeed(Option.none())
      return Queue.take(takes).pipe(
        Effect.flatMap(Take.done),
        Effect.matchEffect({
          onSuccess: (chunk) => {
            raw.push(...Chunk.toReadonlyArray(chunk))
            return nextChunk
          },
          onFailure: Option.match({
            onNone: () => {
              ended = true
              return Effect.succeed(Option.none())
            },
            onSome: (cause) => {
              ended = true
              return Effect.fail(networkError(cause))
            }
          })
        })
      )
    })

    const receiveHandshake = Effect.suspend(() => {
      const reader = Framer.makeHandshakeReader()
      const loop: Effect.Effect<Handshake.Handshake, ScriptError> = Effect.flatMap(
        nextChunk,
        Option.match({
          onNone: () => Effect.fail(new ScriptError({ reason: "Ended", message: "closed before the handshake" })),
          onSome: (chunk) => {
            const pushed = reader.push(chunk)
            if (pushed._tag === "Left") {
              return Effect.fail(new ScriptError({ reason: "Protocol", message: "not a handshake", cause: pushed.left }))
            }
            if (Option.isNone(pushed.right)) return loop
            const { handshake, rest } = pushed.right.value
            if (rest.length > 0) raw.unshift(rest)
            return Effect.succeed(handshake)
          }
        })
      )
      return loop
    })

    const receive: Effect.Effect<Option.Option<Message.Message>, ScriptError> = Effect.suspend(() => {
      if (nextMessage < messages.length) return Effect.succeed(Option.some(messages[nextMessage++]!))
      return Effect.flatMap(
        nextChunk,
        Option.match({
          onNone: () => Effect.succeed(Option.none()),
          onSome: (chunk) => {
            const pushed = framer.push(chunk)
            if (pushed._tag === "Left") {
              return Effect.fail(
                new ScriptError({ reason: "Protocol", message: `bad message: ${pushed.left.reason}`, cause: pushed.left })
              )
            }
            messages = pushed.right
            nextMessage = 0
            return receive
          }
        })
      )
    })

    const write = (bytes: Uint8Array) => Effect.mapError(connection.write(bytes), networkError)
    return {
      connection,
      write,
      send: (...list) => write(Message.encodeAll(list)),
      receiveHandshake,
      receive
    }
  })

/** Runs `step` over `connection`, ending when the step does. */
export const run = (connection: Connection, step: Step): Effect.Effect<void, ScriptError> =>
  Effect.scoped(Effect.flatMap(makeWire(connection), step))

// ---------------------------------------------------------------------------------------------
// Steps

/** Default time `expect` waits for a message. */
export const DEFAULT_EXPECT_TIMEOUT = Duration.seconds(30)

const withTimeout = (timeout: Duration.DurationInput | undefined, what: string) =>
  Effect.timeoutFail({
    duration: timeout ?? DEFAULT_EXPECT_TIMEOUT,
    onTimeout: () => new ScriptError({ reason: "Timeout", message: `timed out waiting for ${what}` })
  })

/** Runs steps one after another. */
export const script = (...steps: ReadonlyArray<Step>): Step => (wire) => Effect.forEach(steps, (step) => step(wire), { discard: true })

/** Sends raw bytes (anything, valid or not). */
export const sendRaw = (bytes: Uint8Array): Step => (wire) => wire.write(bytes)

/** Sends messages in one write. */
export const send = (...messages: ReadonlyArray<Message.Message>): Step => (wire) => wire.send(...messages)

/** Sends our handshake. */
export const sendHandshake = (handshake: Handshake.Handshake): Step => (wire) => wire.write(Handshake.encode(handshake))

/** Reads the peer's handshake, failing with `HandshakeMismatch` when it is not for `infoHash` (if given). */
export const expectHandshake = (options?: {
  readonly infoHash?: InfoHash.InfoHash
  readonly timeout?: Duration.DurationInput
}): Step => (wire) =>
  wire.receiveHandshake.pipe(
    Effect.flatMap((handshake) =>
      options?.infoHash === undefined || InfoHash.equals(handshake.infoHash, options.infoHash)
        ? Effect.void
        : Effect.fail(
          new ScriptError({
            reason: "HandshakeMismatch",
            message: `handshake for ${InfoHash.toHex(handshake.infoHash)}, expected ${InfoHash.toHex(options.infoHash)}`
          })
        )
    ),
    withTimeout(options?.timeout, "the handshake")
  )

/** Sends our handshake, then reads and checks the peer's (safe in either role: neither side waits for the other). */
export const handshake = (options: {
  readonly infoHash: InfoHash.InfoHash
  readonly peerId: PeerId.PeerId
  readonly extensionProtocol?: boolean
  readonly fast?: boolean
}): Step => script(sendHandshake(Handshake.make(options)), expectHandshake({ infoHash: options.infoHash }))

const show = (message: Message.Message): string =>
  message._tag === "Request" || message._tag === "Cancel" || message._tag === "Reject"
    ? `${message._tag}(${message.index}, ${message.begin}, ${message.length})`
    : message._tag === "Piece"
    ? `Piece(${message.index}, ${message.begin}, ${message.block.length} bytes)`
    : message._tag === "Have"
    ? `Have(${message.index})`
    : message._tag

/** The next message that is not a keep-alive. */
const nextMessage = (wire: Wire, what: string): Effect.Effect<Message.Message, ScriptError> =>
  Effect.flatMap(
    wire.receive,
    Option.match({
      onNone: () => Effect.fail(new ScriptError({ reason: "Ended", message: `closed while waiting for ${what}` })),
      onSome: (message) => (message._tag === "KeepAlive" ? nextMessage(wire, what) : Effect.succeed(message))
    })
  )

/**
 * Expects the next message (keep-alives skipped) to have tag `what` or satisfy it, failing with
 * `Unexpected` on any other; with `skip`, messages that do not match are read past instead.
 */
export const expect = (
  what: Message.Message["_tag"] | ((message: Message.Message) => boolean),
  options?: { readonly timeout?: Duration.DurationInput; readonly skip?: boolean }
): Step => (wire) => {
  const name = typeof what === "string" ? what : "a matching message"
  const matches = typeof what === "string" ? (message: Message.Message) => message._tag === what : what
  const loop: Effect.Effect<void, ScriptError> = Effect.flatMap(nextMessage(wire, name), (message) =>
    matches(message)
      ? Effect.void
      : options?.skip === true
      ? loop
      : Effect.fail(new ScriptError({ reason: "Unexpected", message: `expected ${name}, got ${show(message)}` })))
  return withTimeout(options?.timeout, name)(loop)
}

/** Reads and ignores everything until the peer closes (fails with `Timeout` if it does not). */
export const expectClosed = (options?: { readonly timeout?: Duration.DurationInput }): Step => (wire) => {
  const loop: Effect.Effect<void, ScriptError> = Effect.flatMap(wire.receive, Option.match({ onNone: () => Effect.void, onSome: () => loop }))
  return withTimeout(options?.timeout, "the peer to close")(loop)
}

/** Waits (on Effect's Clock). */
export const wait = (duration: Duration.DurationInput): Step => () => Effect.sleep(duration)

/** Closes the connection. */
export const close: Step = (wire) => wire.connection.close

// ---------------------------------------------------------------------------------------------
// Running over a Network

/** A scripted peer accepting connections. */
export interface Listening {
  /** Where it listens. */
  readonly address: Address
  /** How each finished session ended, oldest first (the last `MAX_SESSIONS`). */
  readonly sessions: Effect.Effect<ReadonlyArray<Exit.Exit<void, ScriptError>>>
}

/** Sessions a `Listening` peer remembers. */
export const MAX_SESSIONS = 1000

/** Listens on `address` and runs `step` on every accepted connection, until the scope closes. */
export const listen = (address: Address, step: Step): Effect.Effect<Listening, NetworkError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const sessions: Array<Exit.Exit<void, ScriptError>> = []
    const listener = yield* network.listen(address, (connection) =>
      Effect.exit(run(connection, step)).pipe(
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            sessions.push(exit)
            if (sessions.length > MAX_SESSIONS) sessions.shift()
          })
        )
      ))
    return { address: listener.address, sessions: Effect.sync(() => sessions.slice()) }
  })

/** Connects to `address` and runs `step` over the connection, closing it when the step ends. */
export const connect = (
  address: Address,
  step: Step,
  options?: { readonly timeout?: Duration.DurationInput }
): Effect.Effect<void, ScriptError, Network> =>
  Effect.scoped(
    Effect.gen(function* () {
      const network = yield* Network
      const connection = yield* Effect.mapError(network.connect(address, options), networkError)
      yield* run(connection, step)
    })
  )

// ---------------------------------------------------------------------------------------------
// The seeder

/**
 * Ways a seeder can misbehave; all off by default. Those that replace the bitfield (`garbage`,
 * `lengthPrefix`, `badBitfield`) send it instead of a valid one and then keep reading.
 */
export interface Behaviour {
  /** Serve bytes of this piece inverted, so it fails its hash check. */
  readonly corruptPiece?: number
  /** Serve every block inverted: no piece it sends passes its hash check. */
  readonly corruptAll?: boolean
  /** Close the connection after sending this many blocks. */
  readonly disconnectAfterBlocks?: number
  /** Answer the handshake with another info-hash. */
  readonly wrongInfoHash?: boolean
  /** Send this many random bytes (from `seed`) where the bitfield belongs. */
  readonly garbage?: number
  /** Send a frame header with this length prefix (say 0xffffffff, 4 GiB) and a trickle of payload. */
  readonly lengthPrefix?: number
  /** Send a malformed bitfield: spare bits past the last piece set, or one byte too long. */
  readonly badBitfield?: "spareBits" | "wrongLength"
  /** After the bitfield, announce a piece one past the last with `have`. */
  readonly haveOutOfRange?: boolean
  /** After the bitfield, push this many blocks of random bytes that were never requested. */
  readonly unrequestedBlocks?: number
  /** Send everything after the handshake one byte at a time, this far apart (slow-loris). */
  readonly slowLoris?: Duration.DurationInput
  /** Never unchoke (requests are never served). */
  readonly chokeForever?: boolean
  /** Wait this long before serving each block: a slow seeder. */
  readonly serveDelay?: Duration.DurationInput
  /** Seed of the random bytes `garbage` and `unrequestedBlocks` send (default 0). */
  readonly seed?: number
}

/** What a seeder serves. */
export interface SeedOptions {
  readonly info: Metainfo.Info
  readonly infoHash: InfoHash.InfoHash
  /** The whole torrent's bytes. */
  readonly content: Uint8Array
  /** Our peer id (default: derived from the connection's local address, so stable across runs). */
  readonly peerId?: PeerId.PeerId
  /** The pieces we have and announce (default: all). */
  readonly pieces?: ReadonlyArray<number>
  readonly behaviour?: Behaviour
}

/** Largest request a seeder serves (libtorrent's limit too); larger ones are ignored. */
export const MAX_REQUEST_LENGTH = 128 * 1024

const BLOCK_LENGTH = 16 * 1024

const stablePeerId = (local: Address): PeerId.PeerId => {
  const id = new Uint8Array(20)
  id.set(Buffer.from("-BFTEST-", "latin1"))
  id.set(createHash("sha1").update(formatAddress(local)).digest().subarray(0, 12), 8)
  return PeerId.unsafeFromBytes(id)
}

const invert = (bytes: Uint8Array): Uint8Array => bytes.map((byte) => byte ^ 0xff)

/** Writes `bytes` one byte every `interval`. */
const drip = (wire: Wire, bytes: Uint8Array, interval: Duration.DurationInput): Effect.Effect<void, ScriptError> =>
  Effect.forEach(bytes, (_, i) => Effect.zipRight(wire.write(bytes.subarray(i, i + 1)), Effect.sleep(interval)), {
    discard: true
  })

/** The bitfield message to send in place of a valid one, per `badBitfield`. */
const badBitfieldBytes = (have: Bitfield, kind: "spareBits" | "wrongLength"): Uint8Array => {
  const bytes = Uint8Array.from(have.bytes)
  if (kind === "wrongLength") return Message.encode(Message.Bitfield(Buffer.concat([bytes, new Uint8Array([0xff])])))
  // With no spare bits (a multiple of 8 pieces), a byte too many is the only way to be wrong.
  const spare = bytes.length * 8 - have.size
  if (spare === 0) return badBitfieldBytes(have, "wrongLength")
  bytes[bytes.length - 1]! |= 1
  return Message.encode(Message.Bitfield(bytes))
}

/**
 * An honest seeder's session (unless `behaviour` says otherwise): handshake, a bitfield of its
 * pieces, unchoke on interested, then serve every valid request while unchoked, until the peer
 * closes. Requests are answered one at a time, so nothing queues up beyond the connection's window.
 */
export const seed = (options: SeedOptions): Step => (wire) =>
  Effect.gen(function* () {
    const { behaviour = {}, info } = options
    const random = new Prng(behaviour.seed ?? 0)
    const have = options.pieces === undefined ? Bitfield.full(info.pieceCount) : Bitfield.empty(info.pieceCount)
    for (const index of options.pieces ?? []) have.add(index)
    const announcedHash = behaviour.wrongInfoHash === true
      ? InfoHash.unsafeFromBytes(options.infoHash.map((byte) => byte ^ 0xff))
      : options.infoHash
    const peerId = options.peerId ?? stablePeerId(wire.connection.local)
    yield* sendHandshake(Handshake.make({ infoHash: announcedHash, peerId }))(wire)
    yield* expectHandshake({ infoHash: options.infoHash })(wire)

    const slowLoris = behaviour.slowLoris
    const write = (bytes: Uint8Array) => (slowLoris === undefined ? wire.write(bytes) : drip(wire, bytes, slowLoris))
    const send = (...messages: ReadonlyArray<Message.Message>) => write(Message.encodeAll(messages))

    if (behaviour.garbage !== undefined) yield* write(random.fill(new Uint8Array(behaviour.garbage)))
    else if (behaviour.lengthPrefix !== undefined) {
      const header = new Uint8Array(5)
      new DataView(header.buffer).setUint32(0, behaviour.lengthPrefix >>> 0)
      header[4] = Message.Id.Piece
      yield* write(header)
      yield* write(new Uint8Array(1024))
    } else if (behaviour.badBitfield !== undefined) yield* write(badBitfieldBytes(have, behaviour.badBitfield))
    else yield* send(Message.Bitfield(have.bytes))
    if (behaviour.haveOutOfRange === true) yield* send(Message.Have(info.pieceCount))
    for (let i = 0; i < (behaviour.unrequestedBlocks ?? 0); i++) {
      const index = i % info.pieceCount
      const length = Math.min(BLOCK_LENGTH, Metainfo.pieceSize(info, index))
      yield* send(Message.Piece(index, 0, random.fill(new Uint8Array(length))))
    }

    let choked = true
    let blocks = 0
    for (;;) {
      const received = yield* wire.receive
      if (Option.isNone(received)) return
      const message = received.value
      if (message._tag === "Interested" && choked && behaviour.chokeForever !== true) {
        choked = false
        yield* send(Message.Unchoke)
      } else if (message._tag === "Request" && !choked) {
        const { index, begin, length } = message
        const valid = have.has(index) && length > 0 && length <= MAX_REQUEST_LENGTH &&
          begin + length <= Metainfo.pieceSize(info, index)
        if (!valid) continue
        if (behaviour.serveDelay !== undefined) yield* Effect.sleep(behaviour.serveDelay)
        const start = index * info.pieceLength + begin
        const block = options.content.subarray(start, start + length)
        const corrupt = behaviour.corruptAll === true || behaviour.corruptPiece === index
        yield* send(Message.Piece(index, begin, corrupt ? invert(block) : block))
        blocks++
        if (behaviour.disconnectAfterBlocks !== undefined && blocks >= behaviour.disconnectAfterBlocks) {
          return yield* wire.connection.close
        }
      }
    }
  })

/** A seeder listening on `address`: `listen(address, seed(options))`. */
export const seeder = (
  options: SeedOptions & { readonly address: Address }
): Effect.Effect<Listening, NetworkError, Network | Scope.Scope> => listen(options.address, seed(options))

// ---------------------------------------------------------------------------------------------
// The leecher

/** Ways a leecher can misbehave against a seeder; all off by default (then it just reads). */
export interface LeechBehaviour {
  /** Send this many distinct valid requests at once, ignoring choking. */
  readonly requestFlood?: number
  /** Send this many request-then-cancel pairs. */
  readonly cancelStorm?: number
  /** Request blocks before being unchoked (before even saying interested). */
  readonly requestWhileChoked?: boolean
  /** Request a piece that does not exist, or a block longer than any client serves (128 KiB + 1). */
  readonly badRequest?: "outOfRange" | "overLong"
  /** Never read anything the seeder sends (its writes pile up against the window). */
  readonly stopReading?: boolean
}

/** What a leecher asks for. */
export interface LeechOptions {
  readonly info: Metainfo.Info
  readonly infoHash: InfoHash.InfoHash
  readonly peerId?: PeerId.PeerId
  readonly behaviour?: LeechBehaviour
  /** Say we support the fast extension (BEP 6), so the seeder answers refused requests with `reject`. */
  readonly fast?: boolean
}

/** Every block of the torrent as requests, in order. */
const allBlocks = (info: Metainfo.Info): ReadonlyArray<Message.Request> => {
  const requests: Array<Message.Request> = []
  for (let index = 0; index < info.pieceCount; index++) {
    const size = Metainfo.pieceSize(info, index)
    for (let begin = 0; begin < size; begin += BLOCK_LENGTH) {
      requests.push(Message.Request(index, begin, Math.min(BLOCK_LENGTH, size - begin)))
    }
  }
  return requests
}

/**
 * A leecher's session against a seeder: handshake, interested, and once unchoked (at once with
 * `requestWhileChoked`) the misbehaviour (`behaviour`); then it reads (and drops) everything until
 * the seeder closes — or, with `stopReading`, waits forever without reading. A seeder that drops
 * it ends the session with `Ended` or `Network`.
 */
export const leech = (options: LeechOptions): Step => (wire) =>
  Effect.gen(function* () {
    const { behaviour = {}, info } = options
    const peerId = options.peerId ?? stablePeerId(wire.connection.local)
    yield* sendHandshake(Handshake.make({ infoHash: options.infoHash, peerId, fast: options.fast ?? false }))(wire)
    yield* expectHandshake({ infoHash: options.infoHash })(wire)
    const blocks = allBlocks(info)
    // The i-th distinct valid request: every block, then every block a byte shorter, and so on.
    const block = (i: number) => {
      const { begin, index, length } = blocks[i % blocks.length]!
      return Message.Request(index, begin, length - (Math.floor(i / blocks.length) % length))
    }
    if (behaviour.requestWhileChoked === true) yield* wire.send(...blocks.slice(0, 8))
    yield* wire.send(Message.Interested)
    // Misbehave once unchoked, so floods are of requests the seeder would serve.
    if (behaviour.requestWhileChoked !== true) yield* expect("Unchoke", { skip: true, timeout: "1 minute" })(wire)
    if (behaviour.badRequest === "outOfRange") yield* wire.send(Message.Request(info.pieceCount, 0, BLOCK_LENGTH))
    if (behaviour.badRequest === "overLong") yield* wire.send(Message.Request(0, 0, MAX_REQUEST_LENGTH + 1))
    if (behaviour.requestFlood !== undefined) {
      // In batches, so the flood itself is not one giant allocation.
      for (let sent = 0; sent < behaviour.requestFlood; sent += 1024) {
        const count = Math.min(1024, behaviour.requestFlood - sent)
        yield* wire.send(...Array.from({ length: count }, (_, i) => block(sent + i)))
      }
    }
    // Past the flood's requests, so the storm does not cancel what the flood asked for.
    for (let i = 0; i < (behaviour.cancelStorm ?? 0); i++) {
      const { begin, index, length } = block((behaviour.requestFlood ?? 0) + i)
      yield* wire.send(Message.Request(index, begin, length), Message.Cancel(index, begin, length))
    }
    if (behaviour.stopReading === true) return yield* Effect.never
    yield* expectClosed({ timeout: Duration.infinity })(wire)
  })
