/**
 * An embeddable BitTorrent tracker over the Network service: HTTP (BEP 3, 23, 7, 48) and UDP
 * (BEP 15) front-ends sharing one SwarmRegistry. Peers are registered at the address their
 * request came from (an `ip` parameter is ignored, so nobody can register someone else), with
 * the port they announce. Everything is bounded: request sizes, torrents, peers per torrent,
 * peers per reply, scrape sizes.
 */
import { Clock, Duration, Effect, Either, Option, Random, type Scope, Stream } from "effect"
import { createHash } from "node:crypto"
import * as Net from "node:net"
import * as Bencode from "../bencode/Bencode.js"
import * as CompactPeer from "../net/CompactPeer.js"
import {
  type Address,
  type Connection,
  type Datagram,
  formatAddress,
  Network,
  type NetworkError,
  type UdpSocket
} from "../net/Network.js"
import type { Event, ScrapeEntry } from "./Announce.js"
import * as HttpMessage from "./HttpMessage.js"
import * as SwarmRegistry from "./SwarmRegistry.js"
import * as UdpMessage from "./UdpMessage.js"

/** Server options; only the addresses to listen on are needed. */
export interface Options {
  /** Where to serve HTTP announces and scrapes (port 0 = any free port). */
  readonly http?: Address
  /** Where to serve UDP (BEP 15) (port 0 = any free port). */
  readonly udp?: Address
  /** Re-announce interval told to clients, in seconds (default 1800). */
  readonly interval?: number
  /** A peer is forgotten this long after its last announce (default: twice the interval). */
  readonly peerTtl?: Duration.DurationInput
  /** Default 10,000. */
  readonly maxTorrents?: number
  /** Default 2,000. */
  readonly maxPeersPerTorrent?: number
  /** Most peers in one reply (default 200; a client asking nothing gets 50). */
  readonly maxNumwant?: number
  /** Time a client has to send its HTTP request (default 10 s). */
  readonly requestTimeout?: Duration.DurationInput
}

/** A running tracker, stopped when its scope closes. */
export interface TrackerServer {
  /** The bound HTTP address and its announce URL, when HTTP was asked for. */
  readonly http?: { readonly address: Address; readonly announceUrl: string }
  /** The bound UDP address and its announce URL, when UDP was asked for. */
  readonly udp?: { readonly address: Address; readonly announceUrl: string }
  /** Torrents and live peers held now. */
  readonly size: Effect.Effect<{ readonly torrents: number; readonly peers: number }>
}

/** Default `Options.interval`, in seconds. */
export const DEFAULT_INTERVAL = 1800

const DEFAULT_NUMWANT = 50
// An announce or scrape request line is far below this.
const MAX_REQUEST_HEAD = 8 * 1024
const MAX_HTTP_SCRAPE = 100

/** The client's address as peers should dial it: IPv4-mapped IPv6 back to plain IPv4. */
const peerHost = (host: string) => (host.startsWith("::ffff:") && Net.isIPv4(host.slice(7)) ? host.slice(7) : host)

/** A validated announce, from either front-end. */
interface Request {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly port: number
  readonly left: number
  readonly event: Event
  /** Negative means "no preference". */
  readonly numwant: number
}

/** What both front-ends share: the interval to tell clients and the registry behind Effects. */
interface Core {
  readonly interval: number
  readonly announce: (request: Request, from: Address) => Effect.Effect<SwarmRegistry.AnnounceResult>
  readonly scrape: (infoHash: Uint8Array) => Effect.Effect<ScrapeEntry>
}

