/**
 * The Network service: every byte bitfiber sends or receives goes through it, so a test can swap
 * the live node:net/node:dgram implementation for a simulated network with faults.
 */
import { type Chunk, Context, Data, type Duration, type Effect, type Option, type Scope, type Stream } from "effect"

/** A host and port. Hosts are IP literals or names; IPv6 literals are written without brackets. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** `host:port`, with brackets around IPv6 literals. */
export const formatAddress = (address: Address): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

/** Why a network operation failed. */
export class NetworkError extends Data.TaggedError("NetworkError")<{
  readonly reason: "Refused" | "Timeout" | "Unreachable" | "Reset" | "Closed" | "Listen" | "Bind" | "Write" | "Read"
  readonly address: string
  readonly cause?: unknown
}> {}

/** What `Connection.write` takes: one buffer, or several sent in order as one gathered write. */
export type Outgoing = Uint8Array | ReadonlyArray<Uint8Array>

/** The number of bytes in `data` (a wrapper of `write` that meters bytes must not count buffers). */
export const byteLength = (data: Outgoing): number => {
  if (data instanceof Uint8Array) return data.length
  let total = 0
  for (const part of data) total += part.length
  return total
}

/** One TCP-like byte stream. Closed when the scope it was acquired in closes. */
export interface Connection {
  readonly remote: Address
  readonly local: Address
  /** Chunks as they arrive, ending when the other side closes. Consume it or `read`, once. */
  readonly chunks: Stream.Stream<Uint8Array, NetworkError>
  /**
   * The chunks that arrived since the last read (waits for one); fails with `None` once the
   * other side closed. The same bytes as `chunks` without a stream around them: a peer's reader
   * pulls this for every burst of data, and `Stream.toPull` costs 15 Effect steps a pull. The
   * chunks are only valid until the next read (the live network reads into a reused buffer):
   * copy what must live longer.
   */
  readonly read: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<NetworkError>>
  /**
   * Sends bytes, or several buffers in order as one gathered write (never copied into one);
   * completes once the transport is done with the buffers (handed to the system, or copied),
   * which is also the back-pressure: the caller may reuse them from then on, not before.
   */
  readonly write: (bytes: Outgoing) => Effect.Effect<void, NetworkError>
  /** Closes the connection now (idempotent). */
  readonly close: Effect.Effect<void>
}

/** A listening socket; accepted connections are handed to the handler given to `listen`. */
export interface Listener {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: Address
}

/** One received datagram. */
export interface Datagram {
  readonly bytes: Uint8Array
  readonly from: Address
}

/** A bound UDP socket. Closed when its scope closes. */
export interface UdpSocket {
  readonly address: Address
  readonly send: (bytes: Uint8Array, to: Address) => Effect.Effect<void, NetworkError>
  /** Received datagrams (a bounded buffer: excess datagrams are dropped, as UDP may). */
  readonly datagrams: Stream.Stream<Datagram>
}

/** The Network service. */
export class Network extends Context.Tag("bitfiber/Network")<
  Network,
  {
    /** Opens a connection, failing with `Timeout` after `timeout`. */
    readonly connect: (
      address: Address,
      options?: { readonly timeout?: Duration.DurationInput }
    ) => Effect.Effect<Connection, NetworkError, Scope.Scope>
    /**
     * Listens on `address` (port 0 = any free port). Each accepted connection runs `handler` in
     * its own fiber and is closed when the handler ends or the listener's scope closes.
     */
    readonly listen: (
      address: Address,
      handler: (connection: Connection) => Effect.Effect<void>
    ) => Effect.Effect<Listener, NetworkError, Scope.Scope>
    /** Binds a UDP socket (port 0 = any free port). */
    readonly udp: (address: Address) => Effect.Effect<UdpSocket, NetworkError, Scope.Scope>
  }
>() {}
