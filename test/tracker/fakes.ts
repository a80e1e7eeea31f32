/** Test doubles for tracker tests: a scripted TCP network and a scripted TrackerClient. */
import { Announce, Network, TrackerClient } from "@bitfiber/core"
import { Clock, Effect, Layer, Queue, Ref, Stream } from "effect"

/** A scripted HTTP server: answers a request (its target, to this host and port) with these byte pieces. */
export type HttpScript = (request: {
  readonly target: string
  readonly host: string
  readonly port: number
}) => ReadonlyArray<string | Uint8Array> | "hang" | "reset"

const bytes = (piece: string | Uint8Array) => (typeof piece === "string" ? Buffer.from(piece, "latin1") : piece)

/**
 * A Network whose `connect` plays `script`: the request written is parsed for its target, then
 * the reply pieces are streamed and the connection ends. Hosts `refuse(address)` names refuse
 * connections. Every request sent is recorded.
 */
export const scriptedHttp = (script: HttpScript, refuse: (address: Network.Address) => boolean = () => false) =>
  Effect.gen(function* () {
    const requests = yield* Ref.make<ReadonlyArray<string>>([])
    const connect = (address: Network.Address) =>
      Effect.gen(function* () {
        if (refuse(address)) {
          return yield* new Network.NetworkError({ reason: "Refused", address: Network.formatAddress(address) })
        }
        const written = yield* Ref.make("")
        const connection: Network.Connection = {
          remote: address,
          local: { host: "127.0.0.1", port: 40000 },
          write: (chunk) =>
            Effect.gen(function* () {
              const text = yield* Ref.updateAndGet(written, (w) => w + Buffer.concat(chunk instanceof Uint8Array ? [chunk] : chunk).toString("latin1"))
              if (text.endsWith("\r\n\r\n")) yield* Ref.update(requests, (all) => [...all, text])
            }),
          chunks: Stream.unwrap(
            Effect.map(Ref.get(written), (text) => {
              const reply = script({ target: text.split(" ")[1] ?? "", host: address.host, port: address.port })
              if (reply === "hang") return Stream.never
              if (reply === "reset") return Stream.fail(new Network.NetworkError({ reason: "Reset", address: "peer" }))
              return Stream.fromIterable(reply.map(bytes))
            })
          ),
          read: Effect.dieMessage("the scripted tracker connection is read through chunks"),
          close: Effect.void
        }
        return connection
      })
    const layer = Layer.succeed(Network.Network, {
      connect,
      listen: () => Effect.dieMessage("listen is not scripted"),
      udp: () => Effect.dieMessage("udp is not scripted")
    })
    return { layer, requests: Ref.get(requests) }
  })

/** An HTTP response with a Content-Length. */
export const httpResponse = (body: string | Uint8Array, status = "200 OK", headers: ReadonlyArray<string> = []) => {
  const payload = bytes(body)
  return [
    `HTTP/1.1 ${status}\r\n${[...headers, `Content-Length: ${payload.length}`].join("\r\n")}\r\n\r\n`,
    payload
  ]
}

/** One announce a fake TrackerClient saw. */
export interface SeenAnnounce {
  readonly url: string
  readonly event: Announce.Event
  readonly left: number
  /** Clock time in milliseconds. */
  readonly at: number
}

/**
 * A TrackerClient whose answers come from `answer(url, request)`; every announce is recorded in
 * order. Not scrapable.
 */
export const fakeTrackers = (
  answer: (url: string, request: Announce.AnnounceRequest) => Effect.Effect<Announce.AnnounceResponse, Announce.TrackerError>
) =>
  Effect.gen(function* () {
    const seen = yield* Ref.make<ReadonlyArray<SeenAnnounce>>([])
    const layer = Layer.succeed(TrackerClient.TrackerClient, {
      announce: (url, request) =>
        Clock.currentTimeMillis.pipe(
          Effect.flatMap((at) => Ref.update(seen, (all) => [...all, { url, event: request.event, left: request.left, at }])),
          Effect.zipRight(answer(url, request))
        ),
      scrape: (url) => Effect.fail(new Announce.TrackerError({ url, reason: "InvalidUrl", message: "no scrape" }))
    })
    return { layer, seen: Ref.get(seen) }
  })

/** A tracker that is down. */
export const unreachable = (url: string) =>
  Effect.fail(new Announce.TrackerError({ url, reason: "Unreachable", message: "connection refused" }))

/** One datagram a scripted UDP tracker received, with the Clock time it arrived. */
export interface SentDatagram {
  readonly bytes: Uint8Array
  readonly to: Network.Address
  readonly at: number
}

/**
 * A Network whose UDP sockets talk to a script: each datagram sent is recorded and answered
 * with the datagrams `respond` returns, each as if from the address it was sent to (or `from`).
 */
export const scriptedUdp = (
  respond: (request: Uint8Array, count: number) => ReadonlyArray<{ readonly bytes: Uint8Array; readonly from?: Network.Address }>
) =>
  Effect.gen(function* () {
    const sent = yield* Ref.make<ReadonlyArray<SentDatagram>>([])
    const binds = yield* Ref.make<ReadonlyArray<Network.Address>>([])
    const udp = (address: Network.Address) =>
      Effect.gen(function* () {
        yield* Ref.update(binds, (all) => [...all, address])
        const inbox = yield* Effect.acquireRelease(Queue.unbounded<Network.Datagram>(), Queue.shutdown)
        const socket: Network.UdpSocket = {
          address: { host: address.host, port: 50000 },
          send: (bytes, to) =>
            Effect.gen(function* () {
              const at = yield* Clock.currentTimeMillis
              const count = (yield* Ref.updateAndGet(sent, (all) => [...all, { bytes, to, at }])).length
              for (const reply of respond(bytes, count)) yield* Queue.offer(inbox, { bytes: reply.bytes, from: reply.from ?? to })
            }),
          datagrams: Stream.fromQueue(inbox)
        }
        return socket
      })
    const layer = Layer.succeed(Network.Network, {
      connect: () => Effect.dieMessage("tcp is not scripted"),
      listen: () => Effect.dieMessage("tcp is not scripted"),
      udp
    })
    return { layer, sent: Ref.get(sent), binds: Ref.get(binds) }
  })