/** Starts the tracker; fails only if a socket cannot be bound. */
export const make = (options: Options): Effect.Effect<TrackerServer, NetworkError, Network | Scope.Scope> =>
  Effect.gen(function* () {
    const network = yield* Network
    const interval = Math.max(1, Math.trunc(options.interval ?? DEFAULT_INTERVAL))
    const maxNumwant = options.maxNumwant ?? 200
    const registry = SwarmRegistry.make({
      maxTorrents: options.maxTorrents ?? 10_000,
      maxPeersPerTorrent: options.maxPeersPerTorrent ?? 2_000,
      peerTtlMillis: Duration.toMillis(options.peerTtl ?? Duration.seconds(2 * interval))
    })

    const announce: Core["announce"] = (request, from) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const offset = yield* Random.nextIntBetween(0, 0x7fffffff)
        return registry.announce({
          infoHash: Buffer.from(request.infoHash).toString("hex"),
          peer: { address: { host: peerHost(from.host), port: request.port }, peerId: request.peerId },
          left: request.left,
          event: request.event,
          numwant: request.numwant < 0 ? DEFAULT_NUMWANT : Math.min(request.numwant, maxNumwant),
          now,
          offset
        })
      })

    const scrape: Core["scrape"] = (infoHash) =>
      Effect.map(Clock.currentTimeMillis, (now) => registry.scrape(Buffer.from(infoHash).toString("hex"), now))
    const core: Core = { interval, announce, scrape }
    const requestTimeout = options.requestTimeout ?? Duration.seconds(10)

    const http = options.http === undefined ? undefined : yield* serveHttp(network, options.http, core, requestTimeout)
    const udp = options.udp === undefined ? undefined : yield* serveUdp(network, options.udp, core)
    return {
      ...(http === undefined ? {} : { http: { address: http, announceUrl: `http://${formatAddress(http)}/announce` } }),
      ...(udp === undefined ? {} : { udp: { address: udp, announceUrl: `udp://${formatAddress(udp)}/announce` } }),
      size: Effect.map(Clock.currentTimeMillis, registry.size)
    }
  })

// ---------------------------------------------------------------------------------------------
// HTTP

const EVENT_NAMES: ReadonlyMap<string, Event> = new Map([
  ["started", "started"],
  ["completed", "completed"],
  ["stopped", "stopped"],
  ["", "none"],
  ["empty", "none"]
])

const failure = (reason: string) => Bencode.encode({ "failure reason": reason })

/** Reads and validates the announce parameters of a query. */
const parseAnnounce = (params: ReadonlyMap<string, ReadonlyArray<Uint8Array>>): Either.Either<Request, string> => {
  const one = (name: string) => params.get(name)?.[0]
  const text = (name: string) => {
    const value = one(name)
    return value === undefined ? undefined : Buffer.from(value).toString("latin1")
  }
  const count = (name: string, fallback?: number): number | undefined => {
    const value = text(name)
    if (value === undefined) return fallback
    return /^-?\d{1,16}$/.test(value) ? Number(value) : undefined
  }
  const infoHash = one("info_hash")
  const peerId = one("peer_id")
  const port = count("port")
  const left = count("left", 0)
  const numwant = count("numwant", -1)
  const event = EVENT_NAMES.get(text("event") ?? "")
  if (infoHash?.length !== 20) return Either.left("info_hash must be 20 bytes")
  if (peerId?.length !== 20) return Either.left("peer_id must be 20 bytes")
  if (port === undefined || port < 1 || port > 0xffff) return Either.left("invalid port")
  if (left === undefined || left < 0 || numwant === undefined) return Either.left("invalid counter")
  if (event === undefined) return Either.left("invalid event")
  return Either.right({ infoHash, peerId, port, left, event, numwant })
}

/** The bencoded announce reply, compact (`peers` + `peers6`) or as a dictionary list. */
const announceReply = (
  result: SwarmRegistry.AnnounceResult,
  interval: number,
  compact: boolean,
  withPeerId: boolean
): Uint8Array => {
  if (result._tag === "TooManyTorrents") return failure("tracker is full")
  const head = {
    interval,
    "min interval": Math.max(1, Math.floor(interval / 2)),
    complete: result.complete,
    incomplete: result.incomplete
  }
  if (!compact) {
    const peers = result.peers.map((peer) => ({
      ip: peer.address.host,
      port: peer.address.port,
      ...(withPeerId ? { "peer id": peer.peerId } : {})
    }))
    return Bencode.encode({ ...head, peers })
  }
  const v4 = result.peers.filter((peer) => Net.isIPv4(peer.address.host)).map((peer) => peer.address)
  const v6 = result.peers.filter((peer) => Net.isIPv6(peer.address.host)).map((peer) => peer.address)
  // Registered addresses are IP literals of their family, so encoding cannot fail; an empty list is the fallback.
  const encode = (encoder: typeof CompactPeer.encode4, peers: ReadonlyArray<Address>) =>
    Either.getOrElse(encoder(peers), () => new Uint8Array(0))
  return Bencode.encode({
    ...head,
    peers: encode(CompactPeer.encode4, v4),
    ...(v6.length > 0 ? { peers6: encode(CompactPeer.encode6, v6) } : {})
  })
}

