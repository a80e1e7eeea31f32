/** The live `Network`: node:net for TCP, node:dgram for UDP. */
import { Chunk, Duration, Effect, FiberSet, Layer, Option, Queue, Stream } from "effect"
import * as Dgram from "node:dgram"
import * as Net from "node:net"
import * as ReceiveRing from "./internal/receiveRing.js"
import { type Address, byteLength, type Connection, type Datagram, formatAddress, Network, NetworkError } from "./Network.js"

const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(10)
/** How long a closing socket may take to flush what was written to it. */
const FLUSH_ON_CLOSE_MILLIS = 5000
/** Datagrams buffered per UDP socket before new ones are dropped. */
const UDP_BUFFER = 1024

const errorReason = (cause: unknown): NetworkError["reason"] => {
  switch ((cause as NodeJS.ErrnoException | undefined)?.code) {
    case "ECONNREFUSED":
      return "Refused"
    case "ETIMEDOUT":
      return "Timeout"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "Unreachable"
    case "ECONNRESET":
    case "EPIPE":
      return "Reset"
    default:
      return "Read"
  }
}

/** Bytes buffered from a socket before it is paused until the reader catches up. */
const READ_BUFFER_BYTES = 1024 * 1024
/**
 * The receive ring of a socket we open: node reads up to this much per turn of the event loop
 * before the socket pauses (256 KiB: 12% more CPU per GiB downloaded than 512 KiB or 1 MiB).
 */
const RING_BYTES = 512 * 1024

/** A socket's incoming bytes: the pull, and where chunks go in (called by 'data' or `onread`). */
interface Inbox {
  readonly read: Connection["read"]
  readonly received: (chunk: Uint8Array) => void
}

/**
 * The socket's incoming bytes as a pull. Not `Stream.fromAsyncIterable(socket)`: its finalizer
 * waits for a pending read, so closing a scope would hang until the peer sent or closed. With a
 * `ring` (the socket was opened with its `onread`), chunks are views of the ring, valid until the
 * next pull; without, node's 'data' chunks.
 */
const readable = (socket: Net.Socket, label: string, ring?: ReceiveRing.ReceiveRing): Inbox => {
  let buffered: Array<Uint8Array> = []
  let bytes = 0
  let ended = false
  let failure: NetworkError | undefined
  let wake: (() => void) | undefined
  let wakeScheduled = false
  // One wake-up per turn of the event loop, not per chunk: libuv reads up to 32 chunks of 64 KiB
  // in one go, and each wake-up costs the reader, the torrent and the writer a fiber hop.
  const notify = () => {
    if (wake === undefined || wakeScheduled) return
    wakeScheduled = true
    setImmediate(() => {
      wakeScheduled = false
      wake?.()
    })
  }
  const received = (chunk: Uint8Array) => {
    buffered.push(chunk)
    bytes += chunk.length
    if (bytes >= READ_BUFFER_BYTES) socket.pause()
    notify()
  }
  socket.on("end", () => {
    ended = true
    notify()
  })
  socket.on("close", () => {
    ended = true
    notify()
  })
  socket.on("error", (cause) => {
    failure ??= new NetworkError({ reason: errorReason(cause), address: label, cause })
    notify()
  })
  const pull = Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<NetworkError>>((resume) => {
    // A new pull: the reader is done with the chunks of the last one, which may make room in a
    // full ring (that paused the socket with nothing buffered).
    if (ring !== undefined) {
      ring.consumed()
      if (socket.isPaused()) socket.resume()
    }
    const deliver = (): boolean => {
      if (buffered.length > 0) {
        const out = buffered
        buffered = []
        bytes = 0
        ring?.handOut()
        if (socket.isPaused()) socket.resume()
        resume(Effect.succeed(Chunk.unsafeFromArray(out)))
      } else if (failure !== undefined) resume(Effect.fail(Option.some(failure)))
      else if (ended) resume(Effect.fail(Option.none()))
      else return false
      wake = undefined
      return true
    }
    if (deliver()) return
    wake = () => void deliver()
    return Effect.sync(() => {
      wake = undefined
    })
  })
  return { read: pull, received }
}

/** Closes a socket without losing bytes still queued for it: flush, then destroy (bounded wait). */
const release = (socket: Net.Socket) =>
  Effect.sync(() => {
    if (socket.destroyed) return
    if (socket.writableLength === 0) {
      socket.destroy()
      return
    }
    const timer = setTimeout(() => socket.destroy(), FLUSH_ON_CLOSE_MILLIS)
    timer.unref()
    socket.once("finish", () => {
      clearTimeout(timer)
      socket.destroy()
    })
    socket.end()
  })

/**
 * Writes `parts` corked, so node hands them to one writev call instead of one write each (and
 * nothing copies them into one buffer); `done` runs once they are all written out.
 */
const writeGathered = (socket: Net.Socket, parts: ReadonlyArray<Uint8Array>, done: (error?: Error | null) => void) => {
  socket.cork()
  parts.forEach((part, i) => (i === parts.length - 1 ? socket.write(part, done) : socket.write(part)))
  socket.uncork()
}

/** A socket we opened, and its pull. */
interface Opened {
  readonly socket: Net.Socket
  readonly read: Connection["read"]
}

