import { EventLoopScheduler } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { performance } from "node:perf_hooks"

/** Burns `millis` of CPU synchronously, as a fiber handling a large batch of messages would. */
const burn = (millis: number) =>
  Effect.sync(() => {
    const until = performance.now() + millis
    while (performance.now() < until) {
      // busy
    }
  })

/** Watches the gaps between turns of the event loop with a 2 ms interval timer; `stop` gives the longest. */
const watchTimerGaps = () => {
  let last = performance.now()
  let worst = 0
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 2)
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(worst, performance.now() - last)
    }
  }
}

/**
 * The longest gap between turns of the event loop while `fibers` fibers each run short CPU-bound
 * steps back to back for `millis`.
 */
const worstTimerGap = (run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>, fibers: number, millis: number) =>
  Effect.gen(function* () {
    const gaps = watchTimerGaps()
    const busy = yield* Effect.forkAll(Array.from({ length: fibers }, () => run(Effect.forever(burn(0.2)))))
    // Waits on a promise, not on Effect's clock: the wait itself must not depend on the scheduler.
    yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))
    yield* Fiber.interrupt(busy)
    return gaps.stop()
  })

describe("EventLoopScheduler", () => {
  it.live("gives node's event loop a turn within its budget while fibers keep the runtime busy", () =>
    Effect.gen(function* () {
      const worst = yield* worstTimerGap(EventLoopScheduler.run, 4, 400)
      // Budget 10 ms, plus one 0.2 ms step per fiber and timer slack on a loaded machine.
      expect(worst).toBeLessThan(60)
    }))

  it.live("gives the event loop a turn when many fibers are woken at once, each with a step to run", () =>
    Effect.gen(function* () {
      const wake = yield* Deferred.make<void>()
      let ran = 0
      const woken = yield* Effect.forkAll(
        Array.from({ length: 200 }, () => EventLoopScheduler.run(Deferred.await(wake).pipe(Effect.zipRight(burn(1)), Effect.tap(() => ran++))))
      )
      yield* Effect.yieldNow()
      const gaps = watchTimerGaps()
      // 200 fibers resumed by one event: 200 ms of work, which must not be one turn of the loop.
      yield* EventLoopScheduler.run(Deferred.succeed(wake, undefined))
      yield* Fiber.join(woken)
      const worst = gaps.stop()
      expect(ran).toBe(200)
      // Budget 10 ms plus one 1 ms step, and timer slack on a loaded machine (one turn: ~200 ms).
      expect(worst).toBeLessThan(80)
    }))

  it.live("runs fibers to completion and keeps their results and failures", () =>
    Effect.gen(function* () {
      const results = yield* EventLoopScheduler.run(
        Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) => Effect.yieldNow().pipe(Effect.as(i * 2)), {
          concurrency: 10
        })
      )
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i * 2))
      const failure = yield* Effect.flip(EventLoopScheduler.run(Effect.yieldNow().pipe(Effect.zipRight(Effect.fail("boom" as const)))))
      expect(failure).toBe("boom")
    }))
})
