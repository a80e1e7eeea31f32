/**
 * The process exit codes of `bitfiber`, in one place so scripts can rely on them.
 *
 * | code | meaning |
 * |-----:|---------|
 * | 0    | success |
 * | 1    | unexpected internal error (a bug: please report it) |
 * | 2    | usage error: unknown command, bad flag or argument |
 * | 3    | invalid input: the torrent file or magnet link cannot be parsed |
 * | 4    | file system / I/O error: cannot read input, cannot write output, disk full |
 * | 5    | network error: no peers, trackers unreachable |
 * | 130  | interrupted (Ctrl-C / SIGINT, SIGTERM) |
 */

/** The command did what was asked. */
export const Ok = 0
/** A defect: something the program did not expect (a bug). */
export const Internal = 1
/** The command line was wrong: unknown command, bad flag or argument value. */
export const Usage = 2
/** The input (torrent file, magnet link) is not valid. */
export const InvalidInput = 3
/** Reading or writing a file failed. */
export const FileSystem = 4
/** The network failed us: no peers, trackers unreachable. */
export const Network = 5
/** The user interrupted the command (128 + SIGINT, the shell convention). */
export const Interrupted = 130

/** One of the documented exit codes. */
export type ExitCode =
  | typeof Ok
  | typeof Internal
  | typeof Usage
  | typeof InvalidInput
  | typeof FileSystem
  | typeof Network
  | typeof Interrupted
