import { Network, NodeNetwork } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"

const loopback = { host: "127.0.0.1", port: 0 }

describe("NodeNetwork", () => {
  it.scoped("echoes bytes over a loopback TCP connection", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, (connection) =>
        connection.chunks.pipe(Stream.runForEach(connection.write), Effect.ignore)
      )
      const connection = yield* network.connect(listener.address)
      const payload = new Uint8Array(200_000).map((_, i) => i % 251)
      yield* connection.write(payload)
      const received = yield* connection.chunks.pipe(
        Stream.runFoldWhile(
          [] as Array<Uint8Array>,
          (parts) => parts.reduce((n, part) => n + part.length, 0) < payload.length,
          (parts, chunk) => [...parts, chunk]
        )
      )
      expect(Buffer.concat(received).equals(payload)).toBe(true)
    }).pipe(Effect.provide(NodeNetwork.layer)))

  it.scoped("sends a gathered write as its parts in order, and reads them back through read", () =>
    Effect.gen(function* () {
      const network = yield* Network.Network
      const listener = yield* network.listen(loopback, (connection) =>
        connection.chunks.pipe(Stream.runForEach(connection.write), Effect.ignore)
      )
      const connection = yield* network.connect(listener.address)
      const parts = [new Uint8Array(13).fill(1), new Uint8Array(16384).fill(2), new Uint8Array(13).fill(3), new Uint8Array(16384).fill(4)]
      expect(Network.byteLength(parts)).toBe(2 * (13 + 16384))
      yield* connection.write(parts)
      const received: Array<Uint8Array> = []
      while (Buffer.concat(received).length < Network.byteLength(parts)) {
        received.push(...Chunk.toReadonlyArray(yield* connection.read))
      }
      expect(Buffer.concat(received).equals(Buffer.concat(parts))).toBe(true)
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
