/**
 * The ticker of one running torrent: a `Tick` in its mailbox now and every second after.
 * A quiet torrent (no peer, nobody being dialed, rates at zero) ticks only when something is
 * due, and its ticker ends while nothing is: the next event starts it again. A thousand idle
 * torrents in a session then cost no timer, no fiber and no garbage between their events.
 */
import { Clock, Effect, Fiber, Queue, type Scope } from "effect"
import type { TorrentEvent } from "./TorrentEvent.js"

/** Time between two ticks while the torrent is not quiet. */
export const TICK_MILLIS = 1000

/** The ticker of one torrent. Only the supervisor's fiber and the ticker's own touch it. */
export interface Ticker {
  /** 0 while the torrent is not quiet; else the next time a tick is due (Infinity: none). Set at each tick. */
  quietUntil: number
  /** Ticks now and every second after, in place of the current ticker; the torrent is no longer quiet. */
  readonly start: Effect.Effect<void>
}

/** A ticker posting to `mailbox`, its fiber in `scope`; not started. */
export const make = (mailbox: Queue.Queue<TorrentEvent>, scope: Scope.Scope): Ticker => {
  let fiber: Fiber.RuntimeFiber<void> | undefined
  const ticker: Ticker = {
    quietUntil: 0,
    start: Effect.gen(function* () {
      ticker.quietUntil = 0
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      fiber = yield* Effect.forkIn(
        Effect.gen(function* () {
          for (;;) {
            yield* Queue.offer(mailbox, { _tag: "Tick" })
            yield* Effect.sleep(TICK_MILLIS)
            if (ticker.quietUntil === Infinity) {
              // Nothing is due: the next event starts a new ticker; this one is not kept.
              fiber = undefined
              return
            }
            const quietFor = ticker.quietUntil - (yield* Clock.currentTimeMillis)
            if (quietFor > 0) yield* Effect.sleep(quietFor)
          }
        }),
        scope
      )
    })
  }
  return ticker
}
