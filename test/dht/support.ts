/** Helpers for DHT tests on the simulated network: raw KRPC sockets, nodes, and a clock driver. */
import { Dht, Krpc, Network, NodeId } from "@bitfiber/core"
import { MemoryNetwork } from "@bitfiber/core/testing"
import { type Duration, Effect, Either, Fiber, Option, type Scope, Stream, TestClock } from "effect"

/** Lets every runnable fiber run as far as it can without time passing. */
export const settle = Effect.repeatN(Effect.yieldNow(), 50)

/** A node id of 20 equal bytes. */
export const idOf = (byte: number) => NodeId.unsafeFromBytes(new Uint8Array(20).fill(byte))

/** A DHT node bound at `host`:6881 of the switchboard. */
export const startNode = (
  board: MemoryNetwork.Switchboard,
  host: string,
  options?: Omit<Dht.Options, "address">
): Effect.Effect<Dht.Dht, Network.NetworkError, Scope.Scope> =>
  Effect.provideService(Dht.make({ address: { host, port: 6881 }, ...options }), Network.Network, board.network(host))

/** A plain UDP socket speaking KRPC by hand, for scripted and hostile nodes. */
export interface RawNode {
  readonly address: Network.Address
  readonly send: (message: Krpc.Message, to: Network.Address) => Effect.Effect<void>
  readonly sendBytes: (bytes: Uint8Array, to: Network.Address) => Effect.Effect<void>
  /** The next datagram, which must arrive without time passing. */
  readonly receive: Effect.Effect<{ readonly from: Network.Address; readonly message: Krpc.Message }>
  /** Fails the test if a datagram arrives without time passing. */
  readonly expectSilence: Effect.Effect<void>
  readonly socket: Network.UdpSocket
}

/** Binds a raw KRPC socket at `host`:`port`. */
export const rawNode = (board: MemoryNetwork.Switchboard, host: string, port = 7000): Effect.Effect<RawNode, Network.NetworkError, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* board.network(host).udp({ host, port })
    const next = Effect.gen(function* () {
      const fiber = yield* Effect.fork(Stream.runHead(socket.datagrams))
      yield* settle
      const result = yield* Fiber.poll(fiber)
      yield* Fiber.interrupt(fiber)
      return Option.flatMap(result, (exit) => (exit._tag === "Success" ? exit.value : Option.none()))
    })
    return {
      address: socket.address,
      socket,
      send: (message, to) => Effect.orDie(socket.send(Either.getOrThrow(Krpc.encode(message)), to)),
      sendBytes: (bytes, to) => Effect.orDie(socket.send(bytes, to)),
      receive: Effect.flatMap(next, (datagram) =>
        Option.isNone(datagram)
          ? Effect.dieMessage(`no datagram arrived at ${host}`)
          : Effect.succeed({ from: datagram.value.from, message: Either.getOrThrow(Krpc.decode(datagram.value.bytes)) })),
      expectSilence: Effect.flatMap(next, (datagram) =>
        Option.isSome(datagram) ? Effect.dieMessage(`unexpected datagram at ${host}`) : Effect.void)
    }
  })

/**
 * Runs `effect` to its end, advancing the TestClock in `step`s while it waits (for timeouts),
 * at most `maxSteps` times.
 */
export const drive = <A, E>(effect: Effect.Effect<A, E>, options?: { readonly step?: Duration.DurationInput; readonly maxSteps?: number }) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    const maxSteps = options?.maxSteps ?? 400
    for (let step = 0; step < maxSteps; step++) {
      yield* settle
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return yield* exit.value
      yield* TestClock.adjust(options?.step ?? "250 millis")
    }
    yield* Fiber.interrupt(fiber)
    return yield* Effect.dieMessage(`did not finish within ${maxSteps} clock steps`)
  })
