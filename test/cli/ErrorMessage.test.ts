import { Create, Magnet, Metainfo } from "@bitfiber/core"
import { Error as PlatformError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Either, Exit, FiberId } from "effect"
import { CommandError } from "../../packages/cli/src/CommandError.js"
import * as ErrorMessage from "../../packages/cli/src/ErrorMessage.js"
import * as ExitCode from "../../packages/cli/src/ExitCode.js"
import { InputError } from "../../packages/cli/src/Input.js"

const report = (error: unknown) => ErrorMessage.fromExit(Exit.fail(error))

const systemError = (reason: PlatformError.SystemErrorReason, code: string) =>
  new PlatformError.SystemError({
    reason,
    module: "FileSystem",
    method: "writeFile",
    pathOrDescriptor: "/data/out.torrent",
    cause: Object.assign(new Error(code), { code })
  })

describe("ErrorMessage", () => {
  it("reports success with no line and exit code 0", () => {
    expect(ErrorMessage.fromExit(Exit.void)).toEqual({ line: undefined, exitCode: ExitCode.Ok })
  })

  it("words every failure as one line: bitfiber: <problem> — <remedy>", () => {
    const failures: Array<unknown> = [
      systemError("NotFound", "ENOENT"),
      new InputError({ input: "x.torrent", cause: Either.getOrThrow(Either.flip(Metainfo.parse(new TextEncoder().encode("<html>")))) }),
      Either.getOrThrow(Either.flip(Magnet.parse("magnet:?dn=x"))),
      new Create.CreateError({ reason: "Empty", message: "/d contains no files" }),
      new Error("boom")
    ]
    for (const failure of failures) {
      const { line } = report(failure)
      expect(line).toMatch(/^bitfiber: [^\n]+ — [^\n]+$/)
    }
  })

  // @effect/cli's ValidationError (exit 2) is covered by the child-process tests in cli.test.ts.
  it("maps each kind of failure to its documented exit code", () => {
    const code = (error: unknown) => report(error).exitCode
    expect(code(new Create.CreateError({ reason: "InvalidOption", message: "piece length 3 is not a power of two" })))
      .toBe(ExitCode.Usage)
    expect(code(Either.getOrThrow(Either.flip(Metainfo.parse(Uint8Array.of(0x64, 0x65)))))).toBe(ExitCode.InvalidInput)
    expect(code(Either.getOrThrow(Either.flip(Magnet.parse("http://example.com"))))).toBe(ExitCode.InvalidInput)
    expect(code(new Create.CreateError({ reason: "UnsupportedFile", message: "/dev/null is not a file or a directory" })))
      .toBe(ExitCode.InvalidInput)
    expect(code(systemError("PermissionDenied", "EACCES"))).toBe(ExitCode.FileSystem)
    expect(code(new Create.CreateError({ reason: "Io", message: "cannot read /d/a" }))).toBe(ExitCode.FileSystem)
    expect(code(new CommandError({ problem: "no peers", remedy: "try later", exitCode: ExitCode.Network }))).toBe(ExitCode.Network)
    expect(code({ _tag: "SomethingNew" })).toBe(ExitCode.Internal)
  })

  it("names the file and says what to do when a torrent file is not bencode", () => {
    const cause = Either.getOrThrow(Either.flip(Metainfo.parse(new TextEncoder().encode("<html>"))))
    expect(report(new InputError({ input: "/x/y.torrent", cause })).line).toBe(
      "bitfiber: not a torrent file: /x/y.torrent: not bencode: unexpected byte 0x3c at byte 0 — " +
        "check the file is a .torrent (not an HTML page or the payload itself) or pass a magnet link"
    )
  })

  it("tells a full disk from a missing file", () => {
    expect(report(systemError("Unknown", "ENOSPC")).line).toBe(
      "bitfiber: no space left on the device: /data/out.torrent — free some space or write somewhere else"
    )
    expect(report(systemError("NotFound", "ENOENT")).line).toBe("bitfiber: no such file or directory: /data/out.torrent — check the path")
  })

  it("reports Ctrl-C as interrupted with exit code 130", () => {
    expect(ErrorMessage.fromExit(Exit.failCause(Cause.interrupt(FiberId.none)))).toEqual({
      line: "bitfiber: interrupted",
      exitCode: ExitCode.Interrupted
    })
  })

  it("reports a defect as an internal error without a stack trace unless debugging", () => {
    const exit = Exit.die(new Error("invariant broken"))
    const { exitCode, line } = ErrorMessage.fromExit(exit)
    expect(exitCode).toBe(ExitCode.Internal)
    expect(line?.split("\n")).toHaveLength(1)
    expect(line).toContain("internal error: invariant broken — this is a bug")
    expect(ErrorMessage.fromExit(exit, { debug: true }).line).toMatch(/invariant broken[\s\S]*\n\s+at /)
  })
})
