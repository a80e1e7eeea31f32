/**
 * HTTP tracker client (BEP 3, BEP 23 compact peers, BEP 7 `peers6`, BEP 48 scrape), speaking
 * HTTP/1.1 itself over the `Network` service so tests and the fault harness see every byte.
 * `https://` trackers are refused with `UnsupportedScheme` until a TLS transport exists.
 */
import { Duration, Effect, Either, Option, Stream } from "effect"
import * as Bencode from "../bencode/Bencode.js"
import * as CompactPeer from "../net/CompactPeer.js"
import { type Address, Network } from "../net/Network.js"
import * as InfoHash from "../metainfo/InfoHash.js"
import { type AnnounceRequest, type AnnounceResponse, MAX_PEERS, type ScrapeEntry, TrackerError } from "./Announce.js"
import * as HttpMessage from "./HttpMessage.js"

/** Client options; every one has a default. */
export interface Options {
  /** The whole exchange, redirects included (default 30 s). */
  readonly timeout?: Duration.DurationInput
  /** Largest response body accepted (default 2 MiB). */
  readonly maxBody?: number
  /** Redirects followed, `http://` only (default 3). */
  readonly maxRedirects?: number
}

/** Default `Options.timeout`. */
export const DEFAULT_TIMEOUT = Duration.seconds(30)

const REDIRECTS = new Set([301, 302, 303, 307, 308])

const error = (url: string, reason: TrackerError["reason"], message: string, cause?: unknown) =>
  new TrackerError(cause === undefined ? { url, reason, message } : { url, reason, message, cause })

/** Parses a tracker URL, accepting only `http:`. */
const parseUrl = (url: string, text: string): Either.Either<URL, TrackerError> =>
  Either.flatMap(
    Either.try({ try: () => new URL(text), catch: (cause) => error(url, "InvalidUrl", `not a URL: ${text}`, cause) }),
    (parsed) =>
      parsed.protocol === "http:"
        ? Either.right(parsed)
        : Either.left(error(url, "UnsupportedScheme", `${parsed.protocol} trackers are not supported over HTTP`))
  )

/** Appends already-encoded parameters to a URL, keeping the query it already has (passkeys). */
const withParams = (url: URL, params: ReadonlyArray<readonly [string, string]>): string => {
  const query = params.map(([name, value]) => `${name}=${value}`).join("&")
  return `${url.origin}${url.pathname}${url.search === "" ? "?" : `${url.search}&`}${query}`
}

const integer = (value: number) => Math.max(0, Math.trunc(value)).toFixed(0)

/** The announce URL for a request: the tracker URL plus the BEP 3 parameters, bytes percent-encoded raw. */
export const announceUrl = (url: string, request: AnnounceRequest): Either.Either<string, TrackerError> =>
  Either.map(parseUrl(url, url), (parsed) => {
    const params: Array<readonly [string, string]> = [
      ["info_hash", HttpMessage.percentEncode(request.infoHash)],
      ["peer_id", HttpMessage.percentEncode(request.peerId)],
      ["port", integer(request.port)],
      ["uploaded", integer(request.uploaded)],
      ["downloaded", integer(request.downloaded)],
      ["left", integer(request.left)],
      ["compact", "1"]
    ]
    if (request.event !== "none") params.push(["event", request.event])
    params.push(["numwant", integer(request.numwant)])
    params.push(["key", (request.key >>> 0).toString(16).toUpperCase().padStart(8, "0")])
    if (request.trackerId !== undefined) {
      params.push(["trackerid", HttpMessage.percentEncode(Buffer.from(request.trackerId, "latin1"))])
    }
    return withParams(parsed, params)
  })

/** The scrape URL (BEP 48): only defined when the last path segment starts with `announce`. */
export const scrapeUrl = (
  url: string,
  infoHashes: ReadonlyArray<InfoHash.InfoHash>
): Either.Either<string, TrackerError> =>
  Either.flatMap(parseUrl(url, url), (parsed) => {
    const slash = parsed.pathname.lastIndexOf("/")
    const last = parsed.pathname.slice(slash + 1)
    if (!last.startsWith("announce")) return Either.left(error(url, "InvalidUrl", "tracker does not support scrape"))
    parsed.pathname = `${parsed.pathname.slice(0, slash + 1)}scrape${last.slice("announce".length)}`
    return Either.right(withParams(parsed, infoHashes.map((hash) => ["info_hash", HttpMessage.percentEncode(hash)])))
  })

/** Decode limits for a reply: its size is already bounded; this bounds nesting and value count. */
const decodeOptions = (maxBody: number): Bencode.Options => ({ maxLength: maxBody, maxDepth: 8, maxItems: 200_000 })

