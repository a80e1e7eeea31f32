/**
 * A failure a command detects itself (an output file in the way, a flag value it cannot use),
 * already worded for the user: what went wrong, what to do, and the exit code.
 */
import { Data } from "effect"
import type { ExitCode } from "./ExitCode.js"

/** A user-facing failure with its message and exit code decided where it was detected. */
export class CommandError extends Data.TaggedError("CommandError")<{
  /** What went wrong, e.g. `out.torrent already exists`. */
  readonly problem: string
  /** What the user can do about it, e.g. `pass --force to overwrite it`. */
  readonly remedy: string
  readonly exitCode: ExitCode
}> {}
