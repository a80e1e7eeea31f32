/**
 * Fake trackers: a `TrackerClient` layer answering from a function (no network at all), and
 * scripted HTTP and UDP tracker servers on any `Network` whose every reply is chosen by the test
 * (an HTTP 500, silence, malformed bencode, a `failure reason`, 10,000 peers, a UDP reply with the
 * wrong transaction id or action), so the real tracker clients parse the bad bytes.
 */
import { Effect, Either, Layer, Option, type Scope, Stream } from "effect"
import * as Bencode from "../bencode/Bencode.js"
import * as CompactPeer from "../net/CompactPeer.js"
import { type Address, type Connection, formatAddress, Network, type NetworkError } from "../net/Network.js"
import type { AnnounceRequest, AnnounceResponse, Event } from "../tracker/Announce.js"
import { TrackerError } from "../tracker/Announce.js"
import * as HttpMessage from "../tracker/HttpMessage.js"
import { TrackerClient } from "../tracker/TrackerClient.js"
import * as UdpMessage from "../tracker/UdpMessage.js"

// ---------------------------------------------------------------------------------------------
// A TrackerClient without a network

/** Answers the `n`th announce (0-based, counted per URL) to `url`. */
export type Respond = (url: string, request: AnnounceRequest, n: number) => Effect.Effect<AnnounceResponse, TrackerError>

/** A `TrackerClient` whose announces are answered by `respond`; scrapes fail with `UnsupportedScheme`. */
export const client = (respond: Respond): Layer.Layer<TrackerClient> =>
  Layer.sync(TrackerClient, () => {
    const counts = new Map<string, number>()
    return {
      announce: (url, request) =>
        Effect.suspend(() => {
          const n = counts.get(url) ?? 0
          counts.set(url, n + 1)
          return respond(url, request, n)
        }),
      scrape: (url) => Effect.fail(new TrackerError({ url, reason: "UnsupportedScheme", message: "fake tracker: no scrape" }))
    }
  })

// ---------------------------------------------------------------------------------------------
// Scripted servers

/** An announce a scripted tracker received. */
export interface Announce {
  readonly event: Event
  readonly left: number
  readonly port: number
  readonly numwant: number
  /** Where the announce came from. */
  readonly from: Address
}

/** A running scripted tracker. */
export interface FakeTracker {
  readonly address: Address
  /** The announce URL to put in a torrent. */
  readonly url: string
  /** The announces received so far, oldest first. */
  readonly announces: Effect.Effect<ReadonlyArray<Announce>>
}

/** What the scripted HTTP tracker sends back to one announce. */
export type HttpReply =
  | { readonly _tag: "Status"; readonly status: number }
  | { readonly _tag: "Body"; readonly body: Uint8Array }
  | { readonly _tag: "Silent" }

/** An HTTP error status with an empty body (e.g. 500). */
export const status = (code: number): HttpReply => ({ _tag: "Status", status: code })

/** A 200 with any body. */
export const body = (bytes: Uint8Array): HttpReply => ({ _tag: "Body", body: bytes })

/** Never answers: the client runs into its timeout. */
export const silent: HttpReply & UdpReply = { _tag: "Silent" }

/** A 200 whose body is truncated bencode. */
export const malformed: HttpReply = body(Buffer.from("d8:intervali1800e5:peers", "latin1"))

/** A 200 with a `failure reason`. */
export const failure = (reason: string): HttpReply => body(Bencode.encode({ "failure reason": reason }))

/** A 200 listing `peers` (IPv4, compact form) with the given re-announce interval in seconds. */
export const peers = (list: ReadonlyArray<Address>, interval = 1800): HttpReply =>
  body(
    Bencode.encode({
      interval,
      peers: Either.getOrElse(CompactPeer.encode4(list), () => new Uint8Array(0))
    })
  )

/** `count` distinct made-up IPv4 peers in 10.128.0.0/9 (nothing listens there). */
export const manyPeers = (count: number): ReadonlyArray<Address> =>
  Array.from({ length: count }, (_, i) => ({ host: `10.${128 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`, port: 6881 }))

const MAX_REQUEST_HEAD = 8 * 1024

/** Reads an HTTP request head, `None` if the client sends something else or closes first. */
const readHead = (connection: Connection): Effect.Effect<Option.Option<HttpMessage.RequestHead>> => {
  let received = new Uint8Array(0)
  return connection.chunks.pipe(
    Stream.map((chunk) => {
      received = Buffer.concat([received, chunk])
      return HttpMessage.parseRequestHead(received, MAX_REQUEST_HEAD)
    }),
    Stream.takeUntil((parsed) => Either.isLeft(parsed) || Option.isSome(parsed.right)),
    Stream.runLast,
    Effect.map((last) => Option.flatMap(last, (parsed) => Either.getOrElse(parsed, () => Option.none()))),
    Effect.orElseSucceed(() => Option.none())
  )
}