/** Decodes a reply to its top dictionary, turning a `failure reason` into a `Failure`. */
const decodeReply = (url: string, body: Uint8Array, maxBody: number): Either.Either<Bencode.Dictionary, TrackerError> =>
  Either.flatMap(
    Either.mapLeft(Bencode.decode(body, decodeOptions(maxBody)), (cause) =>
      error(url, "Malformed", `reply is not bencode: ${cause.message}`, cause)
    ),
    (value) => {
      if (!Bencode.isDictionary(value)) return Either.left(error(url, "Malformed", "reply is not a dictionary"))
      const failure = value.get("failure reason")
      if (failure !== undefined) {
        return Either.left(error(url, "Failure", Bencode.isBytes(failure) ? Bencode.text(failure) : "tracker failure"))
      }
      return Either.right(value)
    }
  )

const malformed = (url: string) => (cause: Bencode.BencodeFieldError) => error(url, "Malformed", cause.message, cause)

const validPort = (port: number) => Number.isInteger(port) && port > 0 && port <= 0xffff

/** Peers from the dictionary form `[{ip, port, peer id}]`; entries that are not usable are skipped. */
const dictionaryPeers = (list: ReadonlyArray<Bencode.Value>): Array<Address> => {
  const peers: Array<Address> = []
  for (const entry of list) {
    if (peers.length >= MAX_PEERS) break
    if (!Bencode.isDictionary(entry)) continue
    const ip = entry.get("ip")
    const port = entry.get("port")
    if (ip === undefined || port === undefined || !Bencode.isBytes(ip) || !Bencode.isInteger(port)) continue
    if (ip.length === 0 || ip.length > 255 || !validPort(port)) continue
    peers.push({ host: Bencode.text(ip), port })
  }
  return peers
}

const compactPeers = (
  url: string,
  bytes: Uint8Array,
  decode: (bytes: Uint8Array) => Either.Either<ReadonlyArray<Address>, CompactPeer.CompactPeerError>
) => Either.mapLeft(decode(bytes), (cause) => error(url, "Malformed", `compact peers: ${cause.input}`, cause))

/** Parses a bencoded announce reply. */
export const parseAnnounce = (
  url: string,
  body: Uint8Array,
  maxBody: number = HttpMessage.defaultLimits.maxBody
): Either.Either<AnnounceResponse, TrackerError> =>
  Either.gen(function* () {
    const reply = yield* decodeReply(url, body, maxBody)
    const optional = <A>(
      key: string,
      get: (dictionary: Bencode.Dictionary, key: string) => Either.Either<A, Bencode.BencodeFieldError>
    ) => Either.mapLeft(Bencode.optional(reply, key, get), malformed(url))
    const interval = yield* Either.mapLeft(Bencode.getInteger(reply, "interval"), malformed(url))
    const minInterval = yield* optional("min interval", Bencode.getInteger)
    const complete = yield* optional("complete", Bencode.getInteger)
    const incomplete = yield* optional("incomplete", Bencode.getInteger)
    const trackerId = yield* optional("tracker id", Bencode.getBytes)
    const warning = yield* optional("warning message", Bencode.getString)
    if (interval < 0 || (minInterval !== undefined && minInterval < 0)) {
      return yield* Either.left(error(url, "Malformed", "negative interval"))
    }
    const peers: Array<Address> = []
    const raw = reply.get("peers")
    if (raw !== undefined) {
      if (Bencode.isBytes(raw)) peers.push(...(yield* compactPeers(url, raw, CompactPeer.decode4)))
      else if (Bencode.isList(raw)) peers.push(...dictionaryPeers(raw))
      else return yield* Either.left(error(url, "Malformed", "peers is neither a string nor a list"))
    }
    const raw6 = reply.get("peers6")
    if (raw6 !== undefined) {
      if (!Bencode.isBytes(raw6)) return yield* Either.left(error(url, "Malformed", "peers6 is not a string"))
      peers.push(...(yield* compactPeers(url, raw6, CompactPeer.decode6)))
    }
    return {
      interval,
      peers: peers.length > MAX_PEERS ? peers.slice(0, MAX_PEERS) : peers,
      ...(minInterval !== undefined ? { minInterval } : {}),
      ...(complete !== undefined ? { complete } : {}),
      ...(incomplete !== undefined ? { incomplete } : {}),
      ...(trackerId !== undefined ? { trackerId: Buffer.from(trackerId).toString("latin1") } : {}),
      ...(warning !== undefined ? { warning } : {})
    }
  })

/** Parses a bencoded scrape reply into counts keyed by hex info-hash. */
export const parseScrape = (
  url: string,
  body: Uint8Array,
  maxBody: number = HttpMessage.defaultLimits.maxBody
): Either.Either<ReadonlyMap<string, ScrapeEntry>, TrackerError> =>
  Either.gen(function* () {
    const reply = yield* decodeReply(url, body, maxBody)
    const files = yield* Either.mapLeft(Bencode.getDictionary(reply, "files"), malformed(url))
    const entries = new Map<string, ScrapeEntry>()
    for (const [key, value] of files) {
      if (key.length !== InfoHash.LENGTH || !Bencode.isDictionary(value)) continue
      const count = (name: string) => {
        const n = value.get(name)
        return n !== undefined && Bencode.isInteger(n) && n >= 0 ? n : 0
      }
      entries.set(Buffer.from(key, "latin1").toString("hex"), {
        complete: count("complete"),
        incomplete: count("incomplete"),
        downloaded: count("downloaded")
      })
    }
    return entries
  })

