/**
 * A queue whose entries become visible at a time on Effect's Clock: the in-flight bytes of one
 * simulated link direction, or the inbox of one simulated UDP socket. Every state change wakes
 * the fibers waiting on it, so readers see new entries and writers see freed room.
 */
import { Clock, Deferred, Effect, FiberId, Option } from "effect"

interface Entry<A> {
  readonly value: A
  readonly size: number
  readonly at: number
}

/**
 * Entries ordered by arrival time, an optional end marker, and a wake-up signal. While `held()`
 * is true nothing is delivered (a stalled link); call `notify` when its answer may have changed.
 */
export class DelayQueue<A, E> {
  constructor(private readonly held: () => boolean = () => false) {}

  private entries: Array<Entry<A>> = []
  // Made when a fiber first waits, so the many changes nobody waits for allocate nothing.
  private wake: Deferred.Deferred<void> | undefined = undefined
  private end: { readonly at: number; readonly error: Option.Option<E> } | undefined = undefined
  private discarded = false
  /** Total `size` of the queued entries (bytes for a link). */
  size = 0

  /** Number of queued entries. */
  get count(): number {
    return this.entries.length
  }

  /** Arrival time of the last entry (0 when empty). */
  get lastAt(): number {
    return this.entries.at(-1)?.at ?? 0
  }

  /** Whether the reader went away (its entries are dropped and pushes are ignored). */
  get isDiscarded(): boolean {
    return this.discarded
  }

  /** Whether an end marker was set. */
  get isFinished(): boolean {
    return this.end !== undefined
  }

  /** Adds an entry arriving at `at`, after every entry arriving at or before that time. */
  push(value: A, size: number, at: number): void {
    if (this.discarded || this.end !== undefined) return
    let index = this.entries.length
    while (index > 0 && this.entries[index - 1]!.at > at) index--
    this.entries.splice(index, 0, { value, size, at })
    this.size += size
    this.notify()
  }

  /** Ends the queue after its entries, at `at` at the earliest; with an error, the reader fails. The first call wins. */
  finish(at: number, error: Option.Option<E>): void {
    if (this.end !== undefined) return
    this.end = { at, error }
    this.notify()
  }

  /** Drops everything: the reader is gone. */
  discard(): void {
    this.discarded = true
    this.entries = []
    this.size = 0
    this.notify()
  }

  /** Wakes every waiting fiber. */
  notify(): void {
    const woken = this.wake
    this.wake = undefined
    if (woken !== undefined) Deferred.unsafeDone(woken, Effect.void)
  }

  /** The signal the next change completes. */
  private signal(): Deferred.Deferred<void> {
    return (this.wake ??= Deferred.unsafeMake<void>(FiberId.none))
  }

  /** Waits until `ready()` holds, re-checking on every change of this queue. */
  waitUntil(ready: () => boolean): Effect.Effect<void> {
    // Check and wait in one synchronous step, so no change can slip in between.
    const loop: Effect.Effect<void> = Effect.suspend(() =>
      ready() ? Effect.void : Effect.zipRight(Deferred.await(this.signal()), loop)
    )
    return loop
  }

  /**
   * The next entry once it has arrived; fails with `None` at the end (or once discarded) and
   * with `Some(error)` at an end marked with one.
   */
  readonly take: Effect.Effect<A, Option.Option<E>> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    // Checks and waits happen in this one synchronous step, so no change can slip in between.
    const wait = () => Effect.zipRight(Deferred.await(this.signal()), this.take)
    // Whole milliseconds: a sub-millisecond sleep can round to no time at all and spin.
    const retryAt = (due: number) =>
      Effect.zipRight(Effect.raceFirst(Effect.sleep(Math.ceil(due - now)), Deferred.await(this.signal())), this.take)
    if (this.discarded) return Effect.fail(Option.none())
    if (this.held()) return wait()
    const head = this.entries[0]
    if (head !== undefined) {
      if (head.at > now) return retryAt(head.at)
      this.entries.shift()
      this.size -= head.size
      this.notify()
      return Effect.succeed(head.value)
    }
    const end = this.end
    if (end === undefined) return wait()
    return end.at > now ? retryAt(end.at) : Effect.fail(end.error)
  })
}
