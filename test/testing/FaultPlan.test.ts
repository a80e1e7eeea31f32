import { FaultPlan, MemoryNetwork, Seed } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"

const A = "10.0.0.1"
const B = "10.0.0.2"

describe("FaultPlan", () => {
  it.scoped("applies each link fault at its time and lifts it when its duration ends", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      yield* FaultPlan.run(board, [
        FaultPlan.link({ at: "1 second", duration: "2 seconds", match: { from: A }, link: { stall: true } }),
        FaultPlan.link({ at: "2 seconds", match: { to: B }, link: { bandwidth: 1000 } })
      ])
      const at = (seconds: number) =>
        Effect.map(TestClock.adjust(`${seconds} seconds`), () => board.link(A, B))
      expect(yield* at(0)).toEqual({})
      expect(yield* at(1)).toEqual({ stall: true })
      expect(yield* at(1)).toEqual({ stall: true, bandwidth: 1000 })
      expect(yield* at(1)).toEqual({ bandwidth: 1000 })
      expect(yield* at(60)).toEqual({ bandwidth: 1000 })
    }))

  it.scoped("cuts the matching connections at the cut's time", () =>
    Effect.gen(function* () {
      const board = yield* MemoryNetwork.make()
      const listener = yield* board.network(B).listen({ host: B, port: 0 }, () => Effect.never)
      const connection = yield* board.network(A).connect(listener.address)
      yield* FaultPlan.run(board, [FaultPlan.cut("5 seconds", { from: A })])
      yield* TestClock.adjust("4 seconds")
      yield* connection.write(new Uint8Array(1))
      yield* TestClock.adjust("1 second")
      expect((yield* Effect.flip(connection.write(new Uint8Array(1)))).reason).toBe("Reset")
    }))

  it("random plans come from the seed alone, stay within the horizon and hit only the target's links", () => {
    const options = { hosts: [A, B], target: "10.0.0.9", count: 50, horizon: "30 seconds", maxDuration: "10 seconds" } as const
    const plan = FaultPlan.random(new Seed.Prng(11), options)
    expect(FaultPlan.random(new Seed.Prng(11), options)).toEqual(plan)
    expect(FaultPlan.random(new Seed.Prng(12), options)).not.toEqual(plan)
    expect(plan).toHaveLength(50)
    for (const fault of plan) {
      expect(fault.at).toBeLessThanOrEqual(30_000)
      if (fault._tag === "LinkFault") expect(fault.duration).toBeLessThanOrEqual(10_000)
      expect([fault.match.from, fault.match.to]).toContain("10.0.0.9")
    }
    expect(new Set(plan.map((fault) => (fault._tag === "Cut" ? "cut" : fault.label.split("=")[0])))).toEqual(
      new Set(["latency", "bandwidth", "stall", "cut", "refuse", "blackhole", "drop"])
    )
    expect(FaultPlan.describe(plan).split("\n")).toHaveLength(50)
  })

  it("flipBits flips about the given share of bytes, one bit each", () => {
    const bytes = new Uint8Array(100_000)
    FaultPlan.flipBits(0.01)(bytes, new Seed.Prng(1))
    const flipped = bytes.filter((byte) => byte !== 0)
    expect(flipped.length).toBeGreaterThan(800)
    expect(flipped.length).toBeLessThan(1200)
    expect(flipped.every((byte) => (byte & (byte - 1)) === 0)).toBe(true)
  })
})
