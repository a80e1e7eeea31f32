import { Network, NodeNetwork } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"

const loopback = { host: "127.0.0.1", port: 0 }

/** The stream's chunks, kept, until they hold `length` bytes. */
const firstBytes = <E>(chunks: Stream.Stream<Uint8Array, E>, length: number) =>
  chunks.pipe(
    Stream.runFoldWhile(
      [] as Array<Uint8Array>,
      (parts) => parts.reduce((n, part) => n + part.length, 0) < length,
      (parts, chunk) => [...parts, chunk]
    )
  )

/** A listener's handler that sends every byte back. */
const echo = (connection: Network.Connection) => connection.chunks.pipe(Stream.runForEach(connection.write), Effect.ignore)

describe("NodeNetwork", () => {
  it.scoped("echoes bytes over a loopback TCP connection", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, echo)
      const connection = yield* network.connect(listener.address)
      const payload = new Uint8Array(200_000).map((_, i) => i % 251)
      yield* connection.write(payload)
      const received = yield* firstBytes(connection.chunks, payload.length)
      expect(Buffer.concat(received).equals(payload)).toBe(true)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("sends a gathered write as its parts in order, and reads them back through read", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, echo)
      const connection = yield* network.connect(listener.address)
      const parts = [new Uint8Array(13).fill(1), new Uint8Array(16384).fill(2), new Uint8Array(13).fill(3), new Uint8Array(16384).fill(4)]
      expect(Network.byteLength(parts)).toBe(2 * (13 + 16384))
      yield* connection.write(parts)
      const received: Array<Uint8Array> = []
      while (Buffer.concat(received).length < Network.byteLength(parts)) {
        // Copies: a read's chunks are only valid until the next read.
        for (const chunk of yield* connection.read) received.push(new Uint8Array(chunk))
      }
      expect(Buffer.concat(received).equals(Buffer.concat(parts))).toBe(true)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  // 4 MiB is eight receive rings: bytes held past their read, or chunks not copied for the stream,
  // would be overwritten by later reads.
  const served = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) % 253)
  const serve = (connection: Network.Connection) => connection.write(served).pipe(Effect.zipRight(Effect.never), Effect.ignore)

  it.scopedLive("keeps a read's chunks intact until the next read, while more bytes arrive", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, serve)
      const connection = yield* network.connect(listener.address)
      let offset = 0
      while (offset < served.length) {
        const chunks = yield* connection.read
        // A slow reader: the socket goes on reading into the ring meanwhile.
        yield* Effect.sleep("1 millis")
        for (const chunk of chunks) {
          expect(Buffer.from(chunk).equals(served.subarray(offset, offset + chunk.length))).toBe(true)
          offset += chunk.length
        }
      }
      expect(offset).toBe(served.length)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("gives a stream's consumer chunks of its own, which it may keep", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, serve)
      const connection = yield* network.connect(listener.address)
      const kept = yield* firstBytes(connection.chunks, served.length)
      expect(Buffer.concat(kept).equals(served)).toBe(true)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("fails with Refused when nothing listens", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const port = yield* Effect.scoped(
        network.listen(loopback, () => Effect.void).pipe(Effect.map((l) => l.address.port))
      )
      const error = yield* Effect.flip(network.connect({ host: "127.0.0.1", port }))
      expect(error.reason).toBe("Refused")
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("the listener's handler sees the stream end when the client closes", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      let ended = false
      const listener = yield* network.listen(loopback, (connection) =>
        connection.chunks.pipe(
          Stream.runDrain,
          Effect.ignore,
          Effect.tap(() => Effect.sync(() => (ended = true)))
        )
      )
      yield* Effect.scoped(network.connect(listener.address).pipe(Effect.tap((c) => c.write(new Uint8Array([1])))))
      for (let i = 0; i < 100 && !ended; i++) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 10)))
      expect(ended).toBe(true)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("sends and receives UDP datagrams", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const a = yield* network.udp(loopback)
      const b = yield* network.udp(loopback)
      yield* a.send(new Uint8Array([1, 2, 3]), b.address)
      const [datagram] = yield* b.datagrams.pipe(Stream.take(1), Stream.runCollect, Effect.map(Chunk.toArray))
      expect(Array.from(datagram!.bytes)).toEqual([1, 2, 3])
      expect(datagram!.from.port).toBe(a.address.port)
    }).pipe(Effect.provide(NodeNetwork.layer)))
})
