// The receive ring is internal to NodeNetwork; node's read pattern is simulated here so that every
// interleaving of reads and pulls can be checked, which a real socket cannot be made to produce.
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as ReceiveRing from "../../packages/core/src/net/internal/receiveRing.js"

const RING = 256 * 1024

/** Either node reads `n` bytes (at most the buffer it was given), or the reader pulls. */
type Step = { readonly _tag: "Read"; readonly n: number } | { readonly _tag: "Pull" }

// Mostly reads: several reads between two pulls are what fills and wraps the ring.
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Read" as const), n: fc.integer({ min: 1, max: ReceiveRing.READ_BYTES }) }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "Pull" as const }) }
)

describe("ReceiveRing", () => {
  it.prop(
    "never hands node a range the reader still holds, in any order of reads and pulls",
    [fc.array(step, { maxLength: 400 })],
    ([steps]) => {
      const ring = ReceiveRing.make(RING)
      // Each chunk with the byte it was filled with: still intact when the reader is done with it.
      let handedOut: Array<[Uint8Array, number]> = []
      let waiting: Array<[Uint8Array, number]> = []
      let fill = 0
      let buffer = ring.reserve()!
      for (const s of steps) {
        if (s._tag === "Read") {
          const n = Math.min(s.n, buffer.length)
          fill = (fill + 1) % 256
          buffer.fill(fill, 0, n)
          waiting.push([ring.filled(buffer, n), fill])
          buffer = ring.reserve() ?? Buffer.allocUnsafe(ReceiveRing.READ_BYTES)
          expect(buffer.length).toBeGreaterThanOrEqual(16 * 1024)
        } else {
          for (const [chunk, byte] of handedOut) expect(chunk.every((b) => b === byte)).toBe(true)
          ring.consumed()
          ring.handOut()
          handedOut = waiting
          waiting = []
        }
      }
      for (const [chunk, byte] of [...handedOut, ...waiting]) expect(chunk.every((b) => b === byte)).toBe(true)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("reads at the ring's start again once the reader keeps up, and reports a full ring", () => {
    const ring = ReceiveRing.make(RING)
    const first = ring.reserve()!
    expect([first.byteOffset, first.length]).toEqual([0, ReceiveRing.READ_BYTES])
    const a = ring.filled(first, ReceiveRing.READ_BYTES)
    ring.handOut()
    // The reader holds [0, 64 KiB): the next read goes after it.
    const second = ring.reserve()!
    expect(second.byteOffset - a.byteOffset).toBe(ReceiveRing.READ_BYTES)
    ring.filled(second, 100)
    ring.consumed()
    // [0, 64 KiB) is free again: the lowest range that fits a full read.
    expect(ring.reserve()!.byteOffset - a.byteOffset).toBe(0)

    const full = ReceiveRing.make(RING)
    let room = full.reserve()
    let reads = 0
    while (room !== undefined) {
      full.filled(room, room.length)
      room = full.reserve()
      reads++
    }
    expect(reads).toBe(RING / ReceiveRing.READ_BYTES)
    full.consumed()
    expect(full.reserve()).toBeUndefined()
    full.handOut()
    full.consumed()
    expect(full.reserve()?.length).toBe(ReceiveRing.READ_BYTES)
  })
})
