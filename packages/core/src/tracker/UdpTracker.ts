/**
 * UDP tracker client (BEP 15): connect, then announce or scrape, each datagram retransmitted on
 * the BEP's back-off, replies matched by transaction id. Connection ids are cached per tracker
 * for a minute, as the BEP allows. Only ever sends to the tracker's own address.
 */
import { Clock, Duration, Effect, Either, Option, Random, Ref, Schedule, Stream } from "effect"
import * as Net from "node:net"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type Address, formatAddress, Network, type UdpSocket } from "../net/Network.js"
import { type AnnounceRequest, type AnnounceResponse, MAX_PEERS, type ScrapeEntry, TrackerError } from "./Announce.js"
import * as UdpMessage from "./UdpMessage.js"

/** Client options; every one has a default. */
export interface Options {
  /** Wait before the first retransmission; doubles after each (BEP 15: 15 s). */
  readonly timeout?: Duration.DurationInput
  /**
   * Retransmissions of one datagram before giving up (BEP 15 allows 8; default 2, so a dead
   * tracker fails after 15 + 30 + 60 = 105 s rather than over an hour).
   */
  readonly retransmissions?: number
}

/** How long a connection id stays valid (BEP 15). */
export const CONNECTION_ID_TTL = Duration.minutes(1)

/** Default `Options.timeout`. */
export const DEFAULT_TIMEOUT = Duration.seconds(15)

/** Default `Options.retransmissions`. */
export const DEFAULT_RETRANSMISSIONS = 2

// Connection ids of this many trackers at most are remembered.
const MAX_CACHED = 256

/** A UDP tracker client with its connection-id cache. */
export interface UdpTracker {
  readonly announce: (url: string, request: AnnounceRequest) => Effect.Effect<AnnounceResponse, TrackerError, Network>
  /** Counts keyed by hex info-hash; at most `UdpMessage.MAX_SCRAPE` torrents per call. */
  readonly scrape: (
    url: string,
    infoHashes: ReadonlyArray<InfoHash.InfoHash>
  ) => Effect.Effect<ReadonlyMap<string, ScrapeEntry>, TrackerError, Network>
}

/**
 * When a datagram is sent again: after `timeout`, `2 * timeout`, ... (BEP 15's `15 * 2^n` s),
 * `retransmissions` times.
 */
export const retransmitSchedule = (options?: Options): Schedule.Schedule<unknown> =>
  Schedule.exponential(options?.timeout ?? DEFAULT_TIMEOUT, 2).pipe(
    Schedule.intersect(Schedule.recurs(options?.retransmissions ?? DEFAULT_RETRANSMISSIONS))
  )

const error = (url: string, reason: TrackerError["reason"], message: string, cause?: unknown) =>
  new TrackerError(cause === undefined ? { url, reason, message } : { url, reason, message, cause })

/** The tracker's address from a `udp://host:port[/path]` URL. */
const trackerAddress = (url: string): Either.Either<Address, TrackerError> =>
  Either.flatMap(
    Either.try({ try: () => new URL(url), catch: (cause) => error(url, "InvalidUrl", `not a URL: ${url}`, cause) }),
    (parsed) => {
      if (parsed.protocol !== "udp:") {
        return Either.left(error(url, "UnsupportedScheme", `${parsed.protocol} is not udp:`))
      }
      if (parsed.port === "" || parsed.hostname === "") return Either.left(error(url, "InvalidUrl", "no host or port"))
      const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname
      return Either.right({ host, port: Number(parsed.port) })
    }
  )

/** Strips the IPv4-mapped prefix a dual-stack socket reports. */
const unmapped = (host: string) => (host.startsWith("::ffff:") && Net.isIPv4(host.slice(7)) ? host.slice(7) : host)

const randomU32 = Random.nextIntBetween(0, 0x1_0000_0000)

