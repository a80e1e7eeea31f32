// The hashing threads behind Create: the digests must be exactly node:crypto's, wherever they are computed.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as HashPool from "../../packages/core/src/metainfo/internal/hashPool.js"

const expected = (run: Uint8Array, pieceLength: number) => {
  const out: Array<Buffer> = []
  for (let at = 0; at < run.length; at += pieceLength) out.push(createHash("sha1").update(run.subarray(at, at + pieceLength)).digest())
  return new Uint8Array(Buffer.concat(out))
}

/** A run of `length` random bytes on shared memory, as Create reads them. */
const sharedRun = (length: number) => {
  const run = new Uint8Array(new SharedArrayBuffer(length))
  run.set(randomBytes(length))
  return run
}

describe("HashPool", () => {
  for (const threads of [0, 2]) {
    it.scoped(`${threads} threads: the digests of every piece, the last one shorter, of runs hashed at once`, () =>
      Effect.gen(function* () {
        const pool = yield* HashPool.make(threads)
        expect(pool.threads).toBe(threads)
        const runs = [sharedRun(5 * 16384 + 100), sharedRun(16384), new Uint8Array(randomBytes(3 * 16384))]
        const digests = yield* Effect.all(runs.map((run) => pool.digests(run, 16384)), { concurrency: "unbounded" })
        digests.forEach((digest, i) => expect(digest).toEqual(expected(runs[i]!, 16384)))
        expect(digests[0]!.length).toBe(6 * 20)
      }))
  }
})
