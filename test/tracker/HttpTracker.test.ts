import { Announce, Bencode, HttpTracker, InfoHash, PeerId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, TestClock } from "effect"
import { httpResponse, scriptedHttp } from "./fakes.js"

const infoHash = InfoHash.unsafeFromBytes(
  Uint8Array.from([0x00, 0x20, 0xff, 0x41, ...Array.from({ length: 16 }, (_, i) => i + 0x61)])
)
const peerId = PeerId.unsafeFromBytes(Buffer.from("-BF0100-abcdefghijkl", "latin1"))

const request: Announce.AnnounceRequest = {
  infoHash,
  peerId,
  port: 6881,
  uploaded: 10,
  downloaded: 20,
  left: 30,
  event: "started",
  numwant: 50,
  key: 0xdeadbeef
}

const url = "http://tracker.test:8080/announce"

const compact = (...bytes: Array<number>) => Uint8Array.from(bytes)

/** Announces to a scripted tracker that always sends `pieces`. */
const announceWith = (pieces: ReadonlyArray<string | Uint8Array> | "hang") =>
  Effect.gen(function* () {
    const tracker = yield* scriptedHttp(() => pieces)
    return yield* HttpTracker.announce(url, request).pipe(Effect.either, Effect.provide(tracker.layer))
  })

const reasonOf = (result: Either.Either<unknown, Announce.TrackerError>) =>
  Either.match(result, { onLeft: (error) => error.reason, onRight: () => "ok" })