interface Exchange {
  readonly url: string
  readonly socket: UdpSocket
  readonly tracker: Address
  readonly ipv6: boolean
  readonly options: Options | undefined
}

/**
 * Sends a request until the reply with its transaction id arrives, retransmitting on the
 * schedule. Datagrams from elsewhere or with another transaction id are ignored; if only such
 * datagrams came, the failure says `TransactionMismatch` rather than `Timeout`.
 */
const transact = (
  exchange: Exchange,
  request: (transactionId: number) => UdpMessage.Request
): Effect.Effect<UdpMessage.Response, TrackerError> =>
  Effect.gen(function* () {
    const { ipv6, options, socket, tracker, url } = exchange
    const transactionId = yield* randomU32
    const bytes = UdpMessage.encodeRequest(request(transactionId))
    const mismatched = yield* Ref.make(false)
    // A tracker given by name answers from an address we never resolved ourselves: match its port only.
    const fromTracker = (from: Address) =>
      from.port === tracker.port && (Net.isIP(tracker.host) === 0 || unmapped(from.host) === unmapped(tracker.host))
    const receive = socket.datagrams.pipe(
      Stream.filter((datagram) => fromTracker(datagram.from)),
      Stream.filterEffect((datagram) =>
        UdpMessage.responseTransactionId(datagram.bytes) === transactionId
          ? Effect.succeed(true)
          : Effect.as(Ref.set(mismatched, true), false)
      ),
      Stream.runHead,
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.fail(error(url, "Unreachable", "socket closed")),
          onSome: (datagram) =>
            Either.mapLeft(UdpMessage.decodeResponse(datagram.bytes, ipv6), (cause) =>
              error(url, "Malformed", cause.message, cause)
            )
        })
      )
    )
    const timeout = Duration.times(
      Duration.decode(options?.timeout ?? DEFAULT_TIMEOUT),
      2 ** (options?.retransmissions ?? DEFAULT_RETRANSMISSIONS)
    )
    const send = socket.send(bytes, tracker).pipe(
      Effect.mapError((cause) => error(url, "Unreachable", `cannot send to ${formatAddress(tracker)}`, cause)),
      Effect.repeat(retransmitSchedule(options)),
      Effect.zipRight(Effect.sleep(timeout)),
      Effect.zipRight(Ref.get(mismatched)),
      Effect.flatMap((sawMismatch) =>
        sawMismatch
          ? Effect.fail(error(url, "TransactionMismatch", "only replies to other transactions arrived"))
          : Effect.fail(error(url, "Timeout", `no reply from ${formatAddress(tracker)}`))
      )
    )
    const response = yield* Effect.raceFirst(receive, send)
    return response._tag === "Error" ? yield* error(url, "Failure", response.message) : response
  })

