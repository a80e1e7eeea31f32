/**
 * A progress bar for a task of known size (hashing, downloading): done / total, rate over the
 * last seconds, and ETA, drawn on a `StatusLine`.
 */
import { Clock, Effect, type Scope } from "effect"
import * as Format from "./Format.js"
import * as StatusLine from "./StatusLine.js"

/** A running progress display. */
export interface Progress {
  /** Reports that `done` of `total` bytes are complete (the total may be learnt late, or change). */
  readonly update: (done: number, total: number) => Effect.Effect<void>
  /** Replaces the bar with a one-line summary (size, time, average rate). */
  readonly finish: Effect.Effect<void>
}

/** How far back the displayed rate looks: long enough to be steady, short enough to follow changes. */
export const RATE_WINDOW_MS = 5_000
const BAR_WIDTH = 24
const QUIET_MS = 1_000

/** Rate samples are kept at most this often, so a caller reporting every block costs no memory. */
const SAMPLE_INTERVAL_MS = 100

/** The bar, e.g. `[██████░░░░]`. */
export const bar = (fraction: number, width: number): string => {
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width)
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`
}

/** The status text for `done` of `total` at `bytesPerSecond`; `live` adds the bar. */
export const render = (label: string, done: number, total: number, bytesPerSecond: number | undefined, live: boolean): string => {
  const fraction = total === 0 ? 1 : done / total
  const speed = bytesPerSecond === undefined ? "" : `  ${Format.rate(bytesPerSecond)}`
  const eta = bytesPerSecond === undefined || bytesPerSecond <= 0 || done >= total
    ? ""
    : `  ETA ${Format.duration((total - done) / bytesPerSecond)}`
  const head = live ? `${label} ${bar(fraction, BAR_WIDTH)}` : label
  return `${head} ${Format.percent(fraction)}  ${Format.bytes(done)} / ${Format.bytes(total)}${speed}${eta}`
}

/** A progress display labelled `label` (e.g. "hashing"). */
export const make = (options: {
  readonly label: string
  readonly sink?: StatusLine.Sink
}): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const line = yield* StatusLine.make(options.sink ?? StatusLine.stderr())
    const started = yield* Clock.currentTimeMillis
    // [time, done] pairs covering the last RATE_WINDOW_MS: the rate is measured from the oldest.
    const samples: Array<readonly [number, number]> = [[started, 0]]
    let decile = 0
    let done = 0
    const update = (value: number, total: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        done = value
        if (now - samples[samples.length - 1]![0] >= SAMPLE_INTERVAL_MS) samples.push([now, value])
        while (samples.length > 1 && now - samples[0]![0] > RATE_WINDOW_MS) samples.shift()
        const [since, before] = samples[0]!
        const bytesPerSecond = now > since ? ((value - before) * 1000) / (now - since) : undefined
        // Without a terminal, print at each new tenth so a log shows steady progress; a task
        // done within QUIET_MS leaves only the summary.
        const reached = total === 0 ? 10 : Math.floor((value / total) * 10)
        const force = !line.live && reached > decile && now - started >= QUIET_MS
        decile = Math.max(decile, reached)
        return line.show(render(options.label, value, total, bytesPerSecond, line.live), force)
      })
    const finish = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const seconds = (now - started) / 1000
      const average = seconds > 0 ? `  (${Format.rate(done / seconds)})` : ""
      return line.done(`${options.label}: ${Format.bytes(done)} in ${Format.duration(seconds)}${average}`)
    })
    return { update, finish }
  })
