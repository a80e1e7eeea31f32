import { InfoHash, Magnet } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const HEX = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
const hash = Either.getOrThrow(InfoHash.fromHex(HEX))
const reasonOf = (uri: string) => {
  const result = Magnet.parse(uri)
  return Either.isLeft(result) ? result.left.reason : "parsed"
}

const infoHash = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(InfoHash.unsafeFromBytes)
const text = fc.fullUnicodeString({ maxLength: 30 })
const url = fc.webUrl({ withQueryParameters: true })
const peer = fc.record({
  host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
  port: fc.integer({ min: 1, max: 65535 })
})
const range = fc.tuple(fc.nat(1000), fc.nat(50)).map(([first, span]) => ({ first, last: first + span }))
const magnet: fc.Arbitrary<Magnet.Magnet> = fc.record({
  infoHash,
  name: fc.option(text, { nil: undefined }),
  trackers: fc.uniqueArray(url, { maxLength: 4 }),
  peers: fc.array(peer, { maxLength: 4 }),
  webSeeds: fc.uniqueArray(url, { maxLength: 3 }),
  select: fc.option(fc.array(range, { minLength: 1, maxLength: 5 }), { nil: undefined })
})

describe("Magnet", () => {
  it("parses every field", () => {
    const uri = `magnet:?xt=urn:btih:${HEX}&dn=Some+Name%20%C3%A9&tr=http%3A%2F%2Fa%2Fannounce&tr=udp://b:80&tr=http%3A%2F%2Fa%2Fannounce` +
      `&x.pe=10.0.0.1:6881&x.pe=[::1]:51413&x.pe=peer.example:1&ws=http://seed/&so=0,2,4-6&xl=123`
    expect(Either.getOrThrow(Magnet.parse(uri))).toEqual({
      infoHash: hash,
      name: "Some Name é",
      trackers: ["http://a/announce", "udp://b:80"],
      peers: [{ host: "10.0.0.1", port: 6881 }, { host: "::1", port: 51413 }, { host: "peer.example", port: 1 }],
      webSeeds: ["http://seed/"],
      select: [{ first: 0, last: 0 }, { first: 2, last: 2 }, { first: 4, last: 6 }]
    })
  })

  it("accepts base32 and upper-case hashes, and a hybrid link's btih next to its btmh", () => {
    const base32 = InfoHash.toBase32(hash)
    expect(Either.getOrThrow(Magnet.parse(`magnet:?xt=urn:btih:${base32}`)).infoHash).toEqual(hash)
    expect(Either.getOrThrow(Magnet.parse(`MAGNET:?XT=urn:BTIH:${HEX.toUpperCase()}`)).infoHash).toEqual(hash)
    const hybrid = `magnet:?xt=urn:btmh:1220${"ab".repeat(32)}&xt=urn:btih:${HEX}`
    expect(Either.getOrThrow(Magnet.parse(hybrid)).infoHash).toEqual(hash)
  })

  it("selects files", () => {
    const parsed = Either.getOrThrow(Magnet.parse(`magnet:?xt=urn:btih:${HEX}&so=1,4-6`))
    expect([0, 1, 2, 4, 6, 7].map((index) => Magnet.isSelected(parsed, index))).toEqual([false, true, false, true, true, false])
    expect(Magnet.isSelected(Either.getOrThrow(Magnet.parse(`magnet:?xt=urn:btih:${HEX}`)), 99)).toBe(true)
  })

  describe("typed errors", () => {
    const cases: ReadonlyArray<readonly [string, string, Magnet.MagnetError["reason"]]> = [
      ["an http URL", "http://example.com/?xt=urn:btih:" + HEX, "NotMagnet"],
      ["no xt", "magnet:?dn=x", "MissingXt"],
      ["a v2-only link", `magnet:?xt=urn:btmh:1220${"ab".repeat(32)}`, "UnsupportedXt"],
      ["an ed2k link", "magnet:?xt=urn:ed2k:31D6CFE0D16AE931B73C59D7E0C089C0", "UnsupportedXt"],
      ["a 39-digit hash", `magnet:?xt=urn:btih:${HEX.slice(1)}`, "BadHash"],
      ["a non-hex hash", `magnet:?xt=urn:btih:${"z".repeat(40)}`, "BadHash"],
      ["a bad base32 hash", `magnet:?xt=urn:btih:${"1".repeat(32)}`, "BadHash"],
      ["two different hashes", `magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${"0".repeat(40)}`, "BadHash"],
      ["a malformed escape", `magnet:?xt=urn:btih:${HEX}&dn=%E0%A4%A`, "BadEncoding"],
      ["a bare %", `magnet:?xt=urn:btih:${HEX}&dn=100%`, "BadEncoding"],
      ["a peer without port", `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1`, "BadPeer"],
      ["a peer with port 0", `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:0`, "BadPeer"],
      ["a peer with port 70000", `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:70000`, "BadPeer"],
      ["an unbracketed v6 peer", `magnet:?xt=urn:btih:${HEX}&x.pe=::1:80`, "BadPeer"],
      ["a bracketed non-v6 peer", `magnet:?xt=urn:btih:${HEX}&x.pe=[nope]:80`, "BadPeer"],
      ["a reversed range", `magnet:?xt=urn:btih:${HEX}&so=5-2`, "BadSelect"],
      ["a negative index", `magnet:?xt=urn:btih:${HEX}&so=-1`, "BadSelect"],
      ["an empty so", `magnet:?xt=urn:btih:${HEX}&so=`, "BadSelect"],
      ["too many ranges", `magnet:?xt=urn:btih:${HEX}&so=${Array.from({ length: 2000 }, (_, i) => i).join(",")}`, "BadSelect"],
      ["a huge index", `magnet:?xt=urn:btih:${HEX}&so=99999999`, "BadSelect"],
      ["a link over 64 KiB", `magnet:?xt=urn:btih:${HEX}&dn=${"a".repeat(70_000)}`, "TooLong"]
    ]
    for (const [name, uri, reason] of cases) {
      it(`${name}: ${reason}`, () => {
        expect(reasonOf(uri)).toBe(reason)
      })
    }
  })

  it.prop("format then parse gives the same magnet", [magnet], ([m]) => {
    expect(Either.getOrThrow(Magnet.parse(Magnet.format(m)))).toEqual(m)
  })

  it.prop("any string gives a Magnet or a MagnetError, never a throw", [fc.fullUnicodeString({ maxLength: 200 })], ([s]) => {
    for (const uri of [s, `magnet:?${s}`, `magnet:?xt=urn:btih:${HEX}&${s}`]) {
      const result = Magnet.parse(uri)
      if (Either.isLeft(result)) expect(result.left._tag).toBe("MagnetError")
    }
  }, { fastCheck: { numRuns: 2000 } })

  it.prop(
    "magnet-shaped noise never throws",
    [fc.array(fc.constantFrom("xt=", "urn:btih:", "&", "%", "%E0", "+", "x.pe=", "[", "]", ":", "so=", "-", ",", "1", "a"), { maxLength: 40 })],
    ([parts]) => {
      const result = Magnet.parse(`magnet:?${parts.join("")}`)
      if (Either.isLeft(result)) expect(result.left._tag).toBe("MagnetError")
    },
    { fastCheck: { numRuns: 2000 } }
  )
})

describe("InfoHash", () => {
  it.prop("hex and base32 forms round-trip", [infoHash], ([h]) => {
    expect(Either.getOrThrow(InfoHash.fromHex(InfoHash.toHex(h)))).toEqual(h)
    expect(Either.getOrThrow(InfoHash.fromBase32(InfoHash.toBase32(h)))).toEqual(h)
    expect(Either.getOrThrow(InfoHash.fromBase32(InfoHash.toBase32(h).toLowerCase()))).toEqual(h)
  })
})
