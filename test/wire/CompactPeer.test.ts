import { CompactPeer } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"

const port = fc.integer({ min: 0, max: 0xffff })
const ipv4 = fc.ipV4().map((host) => ({ host, port: 0 })).chain((a) => port.map((p) => ({ ...a, port: p })))
const v6Bytes = fc.uint8Array({ minLength: 16, maxLength: 16 })

describe("CompactPeer", () => {
  it("decodes a tracker's IPv4 entry", () => {
    const bytes = Uint8Array.of(127, 0, 0, 1, 0x1a, 0xe1, 10, 1, 2, 3, 0, 80)
    expect(Either.getOrThrow(CompactPeer.decode4(bytes))).toEqual([
      { host: "127.0.0.1", port: 6881 },
      { host: "10.1.2.3", port: 80 }
    ])
  })

  it("decodes IPv6 entries in canonical text form", () => {
    const loopback = new Uint8Array(18)
    loopback[15] = 1
    loopback[16] = 0x1a
    loopback[17] = 0xe1
    const doc = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1])
    expect(Either.getOrThrow(CompactPeer.decode6(new Uint8Array([...loopback, ...doc])))).toEqual([
      { host: "::1", port: 6881 },
      { host: "2001:db8::1:0:0:1", port: 1 }
    ])
  })

  it.prop("IPv4 lists round-trip", [fc.array(ipv4, { maxLength: 20 })], ([peers]) => {
    const bytes = Either.getOrThrow(CompactPeer.encode4(peers))
    expect(bytes.length).toBe(peers.length * 6)
    expect(Either.getOrThrow(CompactPeer.decode4(bytes))).toEqual(peers)
  })

  it.prop("IPv6 bytes round-trip and hosts match the WHATWG canonical form", [fc.array(fc.tuple(v6Bytes, port), { maxLength: 10 })], ([entries]) => {
    const bytes = new Uint8Array(entries.length * 18)
    entries.forEach(([ip, p], i) => {
      bytes.set(ip, i * 18)
      bytes[i * 18 + 16] = p >>> 8
      bytes[i * 18 + 17] = p & 0xff
    })
    const peers = Either.getOrThrow(CompactPeer.decode6(bytes))
    for (const peer of peers) expect(new URL(`http://[${peer.host}]/`).hostname).toBe(`[${peer.host}]`)
    expect(Either.getOrThrow(CompactPeer.encode6(peers))).toEqual(bytes)
  })

  it.prop("any IPv6 literal fast-check writes encodes and reads back to the same address", [fc.ipV6(), port], ([host, p]) => {
    const [peer] = Either.getOrThrow(CompactPeer.decode6(Either.getOrThrow(CompactPeer.encode6([{ host, port: p }]))))
    expect(`[${peer!.host}]`).toBe(new URL(`http://[${host}]/`).hostname)
    expect(peer!.port).toBe(p)
  })

  it.prop("lengths that are not a multiple of the entry size are rejected", [fc.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const v4 = CompactPeer.decode4(bytes)
    const v6 = CompactPeer.decode6(bytes)
    expect(Either.isLeft(v4)).toBe(bytes.length % 6 !== 0)
    expect(Either.isLeft(v6)).toBe(bytes.length % 18 !== 0)
    if (Either.isLeft(v4)) expect(v4.left.reason).toBe("Length")
  })

  it("rejects hosts of the wrong family and bad ports", () => {
    for (const host of ["::1", "1.2.3", "1.2.3.256", "example.org", "01.2.3.4.5"]) {
      expect(Either.flip(CompactPeer.encode4([{ host, port: 1 }])).pipe(Either.getOrThrow).reason).toBe("Address")
    }
    for (const host of ["1.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::12345", "g::1", "1:2:3:4:5:6:7::8"]) {
      expect(Either.isLeft(CompactPeer.encode6([{ host, port: 1 }]))).toBe(true)
    }
    expect(Either.isLeft(CompactPeer.encode4([{ host: "1.2.3.4", port: 65536 }]))).toBe(true)
    expect(Either.isLeft(CompactPeer.encode4([{ host: "1.2.3.4", port: -1 }]))).toBe(true)
  })

  it("accepts an IPv6 literal with an embedded IPv4 tail", () => {
    const bytes = Either.getOrThrow(CompactPeer.encode6([{ host: "::ffff:127.0.0.1", port: 2 }]))
    expect(Array.from(bytes.subarray(10, 18))).toEqual([0xff, 0xff, 127, 0, 0, 1, 0, 2])
  })
})
