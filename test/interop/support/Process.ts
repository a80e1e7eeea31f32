/** Child processes for interop tests: captured logs, bounded waits, and no leaks. */
import { execFile, spawn as nodeSpawn } from "node:child_process"
import { constants } from "node:os"
import { readFileSync } from "node:fs"
import { Clock, Data, Duration, Effect, Exit, type Scope } from "effect"
import { canConnect } from "./Ports.js"

/** Why a child process did not do what a test waited for; the message carries its last log lines. */
export class ProcessError extends Data.TaggedError("ProcessError")<{
  /** Unexpected: the program reported a state the test cannot go on from (e.g. a seeder's data failed verification). */
  readonly reason: "Spawn" | "Exited" | "Timeout" | "ExitCode" | "Unexpected"
  /** The program's short name, e.g. "libtorrent-seeder". */
  readonly process: string
  readonly detail: string
  readonly log: string
}> {
  override get message(): string {
    return `${this.process}: ${this.detail} (${this.reason})\n--- last lines of ${this.process} ---\n${this.log}`
  }
}

/** A running program owned by a test's Scope; all waits are bounded and use real time. */
export interface Child {
  readonly name: string
  /** Pid of the process group leader (a `timeout` wrapper that bounds the program's lifetime). */
  readonly pid: number
  /** Exit code once exited (128 + signal number when killed), `undefined` while running. */
  readonly exitCode: () => number | undefined
  /** The captured stdout and stderr lines (the first and most recent ones if it talked a lot, or only the last `lines`). */
  readonly log: (lines?: number) => string
  /** Waits for a line matching `pattern`, including lines printed before the call. */
  readonly waitForLine: (pattern: RegExp, timeout?: Duration.DurationInput) => Effect.Effect<RegExpMatchArray, ProcessError>
  /** Waits until 127.0.0.1:`port` accepts TCP connections; fails early if the process exits. */
  readonly waitForPort: (port: number, timeout?: Duration.DurationInput) => Effect.Effect<void, ProcessError>
  /** Waits for the exit and returns its code (any code). */
  readonly waitForExit: (timeout?: Duration.DurationInput) => Effect.Effect<number, ProcessError>
  /** Waits for the exit and fails unless the code is 0. */
  readonly waitForSuccess: (timeout?: Duration.DurationInput) => Effect.Effect<void, ProcessError>
  /** Writes one line to the program's stdin. */
  readonly send: (line: string) => Effect.Effect<void>
  /** Sends a signal to the program itself (not to its lifetime wrapper). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** An error about this program, carrying its last log lines. */
  readonly failure: (reason: ProcessError["reason"], detail: string) => ProcessError
  /** SIGTERM to the whole process group, SIGKILL after 3 s; also done by the Scope's release. */
  readonly stop: Effect.Effect<void>
}

/** How to start a program and when it counts as ready. */
export interface SpawnOptions {
  /** Short name used in logs and errors, e.g. "libtorrent-seeder". */
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
  /** Hard upper bound on the program's life, enforced by coreutils `timeout` even if the test runner dies. */
  readonly lifetime?: Duration.DurationInput
  /** Spawn succeeds only once a line matches this. */
  readonly ready?: RegExp
  /** Spawn succeeds only once this TCP port on 127.0.0.1 accepts connections. */
  readonly readyPort?: number
  readonly readyTimeout?: Duration.DurationInput
}

/** Waits in the harness use the real clock, even inside `it.effect`/`it.scoped` (which install TestClock). */
export const live = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.withClock(self, liveClock)
const liveClock = Clock.make()

const defaultLifetime = Duration.minutes(5)
const defaultReadyTimeout = Duration.seconds(20)
const headLines = 300
const tailLines = 3000
const maxLineLength = 4000

// Process groups still alive: killed when the test worker exits, whatever the reason.
const liveGroups = new Set<number>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const pgid of liveGroups) killGroup(pgid, "SIGKILL")
  })
}

