/**
 * The peer connections of one running torrent: one fiber per peer address, dialed or accepted,
 * kept in a fiber map of the supervisor's scope so that pausing the torrent closes them all.
 * Each connection posts its messages to the torrent's mailbox, and its end as `PeerClosed`.
 */
import { Effect, Fiber, FiberMap, Queue, type Scope } from "effect"
import { type Address, formatAddress, type Network } from "../net/Network.js"
import * as PeerConnection from "../peer/PeerConnection.js"
import type { PeerError } from "../peer/PeerError.js"

/** Starts connections to a torrent's peers. */
export interface Connections {
  /** Dials `address` in a fiber of its own; a `PeerConnected` follows if it answers. */
  readonly dial: (address: Address) => Effect.Effect<unknown, never, Network>
  /** Runs an incoming, handshaken connection until it ends. */
  readonly accept: (wire: PeerConnection.OpenedWire) => Effect.Effect<void>
}

/** The connections of one torrent, all sharing `context`; closed with the scope. */
export const make = (context: PeerConnection.PeerContext): Effect.Effect<Connections, never, Scope.Scope> =>
  Effect.gen(function* () {
    const connections = yield* FiberMap.make<string>()

    // Whatever ends a connection reaches the supervisor as PeerClosed.
    const run = <R>(key: string, connection: Effect.Effect<never, PeerError, R>) =>
      FiberMap.run(
        connections,
        key,
        connection.pipe(Effect.catchAll((error: PeerError) => Queue.offer(context.events, { _tag: "PeerClosed", key, error })))
      )

    return {
      dial: (address) => run(formatAddress(address), PeerConnection.dial(context, address)),
      // Incoming peers run in this supervisor's fiber map, so pausing the torrent closes them too;
      // the listener's handler waits for the connection and interrupts it if the listener closes.
      accept: (wire) =>
        run(formatAddress(wire.connection.remote), PeerConnection.accept(context, wire)).pipe(
          Effect.flatMap((fiber) => Fiber.await(fiber).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))),
          Effect.asVoid
        )
    }
  })
