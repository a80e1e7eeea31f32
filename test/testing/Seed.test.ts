import { Seed } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"

describe("Seed", () => {
  it("reads BITFIBER_SEED in decimal or hex, and falls back when it is absent or invalid", () => {
    expect(Seed.fromEnv({ BITFIBER_SEED: "1234" })).toBe(1234)
    expect(Seed.fromEnv({ BITFIBER_SEED: "0xff" })).toBe(255)
    expect(Seed.fromEnv({}, 7)).toBe(7)
    expect(Seed.fromEnv({ BITFIBER_SEED: "-1" }, 7)).toBe(7)
    expect(Seed.fromEnv({ BITFIBER_SEED: "4294967296" }, 7)).toBe(7)
    const fresh = Seed.fromEnv({})
    expect(Number.isInteger(fresh) && fresh >= 0 && fresh <= 0xffff_ffff).toBe(true)
    expect(Seed.replayHint(42)).toBe("replay with BITFIBER_SEED=42")
  })

  it("a generator repeats its sequence for the same seed, and forks independent ones", () => {
    const draw = (prng: Seed.Prng) => Array.from({ length: 20 }, () => prng.nextUint32())
    expect(draw(new Seed.Prng(5))).toEqual(draw(new Seed.Prng(5)))
    expect(draw(new Seed.Prng(5))).not.toEqual(draw(new Seed.Prng(6)))
    const parent = new Seed.Prng(5)
    expect(draw(parent.fork())).not.toEqual(draw(new Seed.Prng(5)))
  })

  it("int stays within its bounds and reaches both; chance and pick follow their arguments", () => {
    const prng = new Seed.Prng(9)
    const ints = Array.from({ length: 2000 }, () => prng.int(3, 7))
    expect(Math.min(...ints)).toBe(3)
    expect(Math.max(...ints)).toBe(7)
    expect(Array.from({ length: 100 }, () => prng.chance(0)).some(Boolean)).toBe(false)
    expect(Array.from({ length: 100 }, () => prng.chance(1)).every(Boolean)).toBe(true)
    expect(new Set(Array.from({ length: 100 }, () => prng.pick(["a", "b"])))).toEqual(new Set(["a", "b"]))
  })
})