/** The bencoded scrape reply (BEP 48): `files` keyed by raw info-hash. */
const scrapeReply = (core: Core, hashes: ReadonlyArray<Uint8Array>) =>
  Effect.gen(function* () {
    if (hashes.length === 0 || hashes.length > MAX_HTTP_SCRAPE) {
      return failure(`scrape takes 1 to ${MAX_HTTP_SCRAPE} info_hash`)
    }
    const files = new Map<string, Bencode.Encodable>()
    for (const hash of hashes) {
      if (hash.length !== 20) return failure("info_hash must be 20 bytes")
      files.set(Buffer.from(hash).toString("latin1"), { ...(yield* core.scrape(hash)) })
    }
    return Bencode.encode({ files })
  })

/** Reads one request head from a connection, bounded in size. */
const readHead = (connection: Connection) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pull = yield* Stream.toPull(connection.chunks)
      const chunks: Array<Uint8Array> = []
      let received = 0
      for (;;) {
        const chunk = yield* pull
        for (const piece of chunk) {
          chunks.push(piece)
          received += piece.length
        }
        const parsed = HttpMessage.parseRequestHead(Buffer.concat(chunks, received), MAX_REQUEST_HEAD)
        if (Either.isLeft(parsed)) return Option.none<HttpMessage.RequestHead>()
        if (Option.isSome(parsed.right)) return parsed.right
      }
    })
  ).pipe(Effect.catchAll(() => Effect.succeed(Option.none<HttpMessage.RequestHead>())))

/** Serves `/announce` and `/scrape` (any path ending so, as passkey paths do) on `address`. */
const serveHttp = (network: Network["Type"], address: Address, core: Core, requestTimeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    const respond = (connection: Connection, status: number, reason: string, body: Uint8Array) =>
      connection.write(HttpMessage.encodeResponse(status, reason, "text/plain", body)).pipe(Effect.ignore)
    const handle = (connection: Connection) =>
      Effect.gen(function* () {
        const head = yield* readHead(connection).pipe(
          Effect.timeoutTo({
            duration: requestTimeout,
            onSuccess: (head) => head,
            onTimeout: () => Option.none<HttpMessage.RequestHead>()
          })
        )
        if (Option.isNone(head)) return yield* respond(connection, 400, "Bad Request", new Uint8Array(0))
        const question = head.value.target.indexOf("?")
        const path = question < 0 ? head.value.target : head.value.target.slice(0, question)
        const params = HttpMessage.parseQuery(question < 0 ? "" : head.value.target.slice(question + 1))
        if (head.value.method !== "GET" || Option.isNone(params)) {
          return yield* respond(connection, 400, "Bad Request", new Uint8Array(0))
        }
        const flag = (name: string) => params.value.get(name)?.[0]?.[0] === 0x31 // "1"
        if (path.endsWith("/announce")) {
          const request = parseAnnounce(params.value)
          if (Either.isLeft(request)) return yield* respond(connection, 200, "OK", failure(request.left))
          const result = yield* core.announce(request.right, connection.remote)
          // Clients that do not say otherwise get the compact form, as most trackers do.
          const compact = params.value.has("compact") ? flag("compact") : true
          const reply = announceReply(result, core.interval, compact, !flag("no_peer_id"))
          return yield* respond(connection, 200, "OK", reply)
        }
        if (path.endsWith("/scrape")) {
          return yield* respond(connection, 200, "OK", yield* scrapeReply(core, params.value.get("info_hash") ?? []))
        }
        return yield* respond(connection, 404, "Not Found", new Uint8Array(0))
      })
    const listener = yield* network.listen(address, handle)
    return listener.address
  })