describe("HttpTracker", () => {
  it("builds the announce URL with raw bytes percent-encoded and the existing query kept", () => {
    const target = Either.getOrThrow(HttpTracker.announceUrl("http://t.test/announce?passkey=a%20b", request))
    expect(target).toBe(
      "http://t.test/announce?passkey=a%20b&info_hash=%00%20%FFAabcdefghijklmnop&peer_id=-BF0100-abcdefghijkl" +
        "&port=6881&uploaded=10&downloaded=20&left=30&compact=1&event=started&numwant=50&key=DEADBEEF"
    )
    const regular = Either.getOrThrow(HttpTracker.announceUrl(url, { ...request, event: "none", trackerId: "id\u00ff" }))
    expect(regular).not.toContain("event=")
    expect(regular).toMatch(/&trackerid=id%FF$/)
  })

  it("refuses https and other schemes with a typed error", () => {
    const https = HttpTracker.announceUrl("https://t.test/announce", request)
    expect(Either.isLeft(https) && https.left.reason).toBe("UnsupportedScheme")
    const garbage = HttpTracker.announceUrl("not a url", request)
    expect(Either.isLeft(garbage) && garbage.left.reason).toBe("InvalidUrl")
  })

  it("derives the scrape URL only from an announce path", () => {
    expect(Either.getOrThrow(HttpTracker.scrapeUrl("http://t.test/x/announce.php?k=1", [infoHash]))).toBe(
      "http://t.test/x/scrape.php?k=1&info_hash=%00%20%FFAabcdefghijklmnop"
    )
    expect(Either.isLeft(HttpTracker.scrapeUrl("http://t.test/a", [infoHash]))).toBe(true)
  })

  it("parses compact, dictionary and IPv6 peers with the optional fields", () => {
    const body = Bencode.encode({
      interval: 1800,
      "min interval": 60,
      complete: 3,
      incomplete: 4,
      "tracker id": "T1",
      "warning message": "be nice",
      peers: compact(127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80),
      peers6: compact(...new Array(15).fill(0), 1, 0x1a, 0xe2)
    })
    expect(Either.getOrThrow(HttpTracker.parseAnnounce(url, body))).toEqual({
      interval: 1800,
      minInterval: 60,
      complete: 3,
      incomplete: 4,
      trackerId: "T1",
      warning: "be nice",
      peers: [
        { host: "127.0.0.1", port: 6881 },
        { host: "10.0.0.2", port: 80 },
        { host: "::1", port: 6882 }
      ]
    })
    const dictionary = Bencode.encode({
      interval: 60,
      peers: [
        { ip: "192.168.1.5", port: 51413, "peer id": "-TR3000-xxxxxxxxxxxx" },
        { ip: "::2", port: 1 },
        { ip: "no port" },
        { ip: "1.2.3.4", port: 70000 }
      ]
    })
    expect(Either.getOrThrow(HttpTracker.parseAnnounce(url, dictionary)).peers).toEqual([
      { host: "192.168.1.5", port: 51413 },
      { host: "::2", port: 1 }
    ])
  })

  it("turns failure reasons, malformed bencode and bad compact lists into typed errors", () => {
    const reason = (body: Uint8Array) =>
      Either.match(HttpTracker.parseAnnounce(url, body), { onLeft: (e) => `${e.reason}:${e.message}`, onRight: () => "ok" })
    expect(reason(Bencode.encode({ "failure reason": "unregistered torrent" }))).toBe("Failure:unregistered torrent")
    expect(reason(Buffer.from("d8:intervali1800e"))).toMatch(/^Malformed:/)
    expect(reason(Buffer.from("<html>oops</html>"))).toMatch(/^Malformed:/)
    expect(reason(Bencode.encode({ peers: "" }))).toMatch(/^Malformed:.*interval/)
    expect(reason(Bencode.encode({ interval: 10, peers: compact(1, 2, 3, 4, 5) }))).toMatch(/^Malformed:/)
    expect(reason(Bencode.encode({ interval: "10" }))).toMatch(/^Malformed:/)
  })

  it.effect("sends one GET with Connection: close and parses the reply", () =>
    Effect.gen(function* () {
      const tracker = yield* scriptedHttp(() =>
        httpResponse(Bencode.encode({ interval: 900, peers: compact(127, 0, 0, 1, 0, 1) }))
      )
      const response = yield* HttpTracker.announce(url, request).pipe(Effect.provide(tracker.layer))
      expect(response).toEqual({ interval: 900, peers: [{ host: "127.0.0.1", port: 1 }] })
      const [sent] = yield* tracker.requests
      expect(sent).toMatch(/^GET \/announce\?info_hash=%00%20%FFA.* HTTP\/1\.1\r\nHost: tracker\.test:8080\r\n/)
      expect(sent).toContain("\r\nConnection: close\r\n")
    }))

  it.effect("reads a chunked reply split over many reads", () =>
    Effect.gen(function* () {
      const body = Buffer.from(Bencode.encode({ interval: 42, peers: compact(10, 0, 0, 1, 0, 2) })).toString("latin1")
      const chunked = `${(body.length - 5).toString(16)}\r\n${body.slice(0, -5)}\r\n5\r\n${body.slice(-5)}\r\n0\r\n\r\n`
      const text = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`
      const pieces = Array.from({ length: Math.ceil(text.length / 7) }, (_, i) => text.slice(i * 7, i * 7 + 7))
      const result = yield* announceWith(pieces)
      expect(Either.getOrThrow(result).interval).toBe(42)
    }))

  it.effect("rejects an oversize body", () =>
    Effect.gen(function* () {
      const big = new Uint8Array(3 * 1024 * 1024)
      expect(reasonOf(yield* announceWith(httpResponse(big)))).toBe("TooLarge")
      const unframed = ["HTTP/1.1 200 OK\r\n\r\n", ...new Array(40).fill(new Uint8Array(64 * 1024))]
      expect(reasonOf(yield* announceWith(unframed))).toBe("TooLarge")
    }))

  it.effect("maps HTTP 500 to HttpStatus, but keeps a failure reason sent with an error status", () =>
    Effect.gen(function* () {
      const status = yield* announceWith(httpResponse("oops", "500 Internal Server Error"))
      expect(reasonOf(status)).toBe("HttpStatus")
      expect(Either.isLeft(status) && status.left.message).toBe("HTTP 500")
      const failure = yield* announceWith(httpResponse(Bencode.encode({ "failure reason": "banned" }), "403 Forbidden"))
      expect(Either.isLeft(failure) && [failure.left.reason, failure.left.message]).toEqual(["Failure", "banned"])
    }))

  it.effect("follows an http redirect, but at most three", () =>
    Effect.gen(function* () {
      const tracker = yield* scriptedHttp(({ host, target }) =>
        host === "tracker.test"
          ? httpResponse("", "302 Found", [`Location: http://other.test${target}`])
          : httpResponse(Bencode.encode({ interval: 5 }))
      )
      const response = yield* HttpTracker.announce(url, request).pipe(Effect.provide(tracker.layer))
      expect(response.interval).toBe(5)
      expect((yield* tracker.requests)[1]).toMatch(/^GET \/announce\?info_hash=%00%20%FFA.*\r\nHost: other\.test\r\n/)

      const loop = yield* announceWith(httpResponse("", "301 Moved", ["Location: /announce"]))
      expect(reasonOf(loop)).toBe("TooManyRedirects")
      const toHttps = yield* announceWith(httpResponse("", "301 Moved", ["Location: https://secure.test/announce"]))
      expect(reasonOf(toHttps)).toBe("UnsupportedScheme")
    }))

  it.effect("fails with Unreachable when the tracker refuses or resets", () =>
    Effect.gen(function* () {
      const refusing = yield* scriptedHttp(() => [], () => true)
      const refused = yield* HttpTracker.announce(url, request).pipe(Effect.either, Effect.provide(refusing.layer))
      expect(reasonOf(refused)).toBe("Unreachable")
      const resetting = yield* scriptedHttp(() => "reset")
      const reset = yield* HttpTracker.announce(url, request).pipe(Effect.either, Effect.provide(resetting.layer))
      expect(reasonOf(reset)).toBe("Unreachable")
      expect(reasonOf(yield* announceWith(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nd"]))).toBe("Malformed")
    }))

  it.effect("times out on the Clock when the tracker never answers", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(announceWith("hang"))
      yield* TestClock.adjust("29 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect(reasonOf(yield* Fiber.join(fiber))).toBe("Timeout")
    }))
})