/** Where to connect for a URL; IPv6 literals lose their brackets. */
const addressOf = (url: URL): Address => ({
  host: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
  port: url.port === "" ? 80 : Number(url.port)
})

/** One request/response exchange on a fresh connection. */
const exchange = (
  url: string,
  target: URL,
  limits: HttpMessage.Limits
): Effect.Effect<HttpMessage.Response, TrackerError, Network> =>
  Effect.scoped(
    Effect.gen(function* () {
      const network = yield* Network
      const unreachable = (cause: unknown) => error(url, "Unreachable", `cannot reach ${target.host}`, cause)
      const connection = yield* network.connect(addressOf(target)).pipe(Effect.mapError(unreachable))
      yield* connection.write(HttpMessage.encodeGet(`${target.pathname}${target.search}`, target.host)).pipe(
        Effect.mapError(unreachable)
      )
      const pull = yield* Stream.toPull(connection.chunks)
      // Chunk framing may add overhead to the body; the raw bytes are bounded all the same.
      const maxRaw = limits.maxHead + 2 * limits.maxBody
      const chunks: Array<Uint8Array> = []
      let received = 0
      for (;;) {
        // `None` once the tracker closed the connection.
        const next = yield* pull.pipe(
          Effect.map(Option.some),
          Effect.catchAll(
            Option.match({ onNone: () => Effect.succeed(Option.none()), onSome: (e) => Effect.fail(unreachable(e)) })
          )
        )
        if (Option.isSome(next)) {
          for (const chunk of next.value) {
            chunks.push(chunk)
            received += chunk.length
          }
          if (received > maxRaw) return yield* error(url, "TooLarge", `response over ${maxRaw} bytes`)
        }
        const parsed = HttpMessage.parseResponse(Buffer.concat(chunks, received), Option.isNone(next), limits)
        if (Either.isLeft(parsed)) {
          const reason = parsed.left.reason === "TooLarge" ? "TooLarge" : "Malformed"
          return yield* error(url, reason, parsed.left.message, parsed.left)
        }
        if (Option.isSome(parsed.right)) return parsed.right.value
      }
    })
  )

/** GETs a URL, following up to `redirects` `http://` redirects. */
const get = (
  url: string,
  target: string,
  limits: HttpMessage.Limits,
  redirects: number
): Effect.Effect<HttpMessage.Response, TrackerError, Network> =>
  Effect.gen(function* () {
    const parsed = yield* parseUrl(url, target)
    const response = yield* exchange(url, parsed, limits)
    const location = response.headers.get("location")
    if (!REDIRECTS.has(response.status) || location === undefined) return response
    if (redirects <= 0) return yield* error(url, "TooManyRedirects", `too many redirects, last to ${location}`)
    const next = yield* Either.try({
      try: () => new URL(location, parsed).href,
      catch: (cause) => error(url, "Malformed", `bad redirect location ${location}`, cause)
    })
    return yield* get(url, next, limits, redirects - 1)
  })

/** GETs `target` within the timeout and parses a 2xx body; a non-2xx with a failure reason is a `Failure`. */
const request = <A>(
  url: string,
  target: string,
  options: Options | undefined,
  parse: (url: string, body: Uint8Array, maxBody: number) => Either.Either<A, TrackerError>
): Effect.Effect<A, TrackerError, Network> => {
  const limits = { maxHead: HttpMessage.defaultLimits.maxHead, maxBody: options?.maxBody ?? HttpMessage.defaultLimits.maxBody }
  return get(url, target, limits, options?.maxRedirects ?? 3).pipe(
    Effect.flatMap((response) => {
      if (response.status >= 200 && response.status < 300) return parse(url, response.body, limits.maxBody)
      const status = error(url, "HttpStatus", `HTTP ${response.status}`)
      return decodeReply(url, response.body, limits.maxBody).pipe(
        Either.match({
          onLeft: (failure) => (failure.reason === "Failure" ? failure : status),
          onRight: () => status
        }),
        Effect.fail
      )
    }),
    Effect.timeoutFail({
      duration: options?.timeout ?? DEFAULT_TIMEOUT,
      onTimeout: () => error(url, "Timeout", "no complete reply in time")
    }),
    Effect.withSpan("HttpTracker.request", { attributes: { url } })
  )
}

/** Announces to an `http://` tracker. */
export const announce = (
  url: string,
  announceRequest: AnnounceRequest,
  options?: Options
): Effect.Effect<AnnounceResponse, TrackerError, Network> =>
  Effect.flatMap(announceUrl(url, announceRequest), (target) => request(url, target, options, parseAnnounce))

/** Scrapes an `http://` tracker for the given torrents; counts are keyed by hex info-hash. */
export const scrape = (
  url: string,
  infoHashes: ReadonlyArray<InfoHash.InfoHash>,
  options?: Options
): Effect.Effect<ReadonlyMap<string, ScrapeEntry>, TrackerError, Network> =>
  Effect.flatMap(scrapeUrl(url, infoHashes), (target) => request(url, target, options, parseScrape))