/** Makes a client with its own connection-id cache. */
export const make = (options?: Options): Effect.Effect<UdpTracker> =>
  Effect.gen(function* () {
    const cache = yield* Ref.make(new Map<string, { readonly id: bigint; readonly expiresAt: number }>())

    /** A fresh connection id, remembered for a minute. */
    const connect = (exchange: Exchange) =>
      Effect.gen(function* () {
        const key = formatAddress(exchange.tracker)
        const now = yield* Clock.currentTimeMillis
        const response = yield* transact(exchange, (transactionId) => ({ _tag: "Connect", transactionId }))
        if (response._tag !== "Connect") {
          return yield* error(exchange.url, "Malformed", `${response._tag} reply to a connect`)
        }
        const expiresAt = now + Duration.toMillis(CONNECTION_ID_TTL)
        yield* Ref.update(cache, (entries) => {
          const next = new Map([...entries].filter(([, entry]) => entry.expiresAt > now))
          if (next.size >= MAX_CACHED) next.delete(next.keys().next().value!)
          return next.set(key, { id: response.connectionId, expiresAt })
        })
        return response.connectionId
      })

    // A failure may mean the tracker forgot our connection id: connect afresh next time.
    const forget = (exchange: Exchange) =>
      Ref.update(cache, (entries) => {
        const next = new Map(entries)
        next.delete(formatAddress(exchange.tracker))
        return next
      })

    const cached = (exchange: Exchange) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const entry = (yield* Ref.get(cache)).get(formatAddress(exchange.tracker))
        return entry !== undefined && entry.expiresAt > now ? Option.some(entry.id) : Option.none()
      })

    /**
     * Runs `body` with a socket of the tracker's family and a connection id. A cached id the
     * tracker refuses (it may bind ids to our port, or have restarted) is replaced once.
     */
    const withConnection = <A>(
      url: string,
      body: (exchange: Exchange, connectionId: bigint) => Effect.Effect<A, TrackerError>
    ): Effect.Effect<A, TrackerError, Network> =>
      Effect.scoped(
        Effect.gen(function* () {
          const tracker = yield* trackerAddress(url)
          const ipv6 = Net.isIPv6(tracker.host)
          const network = yield* Network
          const socket = yield* network
            .udp({ host: ipv6 ? "::" : "0.0.0.0", port: 0 })
            .pipe(Effect.mapError((cause) => error(url, "Unreachable", "cannot bind a UDP socket", cause)))
          const exchange: Exchange = { url, socket, tracker, ipv6, options }
          const fresh = Effect.flatMap(connect(exchange), (id) => body(exchange, id))
          const attempt = Option.match(yield* cached(exchange), {
            onNone: () => fresh,
            onSome: (id) =>
              body(exchange, id).pipe(
                Effect.catchIf((e) => e.reason === "Failure", () => Effect.zipRight(forget(exchange), fresh))
              )
          })
          return yield* attempt.pipe(Effect.tapError(() => forget(exchange)))
        })
      )

    const announce = (url: string, request: AnnounceRequest) =>
      withConnection(url, (exchange, connectionId) =>
        Effect.gen(function* () {
          const response = yield* transact(exchange, (transactionId) => ({
            _tag: "Announce",
            connectionId,
            transactionId,
            infoHash: request.infoHash,
            peerId: request.peerId,
            downloaded: request.downloaded,
            left: request.left,
            uploaded: request.uploaded,
            event: request.event,
            ip: 0,
            key: request.key >>> 0,
            numwant: request.numwant,
            port: request.port
          }))
          if (response._tag !== "Announce") {
            return yield* error(url, "Malformed", `${response._tag} reply to an announce`)
          }
          return {
            interval: response.interval,
            peers: response.peers.length > MAX_PEERS ? response.peers.slice(0, MAX_PEERS) : response.peers,
            complete: response.seeders,
            incomplete: response.leechers
          }
        })
      ).pipe(Effect.withSpan("UdpTracker.announce", { attributes: { url } }))

    const scrape = (url: string, infoHashes: ReadonlyArray<InfoHash.InfoHash>) =>
      infoHashes.length === 0 || infoHashes.length > UdpMessage.MAX_SCRAPE
        ? Effect.fail(error(url, "InvalidRequest", `scrape needs 1 to ${UdpMessage.MAX_SCRAPE} info-hashes`))
        : withConnection(url, (exchange, connectionId) =>
            Effect.gen(function* () {
              const response = yield* transact(exchange, (transactionId) => ({
                _tag: "Scrape",
                connectionId,
                transactionId,
                infoHashes
              }))
              if (response._tag !== "Scrape" || response.entries.length !== infoHashes.length) {
                return yield* error(url, "Malformed", "scrape reply does not match the request")
              }
              return new Map(
                infoHashes.map((hash, i) => {
                  const entry = response.entries[i]!
                  return [
                    InfoHash.toHex(hash),
                    { complete: entry.seeders, incomplete: entry.leechers, downloaded: entry.completed }
                  ] as const
                })
              )
            })
          )

    return { announce, scrape }
  })
