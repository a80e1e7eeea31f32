import { Simulation } from "@bitfiber/core/testing"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"

describe("Simulation", () => {
  it.effect("runs an effect through virtual time and returns its result", () =>
    Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      const result = yield* Simulation.run(Effect.as(Effect.sleep("3 hours"), "done"), { limit: "4 hours", step: "1 minute" })
      expect(result).toBe("done")
      expect((yield* Clock.currentTimeMillis) - start).toBe(3 * 3600 * 1000)
    }))

  it.effect("fails with SimulationTimeout past the limit, and keeps the effect's own failures", () =>
    Effect.gen(function* () {
      const timeout = yield* Effect.flip(Simulation.run(Effect.never, { limit: "10 seconds" }))
      expect(timeout).toMatchObject({ _tag: "SimulationTimeout", limit: 10_000 })
      const failure = yield* Effect.flip(Simulation.run(Effect.zipRight(Effect.sleep("1 second"), Effect.fail("boom"))))
      expect(failure).toBe("boom")
    }))

  it.effect("scoped closes its scope in virtual time, so finalizers that wait on the clock finish", () =>
    Effect.gen(function* () {
      let finalized = false
      yield* Simulation.scoped(
        Effect.addFinalizer(() => Effect.zipRight(Effect.sleep("5 seconds"), Effect.sync(() => (finalized = true))))
      )
      expect(finalized).toBe(true)
    }))
})
