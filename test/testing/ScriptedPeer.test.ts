import { Framer, Handshake, InfoHash, Message, Network, NodeNetwork, PeerId } from "@bitfiber/core"
import { MemoryNetwork, ScriptedPeer, TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Context, Effect, Either, Exit, Fiber, Layer, Option, type Scope, Stream, TestClock } from "effect"

const torrent = TestTorrent.make({ files: [{ path: "data.bin", length: 100_000 }], pieceLength: 32768 })
const { info, infoHash } = torrent.metainfo
const clientId = PeerId.unsafeFromBytes(Buffer.from("-XX0001-client-peer1", "latin1"))
const SEEDER = { host: "10.0.0.1", port: 6881 }

/** The seeder's view of the same switchboard. */
class SeederNetwork extends Context.Tag("test/SeederNetwork")<SeederNetwork, MemoryNetwork.NetworkView>() {}

/** The client's own Network, on a fresh switchboard where the seeder's host is another view. */
const swarm = Layer.unwrapEffect(
  Effect.map(MemoryNetwork.make(), (board) =>
    Layer.merge(
      MemoryNetwork.layer(board, { host: "10.0.0.2" }),
      Layer.succeed(SeederNetwork, board.network(SEEDER.host))
    ))
)

const startSeeder = (options?: Partial<ScriptedPeer.SeedOptions>, address = SEEDER) =>
  Effect.flatMap(SeederNetwork, (network) =>
    Effect.provideService(
      ScriptedPeer.seeder({ info, infoHash, content: torrent.content, address, ...options }),
      Network.Network,
      network
    ))

/** A bare-hands client: Framer and Message over a connection, independent of ScriptedPeer. */
const rawClient = (connection: Network.Connection) =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(connection.chunks)
    const handshakes = Framer.makeHandshakeReader()
    const framer = Framer.make()
    const pending: Array<Message.Message> = []
    let rest = new Uint8Array(0)
    // Live clock: a seeder that does not answer fails the test in a second, not at vitest's timeout.
    const timedPull = Effect.timeoutFail(pull, {
      duration: "2 seconds",
      onTimeout: () => Option.some(new Network.NetworkError({ reason: "Timeout", address: "test client" }))
    })
    const chunk = Effect.map(timedPull, (chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
    const handshake = Effect.gen(function* () {
      for (let i = 0; i < 100; i++) {
        const read = Either.getOrThrow(handshakes.push(yield* chunk))
        if (Option.isSome(read)) {
          rest = Uint8Array.from(read.value.rest)
          return read.value.handshake
        }
      }
      return yield* Effect.dieMessage("no handshake in 100 chunks")
    })
    const next = Effect.gen(function* () {
      if (rest.length > 0) pending.push(...Either.getOrThrow(framer.push(rest)))
      rest = new Uint8Array(0)
      for (let i = 0; i < 100 && pending.length === 0; i++) pending.push(...Either.getOrThrow(framer.push(yield* chunk)))
      return pending.shift()!
    })
    const send = (message: Message.Message) => connection.write(Message.encode(message))
    return { handshake, next, send, end: Effect.option(Effect.flip(timedPull)) }
  })

const connectRaw = (): Effect.Effect<
  Effect.Effect.Success<ReturnType<typeof rawClient>>,
  Network.NetworkError,
  Network.Network | Scope.Scope
> =>
  Effect.gen(function* () {
    const network = yield* Network.Network
    const connection = yield* network.connect(SEEDER)
    yield* connection.write(Handshake.encode(Handshake.make({ infoHash, peerId: clientId })))
    return yield* rawClient(connection)
  })

