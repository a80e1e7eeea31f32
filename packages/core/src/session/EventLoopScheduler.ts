/**
 * An Effect scheduler that gives the event loop a turn every few milliseconds.
 *
 * Effect's default scheduler resumes fibers on microtasks and only falls back to a timer after
 * 2,048 consecutive drains of one fiber's runner, so a busy runtime (many peers, a simulated
 * network) can keep node's event loop from timers and I/O for hundreds of milliseconds. This one
 * runs fibers on microtasks too, but once the current run of microtasks has lasted `budgetMillis`
 * it continues from `setImmediate`, after node has polled I/O and run due timers.
 */
import { Effect, Scheduler } from "effect"
import { performance } from "node:perf_hooks"

/** Default budget: a stall of the event loop stays near 10 ms unless one task itself runs longer. */
export const DEFAULT_BUDGET_MILLIS = 10

/** A scheduler that yields to the event loop after `budgetMillis` of continuous work. */
export const make = (budgetMillis: number = DEFAULT_BUDGET_MILLIS): Scheduler.Scheduler => {
  // Start of the current run of microtasks; reset by a setImmediate, i.e. once the loop turned.
  let runStartedAt = -1
  const endRun = () => {
    runStartedAt = -1
  }
  // The budget is checked as each fiber's drain starts, not when it is queued: a peer's event
  // wakes many fibers at once (200 connections closing), and drains queued while the run was
  // young would otherwise all run in that one turn.
  const start = (drain: (depth: number) => void) => {
    const now = performance.now()
    if (runStartedAt < 0) {
      runStartedAt = now
      setImmediate(endRun)
    }
    if (now - runStartedAt >= budgetMillis) setImmediate(() => start(drain))
    else drain(0)
  }
  const getRunner = Scheduler.SchedulerRunner.cached((_depth, drain) => queueMicrotask(() => start(drain)))
  return Scheduler.make((task, priority, fiber) => getRunner(fiber).scheduleTask(task, priority))
}

/** The shared instance: one budget for every fiber that uses it. */
export const scheduler: Scheduler.Scheduler = make()

/** Runs `effect`, and every fiber it forks, on the shared event-loop-friendly scheduler. */
export const run = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withScheduler(effect, scheduler)
