/**
 * A live status line on stderr. On a terminal it redraws one line in place (`\r`), at most ten
 * times a second; when stderr is a pipe or a file it prints an ordinary line now and then, so
 * logs stay readable and `--json` output on stdout stays clean.
 */
import { Clock, Effect, type Scope } from "effect"

/** Where status output goes: the process's stderr in the CLI, a buffer in tests. */
export interface Sink {
  readonly write: (text: string) => void
  readonly isTTY: boolean
  /** Terminal width, when known: a longer line would wrap and break the in-place redraw. */
  readonly columns: number | undefined
}

/** The process's stderr as a sink. */
export const stderr = (): Sink => ({
  write: (text) => void process.stderr.write(text),
  isTTY: process.stderr.isTTY === true,
  columns: process.stderr.isTTY === true ? process.stderr.columns : undefined
})

/** A line that shows the latest status of a long-running task. */
export interface StatusLine {
  /** Whether the line is redrawn in place (a terminal) rather than printed as log lines. */
  readonly live: boolean
  /** Shows `text` now if `force`, else only if enough time passed since the last output. */
  readonly show: (text: string, force?: boolean) => Effect.Effect<void>
  /** Ends the status line, leaving `text` (if any) as a permanent line. */
  readonly done: (text?: string) => Effect.Effect<void>
}

/** Minimum time between redraws on a terminal. */
export const LIVE_INTERVAL_MS = 100
/** Minimum time between plain lines when not on a terminal. */
export const PLAIN_INTERVAL_MS = 5_000

const ERASE_TO_END = "\x1b[K"

/** A status line on `sink`; closing the scope erases a half-drawn line (e.g. on Ctrl-C). */
export const make = (sink: Sink): Effect.Effect<StatusLine, never, Scope.Scope> =>
  Effect.flatMap(Clock.currentTimeMillis, (started) => {
    // Nothing shows before the first interval: a task that ends at once leaves no noise.
    let last = started
    let drawn = false
    const fit = (text: string) =>
      sink.columns !== undefined && sink.columns > 1 && text.length >= sink.columns ? text.slice(0, sink.columns - 1) : text
    const erase = Effect.sync(() => {
      if (drawn) sink.write(`\r${ERASE_TO_END}`)
      drawn = false
    })
    const show = (text: string, force = false) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (!force && now - last < (sink.isTTY ? LIVE_INTERVAL_MS : PLAIN_INTERVAL_MS)) return
        last = now
        if (sink.isTTY) {
          sink.write(`\r${fit(text)}${ERASE_TO_END}`)
          drawn = true
        } else {
          sink.write(`${text}\n`)
        }
      })
    const done = (text?: string) =>
      Effect.zipRight(erase, Effect.sync(() => (text === undefined ? undefined : sink.write(`${text}\n`))))
    return Effect.acquireRelease(Effect.succeed<StatusLine>({ live: sink.isTTY, show, done }), () => erase)
  })