describe("ScriptedPeer.seeder", () => {
  it.scopedLive("handshakes, sends a full bitfield, unchokes on interested and serves the requested block", () =>
    Effect.gen(function* () {
      yield* startSeeder()
      const client = yield* connectRaw()
      const handshake = yield* client.handshake
      expect(InfoHash.equals(handshake.infoHash, infoHash)).toBe(true)
      expect(Buffer.from(handshake.peerId.subarray(0, 8)).toString("latin1")).toBe("-BFTEST-")
      // 4 pieces: 1111 0000.
      expect(yield* client.next).toMatchObject({ _tag: "Bitfield", bytes: Buffer.from([0xf0]) })
      yield* client.send(Message.Interested)
      expect(yield* client.next).toEqual(Message.Unchoke)
      yield* client.send(Message.Request(3, 0, 1696))
      const piece = yield* client.next
      expect(piece._tag).toBe("Piece")
      expect(piece).toMatchObject({ index: 3, begin: 0 })
      const expected = torrent.content.subarray(3 * 32768, 100_000)
      expect(Buffer.compare((piece as Message.Piece).block, expected)).toBe(0)
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("ignores requests while choked and invalid requests, then serves valid ones", () =>
    Effect.gen(function* () {
      yield* startSeeder()
      const client = yield* connectRaw()
      yield* client.handshake
      yield* client.next
      yield* client.send(Message.Request(0, 0, 16384))
      yield* client.send(Message.Interested)
      expect(yield* client.next).toEqual(Message.Unchoke)
      yield* client.send(Message.Request(3, 1024, 1024)) // past the end of the last piece
      yield* client.send(Message.Request(4, 0, 16384)) // no such piece
      yield* client.send(Message.Request(1, 0, 16384))
      expect(yield* client.next).toMatchObject({ _tag: "Piece", index: 1, begin: 0 })
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("announces only the given pieces and serves only those", () =>
    Effect.gen(function* () {
      yield* startSeeder({ pieces: [1, 3] })
      const client = yield* connectRaw()
      yield* client.handshake
      expect(yield* client.next).toMatchObject({ _tag: "Bitfield", bytes: Buffer.from([0x50]) })
      yield* client.send(Message.Interested)
      yield* client.next
      yield* client.send(Message.Request(0, 0, 1024))
      yield* client.send(Message.Request(3, 0, 1024))
      expect(yield* client.next).toMatchObject({ _tag: "Piece", index: 3 })
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("serves inverted bytes for the corrupt piece only", () =>
    Effect.gen(function* () {
      yield* startSeeder({ behaviour: { corruptPiece: 2 } })
      const client = yield* connectRaw()
      yield* client.handshake
      yield* client.next
      yield* client.send(Message.Interested)
      yield* client.next
      yield* client.send(Message.Request(2, 0, 4))
      yield* client.send(Message.Request(1, 0, 4))
      const bad = (yield* client.next) as Message.Piece
      const good = (yield* client.next) as Message.Piece
      expect(Array.from(bad.block)).toEqual(Array.from(torrent.content.subarray(2 * 32768, 2 * 32768 + 4)).map((b) => b ^ 0xff))
      expect(Buffer.compare(good.block, torrent.content.subarray(32768, 32768 + 4))).toBe(0)
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("disconnects after the given number of blocks", () =>
    Effect.gen(function* () {
      yield* startSeeder({ behaviour: { disconnectAfterBlocks: 2 } })
      const client = yield* connectRaw()
      yield* client.handshake
      yield* client.next
      yield* client.send(Message.Interested)
      yield* client.next
      for (let i = 0; i < 3; i++) yield* client.send(Message.Request(0, i * 1024, 1024))
      expect(yield* client.next).toMatchObject({ _tag: "Piece", begin: 0 })
      expect(yield* client.next).toMatchObject({ _tag: "Piece", begin: 1024 })
      expect(yield* client.end).toEqual(Option.some(Option.none()))
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("answers with another info-hash when told to", () =>
    Effect.gen(function* () {
      yield* startSeeder({ behaviour: { wrongInfoHash: true } })
      const client = yield* connectRaw()
      const handshake = yield* client.handshake
      expect(InfoHash.equals(handshake.infoHash, infoHash)).toBe(false)
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("hangs up on a handshake for another torrent and records why", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder()
      const network = yield* Network.Network
      const connection = yield* network.connect(SEEDER)
      const other = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(7))
      yield* connection.write(Handshake.encode(Handshake.make({ infoHash: other, peerId: clientId })))
      // The seeder's own handshake, then the end of the stream.
      const received = yield* connection.chunks.pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(Buffer.concat(received).length).toBe(Handshake.LENGTH)
      const [session] = yield* seeder.sessions
      expect(session !== undefined && Exit.isFailure(session) && Cause.failureOption(session.cause)).toMatchObject(
        Option.some({ reason: "HandshakeMismatch" })
      )
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("works over the live network too", () =>
    Effect.gen(function* () {
      const seeder = yield* ScriptedPeer.seeder({ info, infoHash, content: torrent.content, address: { host: "127.0.0.1", port: 0 } })
      yield* ScriptedPeer.connect(
        seeder.address,
        ScriptedPeer.script(
          ScriptedPeer.handshake({ infoHash, peerId: clientId }),
          ScriptedPeer.expect("Bitfield"),
          ScriptedPeer.send(Message.Interested),
          ScriptedPeer.expect("Unchoke", { timeout: "5 seconds" }),
          ScriptedPeer.send(Message.Request(0, 0, 16384)),
          ScriptedPeer.expect(
            (message) =>
              message._tag === "Piece" && Buffer.compare(message.block, torrent.content.subarray(0, 16384)) === 0,
            { timeout: "5 seconds" }
          )
        )
      )
    }).pipe(Effect.provide(NodeNetwork.layer)))
})

describe("ScriptedPeer.script", () => {
  it.scoped("a scripted leecher runs its steps against the seeder", () =>
    Effect.gen(function* () {
      yield* startSeeder()
      yield* ScriptedPeer.connect(
        SEEDER,
        ScriptedPeer.script(
          ScriptedPeer.handshake({ infoHash, peerId: clientId }),
          ScriptedPeer.send(Message.KeepAlive, Message.Interested),
          ScriptedPeer.expect("Unchoke", { skip: true }),
          ScriptedPeer.send(Message.Request(0, 0, 8)),
          ScriptedPeer.expect((message) => message._tag === "Piece" && message.block.length === 8),
          ScriptedPeer.close
        )
      )
    }).pipe(Effect.provide(swarm)))

  it.scoped("fails with Unexpected when another message comes, and Ended when the peer closes", () =>
    Effect.gen(function* () {
      yield* startSeeder()
      const steps = ScriptedPeer.handshake({ infoHash, peerId: clientId })
      const unexpected = yield* Effect.flip(ScriptedPeer.connect(SEEDER, ScriptedPeer.script(steps, ScriptedPeer.expect("Unchoke"))))
      expect(unexpected.reason).toBe("Unexpected")
      expect(unexpected.message).toBe("expected Unchoke, got Bitfield")

      yield* startSeeder({ behaviour: { disconnectAfterBlocks: 1 } }, { host: SEEDER.host, port: 6882 })
      const ended = yield* Effect.flip(
        ScriptedPeer.connect(
          { host: SEEDER.host, port: 6882 },
          ScriptedPeer.script(
            steps,
            ScriptedPeer.send(Message.Interested, Message.Request(0, 0, 8)),
            ScriptedPeer.expect("Piece", { skip: true }),
            ScriptedPeer.expect("Have")
          )
        )
      )
      expect(ended.reason).toBe("Ended")
    }).pipe(Effect.provide(swarm)))

  it.scoped("fails with Timeout when nothing matching comes in time, on the test clock", () =>
    Effect.gen(function* () {
      yield* startSeeder()
      const waiting = yield* Effect.fork(
        ScriptedPeer.connect(
          SEEDER,
          ScriptedPeer.script(ScriptedPeer.handshake({ infoHash, peerId: clientId }), ScriptedPeer.expect("Have", { skip: true, timeout: "3 seconds" }))
        )
      )
      yield* Effect.repeatN(Effect.yieldNow(), 100)
      yield* TestClock.adjust("2999 millis")
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(waiting)
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject(Option.some({ reason: "Timeout" }))
    }).pipe(Effect.provide(swarm)))
})

describe("ScriptedPeer misbehaviour", () => {
  /** The raw bytes the seeder sends after its handshake, until `count` bytes have come. */
  const bytesAfterHandshake = (behaviour: ScriptedPeer.Behaviour, count: number) =>
    Effect.gen(function* () {
      yield* startSeeder({ behaviour })
      const network = yield* Network.Network
      const connection = yield* network.connect(SEEDER)
      yield* connection.write(Handshake.encode(Handshake.make({ infoHash, peerId: clientId })))
      const received = yield* connection.chunks.pipe(
        Stream.scan(new Uint8Array(0), (bytes, chunk) => Buffer.concat([bytes, chunk])),
        Stream.takeUntil((bytes) => bytes.length >= Handshake.LENGTH + count),
        Stream.runLast
      )
      return Array.from(Option.getOrThrow(received).subarray(Handshake.LENGTH, Handshake.LENGTH + count))
    })

  it.scopedLive("sends the given length prefix (a piece header) where the bitfield belongs", () =>
    Effect.gen(function* () {
      expect(yield* bytesAfterHandshake({ lengthPrefix: 0xffff_ffff }, 5)).toEqual([0xff, 0xff, 0xff, 0xff, Message.Id.Piece])
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("sends bitfields with a spare bit set, or a byte too long", () =>
    Effect.gen(function* () {
      // 4 pieces: 1111 0000 is valid, 1111 0001 has a spare bit set.
      expect(yield* bytesAfterHandshake({ badBitfield: "spareBits" }, 6)).toEqual([0, 0, 0, 2, Message.Id.Bitfield, 0xf1])
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("sends a bitfield one byte too long", () =>
    Effect.gen(function* () {
      expect(yield* bytesAfterHandshake({ badBitfield: "wrongLength" }, 7)).toEqual([0, 0, 0, 3, Message.Id.Bitfield, 0xf0, 0xff])
    }).pipe(Effect.provide(swarm)))

  it.scopedLive("a leecher that requests while choked sends its requests before saying it is interested", () =>
    Effect.gen(function* () {
      const seen = yield* Effect.flatMap(SeederNetwork, (network) =>
        Effect.provideService(
          ScriptedPeer.listen(
            SEEDER,
            ScriptedPeer.script(
              ScriptedPeer.handshake({ infoHash, peerId: clientId }),
              ScriptedPeer.expect("Request"),
              ScriptedPeer.expect("Request", { skip: true }),
              ScriptedPeer.expect("Interested", { skip: true })
            )
          ),
          Network.Network,
          network
        ))
      yield* Effect.either(
        ScriptedPeer.connect(SEEDER, ScriptedPeer.leech({ info, infoHash, behaviour: { requestWhileChoked: true } })).pipe(
          Effect.timeout("5 seconds")
        )
      )
      const [session] = yield* seen.sessions
      expect(session !== undefined && Exit.isSuccess(session)).toBe(true)
    }).pipe(Effect.provide(swarm)))
})
