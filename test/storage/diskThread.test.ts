// What the disk thread's requests carry: postMessage clones a view's whole ArrayBuffer.
import { describe, expect, it } from "@effect/vitest"
import { ownBytes } from "../../packages/core/src/storage/internal/diskThread.js"

describe("diskThread.ownBytes", () => {
  it("copies a view of part of a Buffer out to its own bytes (Buffer's slice would be a view)", () => {
    const hashes = Buffer.alloc(8 * 1024 * 1024, 7)
    const digest = hashes.subarray(20 * 1000, 20 * 1001)
    const own = ownBytes(digest)
    expect(own.buffer.byteLength).toBe(20)
    expect(Buffer.from(own).equals(digest)).toBe(true)
  })

  it("keeps a whole buffer, and a view of shared memory, as they are", () => {
    const whole = new Uint8Array(64)
    expect(ownBytes(whole)).toBe(whole)
    const shared = new Uint8Array(new SharedArrayBuffer(1024)).subarray(256, 512)
    expect(ownBytes(shared)).toBe(shared)
  })
})