const killGroup = (pgid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Starts `options.command` in its own process group; the Scope's release kills the group. */
export const spawn = (options: SpawnOptions): Effect.Effect<Child, ProcessError, Scope.Scope> =>
  live(
    Effect.acquireRelease(Effect.suspend(() => start(options)), (child, exit) =>
      Effect.suspend(() => {
        if (Exit.isFailure(exit)) {
          console.error(`--- log of ${child.name} (pid ${child.pid}, exit ${child.exitCode() ?? "running"}) ---\n${child.log(200)}`)
        }
        return child.stop
      })
    ).pipe(
      Effect.tap((child) =>
        Effect.all([
          options.ready === undefined ? Effect.void : child.waitForLine(options.ready, options.readyTimeout ?? defaultReadyTimeout),
          options.readyPort === undefined ? Effect.void : child.waitForPort(options.readyPort, options.readyTimeout ?? defaultReadyTimeout)
        ])
      )
    )
  )

const start = (options: SpawnOptions): Effect.Effect<Child, ProcessError> => {
  const lifetime = Math.max(1, Math.ceil(Duration.toSeconds(options.lifetime ?? defaultLifetime)))
  const proc = nodeSpawn("timeout", ["--kill-after=5", String(lifetime), options.command, ...options.args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    detached: true,
    stdio: ["pipe", "pipe", "pipe"]
  })
  const pid = proc.pid
  if (pid === undefined) {
    proc.on("error", () => {}) // reported below, not as an uncaught 'error' event
    return Effect.fail(new ProcessError({ reason: "Spawn", process: options.name, detail: `could not start ${options.command}`, log: "" }))
  }
  installExitHook()
  liveGroups.add(pid)

  const head: Array<string> = []
  const tail: Array<string> = []
  let omitted = 0
  let exitCode: number | undefined
  let closed = false
  const listeners = new Set<() => void>()
  const notify = () => listeners.forEach((listener) => listener())
  let latestLine = ""

  const push = (line: string) => {
    if (line.length === 0) return
    latestLine = line.length > maxLineLength ? `${line.slice(0, maxLineLength)}…` : line
    if (head.length < headLines) head.push(latestLine)
    else {
      tail.push(latestLine)
      if (tail.length > tailLines) {
        tail.splice(0, tail.length - tailLines)
        omitted++
      }
    }
    notify()
  }
  // Lines end in \n, or \r for progress displays (transmission-cli, aria2c).
  const splitter = () => {
    let pending = ""
    return {
      data: (chunk: Buffer) => {
        const parts = (pending + chunk.toString("utf8")).split(/\r\n|\r|\n/)
        pending = parts.pop() ?? ""
        parts.forEach(push)
      },
      end: () => {
        push(pending)
        pending = ""
      }
    }
  }
  const out = splitter()
  const err = splitter()
  proc.stdout.on("data", out.data)
  proc.stderr.on("data", err.data)
  proc.stdin.on("error", () => {}) // EPIPE once the program has exited
  const markClosed = () => {
    if (closed) return
    closed = true
    out.end()
    err.end()
    liveGroups.delete(pid)
    // Sweep anything the program left in its group (scripts it ran, ...).
    killGroup(pid, "SIGKILL")
    notify()
  }
  proc.on("exit", (code, signal) => {
    exitCode = code ?? 128 + (signal === null ? 0 : constants.signals[signal])
    // Output may still be in flight; "close" follows unless a grandchild holds the pipes open.
    setTimeout(markClosed, 500).unref()
  })
  proc.on("close", markClosed)
  proc.on("error", (cause) => {
    push(`[harness] spawn error: ${String(cause)}`)
    exitCode ??= 127
    markClosed()
  })

  const log = (lines?: number) => {
    const all = [...head, ...(omitted > 0 ? [`[… ${omitted} lines omitted …]`] : []), ...tail]
    return (lines === undefined ? all : all.slice(-lines)).join("\n")
  }
  const error = (reason: ProcessError["reason"], detail: string) =>
    new ProcessError({ reason, process: options.name, detail, log: log(60) })

  /** Resumes when `check` returns a value, or fails when the program has closed. */
  const until = <A>(what: string, check: () => A | undefined, timeout: Duration.DurationInput) =>
    live(
      Effect.async<A, ProcessError>((resume) => {
        const listener = () => {
          const found = check()
          if (found !== undefined) resume(Effect.succeed(found))
          else if (closed) resume(Effect.fail(error("Exited", `exited with code ${exitCode} before ${what}`)))
          else return
          listeners.delete(listener)
        }
        listeners.add(listener)
        listener()
        return Effect.sync(() => listeners.delete(listener))
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => error("Timeout", `no ${what} within ${Duration.format(Duration.decode(timeout))}`)
        })
      )
    )

  const waitForLine = (pattern: RegExp, timeout: Duration.DurationInput = defaultReadyTimeout) => {
    let scanned = false
    return until(`line matching ${pattern}`, () => {
      // The first check scans the history; later ones look only at the newest line.
      const candidates = scanned ? [latestLine] : [...head, ...tail]
      scanned = true
      for (const line of candidates) {
        const match = line.match(pattern)
        if (match !== null) return match
      }
      return undefined
    }, timeout)
  }

  const waitForExit = (timeout: Duration.DurationInput = defaultReadyTimeout) =>
    until("exit", () => (closed ? exitCode : undefined), timeout)

  const waitForPort = (port: number, timeout: Duration.DurationInput = defaultReadyTimeout) =>
    live(
      Effect.gen(function*() {
        while (!(yield* canConnect(port))) {
          if (closed) return yield* error("Exited", `exited with code ${exitCode} before port ${port} opened`)
          yield* Effect.sleep("100 millis")
        }
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => error("Timeout", `port ${port} not open within ${Duration.format(Duration.decode(timeout))}`)
        })
      )
    )

  const stop = live(
    Effect.gen(function*() {
      if (closed) return
      killGroup(pid, "SIGTERM")
      yield* until("exit", () => (closed ? true : undefined), "3 seconds").pipe(Effect.ignore)
      if (!closed) {
        killGroup(pid, "SIGKILL")
        yield* until("exit", () => (closed ? true : undefined), "3 seconds").pipe(Effect.ignore)
      }
    })
  )

  const child: Child = {
    name: options.name,
    pid,
    exitCode: () => (closed ? exitCode : undefined),
    log,
    waitForLine,
    waitForPort,
    waitForExit,
    waitForSuccess: (timeout) =>
      Effect.flatMap(waitForExit(timeout), (code) =>
        code === 0 ? Effect.void : Effect.fail(error("ExitCode", `exited with code ${code}`))),
    send: (line) => Effect.sync(() => void proc.stdin.write(`${line}\n`)),
    signal: (signal) =>
      Effect.sync(() => {
        // The program is the only child of the `timeout` wrapper.
        const programPid = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0])
        if (programPid > 0) process.kill(programPid, signal)
      }).pipe(Effect.catchAllDefect(() => Effect.void)),
    failure: error,
    stop
  }
  return Effect.succeed(child)
}

/** Runs a short command to completion (bounded); fails with its output unless it exits 0. */
export const run = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<{ readonly stdout: string; readonly stderr: string }, ProcessError> =>
  Effect.async((resume) => {
    const proc = execFile(command, args, {
      cwd: options.cwd,
      timeout: Duration.toMillis(options.timeout ?? Duration.minutes(2)),
      killSignal: "SIGKILL",
      maxBuffer: 64 * 1024 * 1024
    }, (cause, stdout, stderr) => {
      if (cause === null) return resume(Effect.succeed({ stdout, stderr }))
      const log = `${stdout}${stderr}`.split(/\r\n|\r|\n/).slice(-60).join("\n")
      const how = cause.killed ? "was killed (timeout)" : `exited with code ${cause.code}`
      const detail = `\`${[command, ...args].join(" ")}\` ${how}`
      resume(Effect.fail(new ProcessError({ reason: cause.killed ? "Timeout" : "ExitCode", process: name, detail, log })))
    })
    return Effect.sync(() => proc.kill("SIGKILL"))
  })
