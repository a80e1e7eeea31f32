import { HttpMessage } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"

const bytes = (text: string) => Uint8Array.from(Buffer.from(text, "latin1"))

const parse = (text: string, ended: boolean, limits?: HttpMessage.Limits) =>
  HttpMessage.parseResponse(bytes(text), ended, limits)

const body = (text: string, ended = false) => {
  const result = parse(text, ended)
  if (Either.isLeft(result)) throw new Error(`unexpected ${result.left.reason}: ${result.left.message}`)
  return Option.map(result.right, (response) => Buffer.from(response.body).toString("latin1"))
}

const failure = (text: string, ended: boolean, limits?: HttpMessage.Limits) =>
  Either.match(parse(text, ended, limits), { onLeft: (error) => error.reason, onRight: () => "parsed" })

describe("HttpMessage", () => {
  it("percent-encodes raw bytes, keeping only the unreserved set", () => {
    const hash = Uint8Array.of(0x00, 0x20, 0xff, 0x41, 0x7a, 0x30, 0x2d, 0x2e, 0x5f, 0x7e, 0x25, 0x2b, 0x26, 0x3d, 0x80)
    expect(HttpMessage.percentEncode(hash)).toBe("%00%20%FFAz0-._~%25%2B%26%3D%80")
  })

  it.prop("percent-decoding inverts percent-encoding", [fc.uint8Array({ maxLength: 64 })], ([raw]) => {
    expect(Option.getOrThrow(HttpMessage.percentDecode(HttpMessage.percentEncode(raw)))).toEqual(Uint8Array.from(raw))
  })

  it("rejects a bad escape and parses repeated parameters", () => {
    expect(Option.isNone(HttpMessage.percentDecode("%G0"))).toBe(true)
    expect(Option.isNone(HttpMessage.percentDecode("%2"))).toBe(true)
    const query = Option.getOrThrow(HttpMessage.parseQuery("info_hash=%00a&info_hash=b+c&flag"))
    expect(query.get("info_hash")).toEqual([Uint8Array.of(0, 0x61), bytes("b c")])
    expect(query.get("flag")).toEqual([new Uint8Array(0)])
  })

  it("waits for a Content-Length body, then returns exactly that many bytes", () => {
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    expect(body(`${head}abc`)).toEqual(Option.none())
    expect(body(`${head}abcde`)).toEqual(Option.some("abcde"))
    expect(failure(`${head}abc`, true)).toBe("Truncated")
  })

  it("decodes a chunked body split anywhere", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nd8:i\r\na\r\nntervali1e\r\n1\r\ne\r\n0\r\n\r\n"
    for (let cut = 0; cut < text.length - 5; cut++) {
      expect(body(text.slice(0, cut))).toEqual(Option.none())
    }
    expect(body(text)).toEqual(Option.some("d8:intervali1ee"))
  })

  it("reads to the end of the connection without a length", () => {
    const text = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nd1:xi1ee"
    expect(body(text)).toEqual(Option.none())
    expect(body(text, true)).toEqual(Option.some("d1:xi1ee"))
  })

  it("rejects bodies over the limit before they arrive", () => {
    const limits = { maxHead: 1024, maxBody: 10 }
    expect(failure("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", false, limits)).toBe("TooLarge")
    expect(failure("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n", false, limits)).toBe("TooLarge")
    expect(failure(`HTTP/1.1 200 OK\r\n\r\n${"x".repeat(11)}`, false, limits)).toBe("TooLarge")
    expect(failure(`HTTP/1.1 200 OK\r\nX: ${"y".repeat(2000)}`, false, limits)).toBe("TooLarge")
  })

  it("rejects what is not HTTP", () => {
    expect(failure("SSH-2.0-OpenSSH\r\n\r\n", false)).toBe("Malformed")
    expect(failure("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false)).toBe("Malformed")
    expect(failure("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false)).toBe("Malformed")
    expect(failure("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false)).toBe("Malformed")
  })

  it("parses a request head", () => {
    const head = HttpMessage.parseRequestHead(bytes("GET /announce?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"), 1024)
    expect(Either.getOrThrow(head)).toEqual(
      Option.some({ method: "GET", target: "/announce?a=1", headers: new Map([["host", "x"]]) })
    )
    expect(Either.getOrThrow(HttpMessage.parseRequestHead(bytes("GET / HTTP/1.1\r\n"), 1024))).toEqual(Option.none())
    expect(Either.isLeft(HttpMessage.parseRequestHead(bytes("x".repeat(2000)), 1024))).toBe(true)
  })
})
