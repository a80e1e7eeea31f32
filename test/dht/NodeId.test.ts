import { NodeId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Random } from "effect"

const id = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(NodeId.unsafeFromBytes)
const big = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString("hex")}`)

describe("NodeId", () => {
  it.prop("distance is XOR: symmetric, zero only to itself, compareDistance agrees with it", [id, id, id], ([t, a, b]) => {
    expect(big(NodeId.distance(a, b))).toBe(big(a) ^ big(b))
    expect(NodeId.distance(a, b)).toEqual(NodeId.distance(b, a))
    expect(big(NodeId.distance(a, a))).toBe(0n)
    const da = big(a) ^ big(t)
    const db = big(b) ^ big(t)
    expect(Math.sign(NodeId.compareDistance(t, a, b))).toBe(da < db ? -1 : da > db ? 1 : 0)
    expect(Math.sign(NodeId.compare(a, b))).toBe(big(a) < big(b) ? -1 : big(a) > big(b) ? 1 : 0)
  })

  it.prop("commonPrefixLength counts the leading bits two ids share", [id, id], ([a, b]) => {
    const x = big(a) ^ big(b)
    expect(NodeId.commonPrefixLength(a, b)).toBe(x === 0n ? 160 : 160 - x.toString(2).length)
  })

  it.prop("withPrefix keeps exactly the first bits of the prefix and takes the rest from the noise", [id, id, fc.integer({ min: 0, max: 160 })], ([prefix, noise, bits]) => {
    const made = NodeId.withPrefix(prefix, bits, noise)
    expect(NodeId.commonPrefixLength(made, prefix)).toBeGreaterThanOrEqual(bits)
    const low = (1n << BigInt(160 - bits)) - 1n
    expect(big(made) & low).toBe(big(noise) & low)
  })

  it.prop("hex round-trips; bytes of another length are refused", [id, fc.uint8Array({ maxLength: 40 })], ([value, other]) => {
    expect(Either.getOrThrow(NodeId.fromHex(NodeId.toHex(value)))).toEqual(value)
    expect(Either.isRight(NodeId.fromBytes(other))).toBe(other.length === 20)
  })

  it.effect("random ids come from the Random service, so a seed reproduces them", () =>
    Effect.gen(function* () {
      const a = yield* Effect.withRandom(NodeId.random, Random.make("seed"))
      const b = yield* Effect.withRandom(NodeId.random, Random.make("seed"))
      expect(a).toEqual(b)
      expect(a).toHaveLength(20)
    }))
})