/** Wraps a connected node socket and its pull (`transient`: its chunks are reused after the next pull). */
const fromSocket = (socket: Net.Socket, read: Connection["read"], transient: boolean): Connection => {
  const remote = { host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }
  const label = formatAddress(remote)
  return {
    remote,
    local: { host: socket.localAddress ?? "", port: socket.localPort ?? 0 },
    // A stream's consumer may keep its chunks: copies of the ring's, which the next read reuses.
    chunks: Stream.repeatEffectChunkOption(transient ? Effect.map(read, Chunk.map((chunk) => new Uint8Array(chunk))) : read),
    read,
    write: (bytes) =>
      Effect.async<void, NetworkError>((resume) => {
        if (socket.destroyed || socket.writableEnded) {
          resume(Effect.fail(new NetworkError({ reason: "Closed", address: label })))
          return
        }
        if (byteLength(bytes) === 0) {
          resume(Effect.void)
          return
        }
        // On the write's callback, not on `write` returning true (room in node's buffer): node
        // may still hold the buffers then, and the caller reuses them once this completes.
        const done = (error?: Error | null) => {
          socket.off("close", done)
          resume(
            error || socket.destroyed
              ? Effect.fail(new NetworkError({ reason: "Closed", address: label, ...(error ? { cause: error } : {}) }))
              : Effect.void
          )
        }
        socket.on("close", done)
        if (bytes instanceof Uint8Array) socket.write(bytes, done)
        else writeGathered(socket, bytes, done)
        return Effect.sync(() => {
          socket.off("close", done)
        })
      }),
    close: Effect.sync(() => {
      socket.destroy()
    })
  }
}

const connect = (address: Address, options?: { readonly timeout?: Duration.DurationInput }) => {
  const label = formatAddress(address)
  return Effect.acquireRelease(
    Effect.async<Opened, NetworkError>((resume) => {
      const ring = ReceiveRing.make(RING_BYTES)
      const socket = Net.connect({
        host: address.host,
        port: address.port,
        noDelay: true,
        onread: {
          // Asked after every read. A full ring pauses the socket until the reader reads again;
          // the read after that goes to a buffer of its own.
          buffer: () => {
            const room = ring.reserve()
            if (room !== undefined) return room
            socket.pause()
            return Buffer.allocUnsafe(ReceiveRing.READ_BYTES)
          },
          // Called once connected, after `inbox` below exists.
          callback: (n, buffer) => {
            inbox.received(ring.filled(buffer, n))
            return true
          }
        }
      })
      const inbox = readable(socket, label, ring)
      const onError = (cause: Error) => {
        socket.destroy()
        resume(Effect.fail(new NetworkError({ reason: errorReason(cause), address: label, cause })))
      }
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        // Errors after connect surface through reads and writes; keep node from throwing.
        socket.on("error", () => {})
        resume(Effect.succeed({ socket, read: inbox.read }))
      })
      return Effect.sync(() => socket.destroy())
    }).pipe(
      Effect.timeoutFail({
        duration: options?.timeout ?? DEFAULT_CONNECT_TIMEOUT,
        onTimeout: () => new NetworkError({ reason: "Timeout", address: label })
      })
    ),
    (opened) => release(opened.socket)
  ).pipe(Effect.map(({ read, socket }) => fromSocket(socket, read, true)))
}

const listen = (address: Address, handler: (connection: Connection) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const run = yield* FiberSet.makeRuntime<never>()
    const sockets = new Set<Net.Socket>()
    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server, NetworkError>((resume) => {
        const server = Net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
          socket.on("error", () => {})
          sockets.add(socket)
          socket.once("close", () => sockets.delete(socket))
          // Node gives accepted sockets no `onread`: their chunks are node's own, kept as long as wanted.
          const inbox = readable(socket, formatAddress({ host: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }))
          socket.on("data", inbox.received)
          run(handler(fromSocket(socket, inbox.read, false)).pipe(Effect.ensuring(release(socket))))
        })
        server.once("error", (cause) =>
          resume(Effect.fail(new NetworkError({ reason: "Listen", address: formatAddress(address), cause })))
        )
        server.listen(address.port, address.host, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const bound = server.address() as Net.AddressInfo
    return { address: { host: bound.address, port: bound.port } }
  })

const udp = (address: Address) =>
  Effect.gen(function* () {
    const datagrams = yield* Effect.acquireRelease(Queue.dropping<Datagram>(UDP_BUFFER), Queue.shutdown)
    const socket = yield* Effect.acquireRelease(
      Effect.async<Dgram.Socket, NetworkError>((resume) => {
        const socket = Dgram.createSocket(Net.isIPv6(address.host) ? "udp6" : "udp4")
        socket.once("error", (cause) =>
          resume(Effect.fail(new NetworkError({ reason: "Bind", address: formatAddress(address), cause })))
        )
        socket.on("message", (bytes, info) => {
          Queue.unsafeOffer(datagrams, { bytes, from: { host: info.address, port: info.port } })
        })
        socket.bind(address.port, address.host, () => {
          socket.removeAllListeners("error")
          socket.on("error", () => {})
          resume(Effect.succeed(socket))
        })
      }),
      (socket) => Effect.sync(() => socket.close())
    )
    const bound = socket.address()
    return {
      address: { host: bound.address, port: bound.port },
      send: (bytes: Uint8Array, to: Address) =>
        Effect.async<void, NetworkError>((resume) => {
          socket.send(bytes, to.port, to.host, (cause) =>
            resume(
              cause
                ? Effect.fail(new NetworkError({ reason: "Write", address: formatAddress(to), cause }))
                : Effect.void
            )
          )
        }),
      datagrams: Stream.fromQueue(datagrams)
    }
  })

/** The live network layer. */
export const layer: Layer.Layer<Network> = Layer.succeed(Network, { connect, listen, udp })
