/**
 * What a client process costs, measured per process so that every client in a run is billed for
 * its own CPU and memory only:
 *
 * - over a whole life, from GNU time (`/usr/bin/time -f '%e %U %S %M' -o FILE`), which reports the
 *   process's own rusage when it exits: exact, threads included, nothing sampled;
 * - over a phase of a long-running process (a seeder while it serves one download), from
 *   /proc/PID/stat (utime + stime, all threads) and /proc/PID/status (VmRSS, VmHWM) read at the
 *   phase's start and end.
 *
 * Every program runs as `timeout -> time -> program` (the harness's lifetime bound, then GNU time),
 * so the program's own pid is the grandchild of the harness's `Child.pid`.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Duration, Effect, Option, type Scope } from "effect"
import { tempDir } from "../../test/interop/support/Payload.js"
import { type Child, live, type ProcessError, spawn, type SpawnOptions } from "../../test/interop/support/Process.js"

/** Resource use of one process over its whole life. */
export interface Usage {
  readonly wallSeconds: number
  readonly userSeconds: number
  readonly systemSeconds: number
  readonly cpuSeconds: number
  readonly peakRssMiB: number
}

/** A running process as /proc shows it at one moment. */
export interface Sample {
  /** `Date.now()` when read. */
  readonly at: number
  /** User + system CPU seconds so far, all threads. */
  readonly cpuSeconds: number
  readonly rssMiB: number
  /** Peak resident set so far (VmHWM). */
  readonly peakRssMiB: number
}

/** CPU seconds and peak memory of a process between two samples. */
export interface PhaseUsage {
  readonly seconds: number
  readonly cpuSeconds: number
  readonly peakRssMiB: number
}

/** A program started under GNU time. */
export interface Timed {
  readonly child: Child
  /** `Date.now()` at spawn. */
  readonly startedAt: number
  /** The program's own pid (not its wrappers'). */
  readonly pid: Effect.Effect<number, ProcessError>
  /** Reads the program's /proc figures now. */
  readonly sample: Effect.Effect<Sample, ProcessError>
  /** Waits for the program to exit by itself and returns its life's usage. */
  readonly usage: (timeout: Duration.DurationInput) => Effect.Effect<Usage, ProcessError>
  /** Sends the program SIGTERM (only the program: GNU time must survive to report) and returns its life's usage. */
  readonly terminate: Effect.Effect<Usage, ProcessError>
}

/** Where GNU time is; Debian's package `time`. */
export const gnuTime = "/usr/bin/time"

/** Fails with what to install when GNU time is missing. */
export const requireGnuTime = (): void => {
  if (!existsSync(gnuTime)) throw new Error(`${gnuTime} is missing: apt-get install -y time`)
}

const ticksPerSecond = 100 // USER_HZ: fixed at 100 on Linux for /proc/PID/stat, whatever the kernel's HZ

const firstChild = (pid: number): Option.Option<number> => {
  try {
    const first = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0])
    return first > 0 ? Option.some(first) : Option.none()
  } catch {
    return Option.none()
  }
}

/** Reads /proc/`pid`; `None` once the process is gone. */
export const sample = (pid: number): Option.Option<Sample> => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    // Fields after the command name, which may itself hold spaces and parentheses: state is field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? 0)
    return Option.some({
      at: Date.now(),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond,
      rssMiB: kib("VmRSS") / 1024,
      peakRssMiB: kib("VmHWM") / 1024
    })
  } catch {
    return Option.none()
  }
}

/** The usage between two samples of one process (peak: the high-water mark at the end). */
export const between = (start: Sample, end: Sample): PhaseUsage => ({
  seconds: (end.at - start.at) / 1000,
  cpuSeconds: end.cpuSeconds - start.cpuSeconds,
  peakRssMiB: end.peakRssMiB
})

const parseTimeOutput = (text: string): Option.Option<Usage> => {
  // A program killed by a signal gets a "Command terminated by signal N" line before the figures.
  const last = text.trim().split("\n").at(-1) ?? ""
  const numbers = last.split(" ").map(Number)
  if (numbers.length !== 4 || numbers.some((n) => !Number.isFinite(n))) return Option.none()
  const [wall, user, system, rssKiB] = numbers as [number, number, number, number]
  return Option.some({ wallSeconds: wall, userSeconds: user, systemSeconds: system, cpuSeconds: user + system, peakRssMiB: rssKiB / 1024 })
}

/** Starts `options.command` under GNU time, in the harness's process group and lifetime bound. */
export const spawnTimed = (options: SpawnOptions): Effect.Effect<Timed, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir("usage")
    const report = join(dir, "time.txt")
    const startedAt = Date.now()
    const child = yield* spawn({
      ...options,
      command: gnuTime,
      args: ["-f", "%e %U %S %M", "-o", report, options.command, ...options.args]
    })
    // timeout -> time -> program; right after spawn the forks may not have happened yet.
    const pid = live(
      Effect.gen(function*() {
        for (;;) {
          const program = Option.flatMap(firstChild(child.pid), firstChild)
          if (Option.isSome(program)) return program.value
          if (child.exitCode() !== undefined) return yield* child.failure("Exited", "exited before its pid could be read")
          yield* Effect.sleep("20 millis")
        }
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => child.failure("Timeout", "no program pid under GNU time") }))
    ).pipe(Effect.cached)
    const programPid = yield* pid
    const readUsage = Effect.suspend(() =>
      Option.match(parseTimeOutput(existsSync(report) ? readFileSync(report, "utf8") : ""), {
        onNone: () => Effect.fail(child.failure("Unexpected", `no usage figures from GNU time in ${report}`)),
        onSome: Effect.succeed
      })
    )
    return {
      child,
      startedAt,
      pid: programPid,
      sample: Effect.flatMap(programPid, (p) =>
        Option.match(sample(p), {
          onNone: () => Effect.fail(child.failure("Exited", `process ${p} is gone`)),
          onSome: Effect.succeed
        })),
      usage: (timeout) => Effect.zipRight(child.waitForExit(timeout), readUsage),
      terminate: Effect.gen(function*() {
        const p = yield* programPid
        yield* Effect.sync(() => {
          try {
            process.kill(p, "SIGTERM")
          } catch {
            // Already gone: GNU time has its figures.
          }
        })
        yield* child.waitForExit(Duration.seconds(30))
        return yield* readUsage
      })
    }
  })
