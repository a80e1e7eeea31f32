/**
 * Runs an effect in virtual time: it is forked, and the `TestClock` is advanced one step at a
 * time until it is done, so a whole swarm's minutes pass in milliseconds. Bounded: past the
 * limit the effect is interrupted and the run fails with `SimulationTimeout`.
 */
import { Data, Duration, Effect, Exit, Fiber, Option, Scope, TestClock } from "effect"

/** The effect was still running when the virtual-time limit was reached. */
export class SimulationTimeout extends Data.TaggedError("SimulationTimeout")<{
  /** The limit, in virtual milliseconds. */
  readonly limit: number
  readonly message: string
}> {}

/** How far and in what steps virtual time advances. */
export interface Options {
  /** Virtual time after which the run fails (default 10 minutes). */
  readonly limit?: Duration.DurationInput
  /** Virtual time per step (default 1 second); fibers due within a step run in time order. */
  readonly step?: Duration.DurationInput
}

/** Default `Options.limit`. */
export const DEFAULT_LIMIT = Duration.minutes(10)

/** Runs `effect` under the TestClock until it completes (its result or failure) or the limit passes. */
export const run = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options?: Options
): Effect.Effect<A, E | SimulationTimeout, R> =>
  Effect.gen(function* () {
    const limit = Duration.toMillis(Duration.decode(options?.limit ?? DEFAULT_LIMIT))
    const step = Duration.decode(options?.step ?? Duration.seconds(1))
    const fiber = yield* Effect.fork(effect)
    for (let elapsed = 0; elapsed < limit; elapsed += Duration.toMillis(step)) {
      if (Option.isSome(yield* Fiber.poll(fiber))) return yield* Fiber.join(fiber)
      yield* TestClock.adjust(step)
    }
    const last = yield* Fiber.poll(fiber)
    if (Option.isSome(last)) return yield* Fiber.join(fiber)
    // Not awaited: a fiber stuck in a finalizer would never finish being interrupted.
    yield* Fiber.interruptFork(fiber)
    return yield* new SimulationTimeout({ limit, message: `still running after ${Duration.format(Duration.millis(limit))} of virtual time` })
  })

/**
 * Runs `effect` in a fresh scope, then closes that scope in virtual time too: finalizers that
 * wait on the clock (a tracker's `stopped` announce with its timeout, say) would otherwise wait
 * for a TestClock nobody advances. Use it instead of `it.scoped` for tests that start sessions.
 */
export const scoped = <A, E, R>(
  effect: Effect.Effect<A, E, R | Scope.Scope>,
  options?: Options
): Effect.Effect<A, E | SimulationTimeout, Exclude<R, Scope.Scope>> =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const exit = yield* Effect.exit(Scope.extend(effect, scope))
    yield* run(Scope.close(scope, Exit.asVoid(exit)), options)
    return yield* exit
  })
