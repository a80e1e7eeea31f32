import type { Network } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, type Duration, Effect, Fiber, Option, Stream, TestClock } from "effect"

const SERVER = "10.0.0.1"
const CLIENT = "10.0.0.2"

/** Lets every runnable fiber run as far as it can without time passing. */
const settle = Effect.repeatN(Effect.yieldNow(), 100)

/** A connected pair on a fresh switchboard: the client's end and the server's end. */
const pair = (options?: MemoryNetwork.Options) =>
  Effect.gen(function* () {
    const board = yield* MemoryNetwork.make(options)
    const accepted = yield* Deferred.make<Network.Connection>()
    const listener = yield* board.network(SERVER).listen({ host: SERVER, port: 0 }, (connection) =>
      Effect.zipRight(Deferred.succeed(accepted, connection), Effect.never))
    const client = yield* board.network(CLIENT).connect(listener.address)
    return { board, client, server: yield* Deferred.await(accepted) }
  })

/** Everything received on `connection` so far, as one byte array, after running for `duration`. */
const receivedWithin = (connection: Network.Connection, duration: Duration.DurationInput) =>
  Effect.gen(function* () {
    const bytes: Array<number> = []
    const reader = yield* Effect.fork(Stream.runForEach(connection.chunks, (chunk) => Effect.sync(() => bytes.push(...chunk))))
    yield* settle
    yield* TestClock.adjust(duration)
    yield* settle
    yield* Fiber.interrupt(reader)
    return bytes
  })

describe("MemoryNetwork faults", () => {
  it.scoped("jitter delays chunks by different amounts but never reorders a byte stream", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* pair({ seed: 7 })
      yield* board.setLink({ from: CLIENT }, { latency: "10 millis", jitter: "500 millis" })
      for (let i = 0; i < 50; i++) yield* client.write(new Uint8Array([i]))
      const bytes = yield* receivedWithin(server, "1 second")
      expect(bytes).toEqual(Array.from({ length: 50 }, (_, i) => i))
    }))

  it.scoped("a stall holds every byte (and blocks the writer at the window) until it is lifted", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* pair({ window: 1000 })
      const lift = yield* board.addLink({ from: CLIENT }, { stall: true })
      const writer = yield* Effect.fork(client.write(new Uint8Array(1500)))
      expect(yield* receivedWithin(server, "1 minute")).toEqual([])
      expect(Option.isNone(yield* Fiber.poll(writer))).toBe(true)
      yield* lift
      const reader = yield* Effect.fork(Stream.runCollect(Stream.take(server.chunks, 1)))
      yield* settle
      yield* Fiber.join(writer)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(reader))[0]!.length).toBe(1500)
    }))

  it.scoped("cut resets the open connections that match, and only those", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* pair()
      const other = yield* board.network("10.0.0.3").connect({ host: SERVER, port: server.local.port })
      expect(yield* board.cut({ from: CLIENT })).toBe(1)
      expect((yield* Effect.flip(client.write(new Uint8Array(1)))).reason).toBe("Reset")
      expect((yield* Effect.flip(Stream.runDrain(server.chunks))).reason).toBe("Reset")
      yield* other.write(new Uint8Array(1))
      expect(yield* board.cut({ from: CLIENT })).toBe(0)
    }))

  it.scoped("addLink layers a rule over the others and its remover takes only that rule away", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      yield* board.setLink({}, { latency: "5 millis" })
      const remove = yield* board.addLink({ to: SERVER }, { refuse: true, latency: "50 millis" })
      expect(board.link(CLIENT, SERVER)).toMatchObject({ refuse: true, latency: "50 millis" })
      expect(board.link(SERVER, CLIENT)).toEqual({ latency: "5 millis" })
      yield* remove
      expect(board.link(CLIENT, SERVER)).toEqual({ latency: "5 millis" })
    }))

  /** Sends `count` numbered datagrams over a link with `link`; returns the numbers received, in order. */
  const datagrams = (link: MemoryNetwork.Link, count: number, seed = 1) =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make({ seed })
      yield* board.setLink({ from: CLIENT }, link)
      const receiver = yield* board.network(SERVER).udp({ host: SERVER, port: 0 })
      const sender = yield* board.network(CLIENT).udp({ host: CLIENT, port: 0 })
      for (let i = 0; i < count; i++) yield* sender.send(new Uint8Array([i]), receiver.address)
      const received: Array<number> = []
      const reader = yield* Effect.fork(Stream.runForEach(receiver.datagrams, (d) => Effect.sync(() => received.push(d.bytes[0]!))))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* settle
      yield* Fiber.interrupt(reader)
      return received
    })

  it.scoped("UDP: drop loses about the given share, duplicate doubles, reorder lets later datagrams overtake", () =>
    Effect.gen(function* () {
      const dropped = yield* datagrams({ drop: 0.5 }, 200)
      expect(dropped.length).toBeGreaterThan(60)
      expect(dropped.length).toBeLessThan(140)
      expect(yield* datagrams({ duplicate: 1 }, 5)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
      const reordered = yield* datagrams({ reorder: 0.5, reorderDelay: "1 second" }, 50)
      expect([...reordered].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i))
      expect(reordered).not.toEqual([...reordered].sort((a, b) => a - b))
    }))

  it.scoped("the same seed gives the same packet fates; another seed, others", () =>
    Effect.gen(function* () {
      const lossy = { drop: 0.3, duplicate: 0.2, reorder: 0.3, jitter: "200 millis" } as const
      const a = yield* datagrams(lossy, 100, 5)
      expect(yield* datagrams(lossy, 100, 5)).toEqual(a)
      expect(yield* datagrams(lossy, 100, 6)).not.toEqual(a)
    }))

  it.scoped("corrupt functions draw from the switchboard's generator", () =>
    Effect.gen(function* () {
      const { board, client, server } = yield* pair({ seed: 3 })
      yield* board.setLink({ from: CLIENT }, { corrupt: (bytes, random) => bytes.map(() => random.int(0, 255)) })
      yield* client.write(new Uint8Array(64))
      const bytes = yield* receivedWithin(server, "1 second")
      expect(bytes.length).toBe(64)
      expect(new Set(bytes).size).toBeGreaterThan(10)
    }))
})