// ---------------------------------------------------------------------------------------------
// UDP

// Connection ids are a keyed hash of the client's IP and the minute, so the server keeps no
// per-client state and an id stays valid for one to two minutes (BEP 15 asks for at least one).
// Not the port: clients may announce from a fresh socket with a cached id, as opentracker allows.
const connectionIdFor = (secret: Uint8Array, from: Address, minute: number): bigint => {
  const digest = createHash("sha1").update(secret).update(`${peerHost(from.host)}/${minute}`).digest()
  return digest.readBigUInt64BE(0)
}

/** Serves BEP 15 on `address`, one datagram at a time. */
const serveUdp = (network: Network["Type"], address: Address, core: Core) =>
  Effect.gen(function* () {
    const socket = yield* network.udp(address)
    const secret = new Uint8Array(16)
    for (let i = 0; i < secret.length; i++) secret[i] = yield* Random.nextIntBetween(0, 256)

    const handle = (datagram: Datagram) =>
      Effect.gen(function* () {
        const minute = Math.floor((yield* Clock.currentTimeMillis) / 60_000)
        const from = datagram.from
        const ipv6 = !Net.isIPv4(peerHost(from.host))
        const reply = (response: UdpMessage.Response) =>
          Either.match(UdpMessage.encodeResponse(response, ipv6), {
            onLeft: (cause) => Effect.logDebug(`udp tracker: cannot encode a reply: ${cause.message}`),
            onRight: (bytes) => sendTo(socket, bytes, from)
          })
        const request = UdpMessage.decodeRequest(datagram.bytes)
        if (Either.isLeft(request)) {
          const transactionId = UdpMessage.requestTransactionId(datagram.bytes)
          // Too short to be a request at all: drop it rather than answer garbage.
          if (transactionId === undefined) return
          return yield* reply({ _tag: "Error", transactionId, message: request.left.message })
        }
        const message = request.right
        if (message._tag === "Connect") {
          const connectionId = connectionIdFor(secret, from, minute)
          return yield* reply({ _tag: "Connect", transactionId: message.transactionId, connectionId })
        }
        if (
          message.connectionId !== connectionIdFor(secret, from, minute) &&
          message.connectionId !== connectionIdFor(secret, from, minute - 1)
        ) {
          return yield* reply({ _tag: "Error", transactionId: message.transactionId, message: "unknown connection id" })
        }
        if (message._tag === "Scrape") {
          const entries = yield* Effect.forEach(message.infoHashes, (hash) =>
            Effect.map(core.scrape(hash), (entry) => ({
              seeders: entry.complete,
              completed: entry.downloaded,
              leechers: entry.incomplete
            }))
          )
          return yield* reply({ _tag: "Scrape", transactionId: message.transactionId, entries })
        }
        if (message.port === 0) {
          return yield* reply({ _tag: "Error", transactionId: message.transactionId, message: "invalid port" })
        }
        const result = yield* core.announce(message, from)
        if (result._tag === "TooManyTorrents") {
          return yield* reply({ _tag: "Error", transactionId: message.transactionId, message: "tracker is full" })
        }
        return yield* reply({
          _tag: "Announce",
          transactionId: message.transactionId,
          interval: core.interval,
          leechers: result.incomplete,
          seeders: result.complete,
          // A UDP reply carries peers of the requester's family only.
          peers: result.peers.map((peer) => peer.address).filter((peer) => Net.isIPv4(peer.host) !== ipv6)
        })
      })

    yield* socket.datagrams.pipe(Stream.runForEach(handle), Effect.forkScoped)
    return socket.address
  })

// A reply that cannot be sent is the client's loss, never the server's failure.
const sendTo = (socket: UdpSocket, bytes: Uint8Array, to: Address) =>
  socket.send(bytes, to).pipe(
    Effect.catchAll((cause) => Effect.logDebug(`udp tracker: reply to ${formatAddress(to)} failed: ${cause.reason}`))
  )