/** The announce a query describes; fields the fake cannot read are zero. */
const announceOf = (query: string, from: Address): Announce => {
  const params = Option.getOrElse(HttpMessage.parseQuery(query), () => new Map<string, ReadonlyArray<Uint8Array>>())
  const text = (name: string) => Buffer.from(params.get(name)?.[0] ?? new Uint8Array(0)).toString("latin1")
  const event = text("event")
  return {
    event: event === "started" || event === "completed" || event === "stopped" ? event : "none",
    left: Number(text("left")) || 0,
    port: Number(text("port")) || 0,
    numwant: Number(text("numwant")) || 0,
    from
  }
}

/**
 * A scripted HTTP tracker on `address`: every announce is answered with `reply(announce, n)`,
 * `n` counting announces from 0.
 */
export const http = (
  address: Address,
  reply: (announce: Announce, n: number) => HttpReply
): Effect.Effect<FakeTracker, NetworkError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const received: Array<Announce> = []
    const listener = yield* network.listen(address, (connection) =>
      Effect.gen(function* () {
        const head = yield* readHead(connection)
        if (Option.isNone(head)) return
        const target = head.value.target
        const question = target.indexOf("?")
        const announce = announceOf(question < 0 ? "" : target.slice(question + 1), connection.remote)
        received.push(announce)
        const answer = reply(announce, received.length - 1)
        if (answer._tag === "Silent") return yield* Effect.never
        const bytes = answer._tag === "Status"
          ? HttpMessage.encodeResponse(answer.status, "Scripted", "text/plain", new Uint8Array(0))
          : HttpMessage.encodeResponse(200, "OK", "text/plain", answer.body)
        yield* Effect.ignore(connection.write(bytes))
      }))
    return {
      address: listener.address,
      url: `http://${formatAddress(listener.address)}/announce`,
      announces: Effect.sync(() => received.slice())
    }
  })

/** What the scripted UDP tracker sends back to one announce (connects are always answered). */
export type UdpReply =
  | { readonly _tag: "Peers"; readonly peers: ReadonlyArray<Address>; readonly interval: number }
  | { readonly _tag: "Error"; readonly message: string }
  /** A valid announce reply carrying another transaction id. */
  | { readonly _tag: "WrongTransaction" }
  /** A valid reply with the scrape action where the announce action belongs. */
  | { readonly _tag: "WrongAction" }
  | { readonly _tag: "Silent" }

/** A UDP announce reply listing `peers`. */
export const udpPeers = (list: ReadonlyArray<Address>, interval = 1800): UdpReply => ({ _tag: "Peers", peers: list, interval })

/** A UDP error reply (action 3). */
export const udpError = (message: string): UdpReply => ({ _tag: "Error", message })

/** A reply for someone else's transaction. */
export const wrongTransaction: UdpReply = { _tag: "WrongTransaction" }

/** A reply with the wrong action. */
export const wrongAction: UdpReply = { _tag: "WrongAction" }

const CONNECTION_ID = 0x1234_5678_9abcn

/**
 * A scripted UDP tracker (BEP 15, IPv4) on `address`: connects get a fixed connection id, every
 * announce is answered with `reply(announce, n)`.
 */
export const udp = (
  address: Address,
  reply: (announce: Announce, n: number) => UdpReply
): Effect.Effect<FakeTracker, NetworkError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const socket = yield* network.udp(address)
    const received: Array<Announce> = []
    const send = (response: UdpMessage.Response, to: Address, rewrite: (bytes: Uint8Array) => void = () => {}) =>
      Either.match(UdpMessage.encodeResponse(response, false), {
        onLeft: () => Effect.void,
        onRight: (bytes) => {
          rewrite(bytes)
          return Effect.ignore(socket.send(bytes, to))
        }
      })
    const handle = (bytes: Uint8Array, from: Address): Effect.Effect<void> => {
      const decoded = UdpMessage.decodeRequest(bytes)
      if (Either.isLeft(decoded)) return Effect.void
      const request = decoded.right
      if (request._tag === "Connect") {
        return send({ _tag: "Connect", transactionId: request.transactionId, connectionId: CONNECTION_ID }, from)
      }
      if (request._tag !== "Announce") return Effect.void
      received.push({ event: request.event, left: request.left, port: request.port, numwant: request.numwant, from })
      const answer = reply(received[received.length - 1]!, received.length - 1)
      const transactionId = request.transactionId
      switch (answer._tag) {
        case "Silent":
          return Effect.void
        case "Error":
          return send({ _tag: "Error", transactionId, message: answer.message }, from)
        case "Peers":
          return send(
            { _tag: "Announce", transactionId, interval: answer.interval, leechers: 0, seeders: answer.peers.length, peers: answer.peers },
            from
          )
        case "WrongTransaction":
          return send(
            { _tag: "Announce", transactionId: (transactionId + 1) >>> 0, interval: 1800, leechers: 0, seeders: 0, peers: [] },
            from
          )
        case "WrongAction":
          return send({ _tag: "Announce", transactionId, interval: 1800, leechers: 0, seeders: 0, peers: [] }, from, (out) =>
            new DataView(out.buffer, out.byteOffset).setUint32(0, UdpMessage.Action.scrape))
      }
    }
    yield* Effect.forkScoped(Stream.runForEach(socket.datagrams, (datagram) => handle(datagram.bytes, datagram.from)))
    return {
      address: socket.address,
      url: `udp://${formatAddress(socket.address)}/announce`,
      announces: Effect.sync(() => received.slice())
    }
  })
