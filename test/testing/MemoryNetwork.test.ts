import { type Network } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Option, Scope, Stream, TestClock } from "effect"

const SERVER = "10.0.0.1"
const CLIENT = "10.0.0.2"

/** A switchboard with a server and a client host view. */
const hosts = (options?: MemoryNetwork.Options) =>
  Effect.map(MemoryNetwork.make(options), (board) => ({
    board,
    server: board.network(SERVER),
    client: board.network(CLIENT)
  }))

const echo = (connection: Network.Connection) => connection.chunks.pipe(Stream.runForEach(connection.write), Effect.ignore)

/** Reads exactly `n` bytes from a connection. */
const readBytes = (connection: Network.Connection, n: number) =>
  connection.chunks.pipe(
    Stream.scan(new Uint8Array(0), (bytes, chunk) => Buffer.concat([bytes, chunk])),
    Stream.takeUntil((bytes) => bytes.length >= n),
    Stream.runLast,
    Effect.map((bytes) => Uint8Array.from(Option.getOrElse(bytes, () => new Uint8Array(0)).subarray(0, n)))
  )

/** Lets every runnable fiber run as far as it can without time passing. */
const settle = Effect.repeatN(Effect.yieldNow(), 100)

describe("MemoryNetwork", () => {
  it.scoped("echoes bytes between two hosts and reports both ends' addresses", () =>
    Effect.gen(function* () {
      const { client, server } = yield* hosts()
      const accepted = yield* Deferred.make<Network.Address>()
      const listener = yield* server.listen({ host: SERVER, port: 6881 }, (connection) =>
        Effect.zipRight(Deferred.succeed(accepted, connection.remote), echo(connection)))
      expect(listener.address).toEqual({ host: SERVER, port: 6881 })
      const connection = yield* client.connect(listener.address)
      const payload = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251)
      yield* connection.write(payload)
      // Buffer.compare: vitest's deep equality takes seconds on 100 kB.
      expect(Buffer.compare(yield* readBytes(connection, payload.length), payload)).toBe(0)
      expect(connection.remote).toEqual({ host: SERVER, port: 6881 })
      expect(connection.local.host).toBe(CLIENT)
      expect(yield* Deferred.await(accepted)).toEqual(connection.local)
    }))

  it.scoped("binds the wildcard host to the view's own host and allocates distinct free ports", () =>
    Effect.gen(function* () {
      const { server } = yield* hosts()
      const a = yield* server.listen({ host: "0.0.0.0", port: 0 }, () => Effect.void)
      const b = yield* server.listen({ host: "0.0.0.0", port: 0 }, () => Effect.void)
      expect(a.address.host).toBe(SERVER)
      expect(a.address.port).toBeGreaterThan(0)
      expect(b.address.port).not.toBe(a.address.port)
      const taken = yield* Effect.flip(server.listen(a.address, () => Effect.void))
      expect(taken.reason).toBe("Listen")
    }))

  it.scoped("fails with Refused when nothing listens, or when the link refuses", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      expect((yield* Effect.flip(client.connect({ host: SERVER, port: 6881 }))).reason).toBe("Refused")
      const listener = yield* server.listen({ host: SERVER, port: 6881 }, () => Effect.void)
      yield* board.setLink({ from: CLIENT, to: SERVER }, { refuse: true })
      expect((yield* Effect.flip(client.connect(listener.address))).reason).toBe("Refused")
      yield* board.clearLinks
      yield* client.connect(listener.address)
    }))

  it.scoped("a blackholed connect fails with Timeout after its timeout", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const listener = yield* server.listen({ host: SERVER, port: 6881 }, () => Effect.void)
      yield* board.setLink({ to: SERVER }, { blackhole: true })
      const attempt = yield* Effect.fork(Effect.scoped(client.connect(listener.address, { timeout: "5 seconds" })))
      yield* TestClock.adjust("4999 millis")
      expect(Option.isNone(yield* Fiber.poll(attempt))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(attempt)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.reason).toBe("Timeout")
    }))

  it.scoped("blocks a writer once the reader leaves a window's worth unread, and resumes when it reads", () =>
    Effect.gen(function* () {
      const { client, server } = yield* hosts({ window: 256 * 1024 })
      const startReading = yield* Deferred.make<void>()
      let received = 0
      const listener = yield* server.listen({ host: SERVER, port: 0 }, (connection) =>
        Deferred.await(startReading).pipe(
          Effect.zipRight(connection.chunks.pipe(Stream.runForEach((chunk) => Effect.sync(() => (received += chunk.length))))),
          Effect.ignore
        ))
      const connection = yield* client.connect(listener.address)
      const chunk = new Uint8Array(64 * 1024)
      let written = 0
      const writer = yield* Effect.fork(
        Effect.repeatN(Effect.zipRight(connection.write(chunk), Effect.sync(() => (written += chunk.length))), 15)
      )
      // Bounded wait: however long we wait, the writer stays blocked.
      const joined = yield* Effect.fork(Effect.timeoutOption(Fiber.join(writer), "10 seconds"))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      expect(Option.isNone(yield* Fiber.join(joined))).toBe(true)
      // Four 64 KiB writes fit the window; the fifth went out and waits for room.
      expect(written).toBe(256 * 1024)
      expect(received).toBe(0)

      yield* Deferred.succeed(startReading, undefined)
      yield* Fiber.join(writer)
      expect(written).toBe(16 * 64 * 1024)
    }))

  it.scoped("closing one side ends the other's stream and makes writes fail with Closed", () =>
    Effect.gen(function* () {
      const { client, server } = yield* hosts()
      const serverSide = yield* Deferred.make<Network.Connection>()
      const listener = yield* server.listen({ host: SERVER, port: 0 }, (connection) =>
        Effect.zipRight(Deferred.succeed(serverSide, connection), Effect.never))
      const connection = yield* client.connect(listener.address)
      const remote = yield* Deferred.await(serverSide)
      yield* connection.write(new Uint8Array([1, 2, 3]))
      yield* connection.close
      // Bytes written before the close still arrive, then the stream ends.
      const received = yield* remote.chunks.pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
      expect(received.map((chunk) => Array.from(chunk))).toEqual([[1, 2, 3]])
      expect((yield* Effect.flip(remote.write(new Uint8Array([4])))).reason).toBe("Closed")
      expect((yield* Effect.flip(connection.write(new Uint8Array([4])))).reason).toBe("Closed")
      expect(Chunk.size(yield* Stream.runCollect(connection.chunks))).toBe(0)
    }))

  it.scoped("closing the listener's scope closes its accepted connections", () =>
    Effect.gen(function* () {
      const { client, server } = yield* hosts()
      const scope = yield* Scope.make()
      const listener = yield* Scope.extend(server.listen({ host: SERVER, port: 0 }, () => Effect.never), scope)
      const connection = yield* client.connect(listener.address)
      yield* Scope.close(scope, Exit.void)
      expect(Chunk.size(yield* Stream.runCollect(connection.chunks))).toBe(0)
      expect((yield* Effect.flip(connection.write(new Uint8Array([1])))).reason).toBe("Closed")
      expect((yield* Effect.flip(client.connect(listener.address))).reason).toBe("Refused")
    }))

  it.scoped("delays delivery by the link's latency", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const listener = yield* server.listen({ host: SERVER, port: 0 }, echo)
      const connection = yield* client.connect(listener.address)
      yield* board.setLink({ from: CLIENT, to: SERVER }, { latency: "100 millis" })
      yield* connection.write(new Uint8Array([7]))
      const read = yield* Effect.fork(readBytes(connection, 1))
      yield* settle
      yield* TestClock.adjust("99 millis")
      expect(Option.isNone(yield* Fiber.poll(read))).toBe(true)
      yield* TestClock.adjust("1 millis")
      // The echo's way back has no latency.
      expect(Array.from(yield* Fiber.join(read))).toEqual([7])
    }))

  it.scoped("paces a link by its bandwidth", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const serverSide = yield* Deferred.make<Network.Connection>()
      const listener = yield* server.listen({ host: SERVER, port: 0 }, (connection) =>
        Effect.zipRight(Deferred.succeed(serverSide, connection), Effect.never))
      const connection = yield* client.connect(listener.address)
      yield* board.setLink({ from: CLIENT, to: SERVER }, { bandwidth: 10_000 })
      yield* connection.write(new Uint8Array(20_000))
      yield* connection.write(new Uint8Array(30_000))
      const read = yield* Effect.fork(readBytes(yield* Deferred.await(serverSide), 50_000))
      yield* settle
      yield* TestClock.adjust("4999 millis")
      expect(Option.isNone(yield* Fiber.poll(read))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(read)).length).toBe(50_000)
    }))

  it.scoped("cuts a connection after cutAfterBytes, resetting both sides", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const serverSide = yield* Deferred.make<Network.Connection>()
      const listener = yield* server.listen({ host: SERVER, port: 0 }, (connection) =>
        Effect.zipRight(Deferred.succeed(serverSide, connection), Effect.never))
      yield* board.setLink({ from: CLIENT }, { cutAfterBytes: 60 })
      const connection = yield* client.connect(listener.address)
      yield* connection.write(new Uint8Array(40).fill(1))
      expect((yield* Effect.flip(connection.write(new Uint8Array(40).fill(2)))).reason).toBe("Reset")
      const remote = yield* Deferred.await(serverSide)
      let bytes = 0
      const ended = yield* Effect.flip(remote.chunks.pipe(Stream.runForEach((chunk) => Effect.sync(() => (bytes += chunk.length)))))
      expect(bytes).toBe(60)
      expect(ended.reason).toBe("Reset")
      expect((yield* Effect.flip(remote.write(new Uint8Array(1)))).reason).toBe("Reset")
      expect((yield* Effect.flip(Stream.runDrain(connection.chunks))).reason).toBe("Reset")
    }))

  it.scoped("corrupts bytes in transit with the link's corrupt function", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const listener = yield* server.listen({ host: SERVER, port: 0 }, echo)
      yield* board.setLink({ from: SERVER }, { corrupt: (bytes) => bytes.map((byte) => byte ^ 0xff) })
      const connection = yield* client.connect(listener.address)
      const sent = new Uint8Array([0, 1, 2])
      yield* connection.write(sent)
      expect(Array.from(yield* readBytes(connection, 3))).toEqual([255, 254, 253])
      expect(Array.from(sent)).toEqual([0, 1, 2])
    }))

  it.scoped("delivers UDP datagrams to the bound socket after the latency, and drops them when none is bound", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* hosts()
      const a = yield* client.udp({ host: "0.0.0.0", port: 0 })
      const b = yield* server.udp({ host: SERVER, port: 6881 })
      yield* a.send(new Uint8Array([9]), { host: SERVER, port: 6882 })
      yield* board.setLink({ from: CLIENT, to: SERVER }, { latency: "50 millis" })
      yield* a.send(new Uint8Array([1, 2, 3]), b.address)
      const first = yield* Effect.fork(b.datagrams.pipe(Stream.take(1), Stream.runCollect))
      yield* settle
      yield* TestClock.adjust("49 millis")
      expect(Option.isNone(yield* Fiber.poll(first))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const [datagram] = Chunk.toReadonlyArray(yield* Fiber.join(first))
      expect(Array.from(datagram!.bytes)).toEqual([1, 2, 3])
      expect(datagram!.from).toEqual(a.address)
      expect(a.address.host).toBe(CLIENT)
      // The datagram sent to 6882 before anything was bound there is gone for good.
      const late = yield* server.udp({ host: SERVER, port: 6882 })
      const nothing = yield* Effect.fork(late.datagrams.pipe(Stream.take(1), Stream.runCollect))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      expect(Option.isNone(yield* Fiber.poll(nothing))).toBe(true)
    }))
})
