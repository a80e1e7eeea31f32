import { BlockPool, Framer, Message } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { message, split } from "./arbitraries.js"

const BLOCK = 16 * 1024

/** Pushes every chunk, collecting all messages; throws (fails the test) on a Left. */
const drain = (framer: Framer.Framer, chunks: Iterable<Uint8Array>) => {
  const out: Array<Message.Message> = []
  for (const chunk of chunks) out.push(...Either.getOrThrow(framer.push(chunk)))
  return out
}

const block = (fill: number, length = BLOCK) => new Uint8Array(length).fill(fill)

describe("BlockPool", () => {
  it("reuses a released block's buffer for the next full block, and keeps at most `capacity`", () => {
    const pool = BlockPool.make(BLOCK, 2)
    const a = pool.copy(block(1))
    const b = pool.copy(block(2))
    const c = pool.copy(block(3))
    expect([a[0], b[0], c[0], a.length]).toEqual([1, 2, 3, BLOCK])
    pool.release(a)
    pool.release(b)
    pool.release(c)
    expect(pool.spare()).toBe(2)
    const d = pool.copy(block(4))
    expect(d === b || d === a).toBe(true)
    expect(d.every((byte) => byte === 4)).toBe(true)
    pool.clear()
    expect(pool.spare()).toBe(0)
  })

  it("never pools a short block or a view into a larger buffer", () => {
    const pool = BlockPool.make(BLOCK, 8)
    const short = pool.copy(block(5, 100))
    expect(Array.from(short.subarray(0, 3))).toEqual([5, 5, 5])
    pool.release(short)
    pool.release(new Uint8Array(BLOCK + 13).subarray(13))
    pool.release(new Uint8Array(2 * BLOCK).subarray(0, BLOCK))
    expect(pool.spare()).toBe(0)
  })
})

describe("Framer with a BlockPool", () => {
  it.prop(
    "any chunking yields the same messages; blocks are copies, and nothing decoded changes with later frames",
    [fc.array(message, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 })],
    ([ms, cuts]) => {
      const pool = BlockPool.make(BLOCK, 4)
      const framer = Framer.make({ blocks: pool })
      const stream = Uint8Array.from(Message.encodeAll(ms))
      const decoded = drain(framer, split(stream, cuts))
      // More split frames through the same framer overwrite its reused buffer.
      drain(framer, split(Message.encodeAll(ms.map(() => Message.Piece(0, 0, block(0xdd)))), cuts))
      expect(decoded).toEqual(ms)
      for (const m of decoded) if (m._tag === "Piece") expect(m.block.buffer).not.toBe(stream.buffer)
    }
  )

  it("copies full blocks into released buffers, also when their frame is split across chunks", () => {
    const pool = BlockPool.make(BLOCK, 4)
    const framer = Framer.make({ blocks: pool })
    const stream = Message.encodeAll([Message.Piece(1, 0, block(7)), Message.Piece(1, BLOCK, block(8))])
    const first = drain(framer, [stream.subarray(0, 5000), stream.subarray(5000, 20000)])
    expect(first).toHaveLength(1)
    const piece = first[0] as Message.Piece
    expect(piece.block.buffer).not.toBe(stream.buffer)
    pool.release(piece.block)
    const second = drain(framer, [stream.subarray(20000)])
    expect((second[0] as Message.Piece).block).toBe(piece.block)
    expect((second[0] as Message.Piece).block.every((byte) => byte === 8)).toBe(true)
  })
})
