import { describe, expect, it } from "@effect/vitest"
import type { Torrent } from "@bitfiber/core"
import { Effect, Either, Stream, TestClock } from "effect"
import * as Engine from "../../packages/cli/src/Engine.js"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Progress from "../../packages/cli/src/ui/Progress.js"
import type * as StatusLine from "../../packages/cli/src/ui/StatusLine.js"

const sink = (isTTY: boolean) => {
  const writes: Array<string> = []
  const value: StatusLine.Sink = { write: (text) => void writes.push(text), isTTY, columns: isTTY ? 60 : undefined }
  return { writes, value }
}

describe("Format", () => {
  it("writes sizes in binary units with three significant digits", () => {
    expect([0, 1023, 1024, 1536, 262144, 1048576 * 12.34, 1024 ** 3].map(Format.bytes)).toEqual([
      "0 B",
      "1023 B",
      "1.00 KiB",
      "1.50 KiB",
      "256 KiB",
      "12.3 MiB",
      "1.00 GiB"
    ])
    expect(Format.rate(1536)).toBe("1.50 KiB/s")
  })

  it("writes durations with their two largest units, unknown ones as --", () => {
    expect([2.25, 59, 125, 3 * 3600 + 5 * 60, 2 * 86400 + 3600, Infinity, -1].map(Format.duration)).toEqual([
      "2.3s",
      "59s",
      "2m 05s",
      "3h 05m",
      "2d 01h",
      "--",
      "--"
    ])
  })

  it("rounds percentages down so 100% means done", () => {
    expect(Format.percent(0.9999)).toBe("99.9%")
    expect(Format.percent(1)).toBe("100.0%")
  })

  it("parses sizes as bytes or with binary suffixes, and rejects the rest", () => {
    expect(["2097152", "256K", "256KiB", "256kb", "1m", "1.5M", "4 MiB", "1G"].map((s) => Either.getOrThrow(Format.parseSize(s))))
      .toEqual([2097152, 262144, 262144, 262144, 1048576, 1572864, 4194304, 1073741824])
    for (const bad of ["", "abc", "1X", "-1", "0.5", "1.5ib", "256 KiBs"]) expect(Either.isLeft(Format.parseSize(bad))).toBe(true)
  })

  it("escapes control characters of untrusted names", () => {
    expect(Format.printable("evil\x1b[2Jname\n")).toBe("evil\\x1b[2Jname\\x0a")
    expect(Format.printable("ünïcode ok")).toBe("ünïcode ok")
  })
})

describe("Progress", () => {
  it.scoped("without a terminal prints a line per tenth, not per update", () =>
    Effect.gen(function*() {
      const { value, writes } = sink(false)
      const progress = yield* Progress.make({ label: "hashing", sink: value })
      for (let done = 1; done <= 100; done++) {
        yield* TestClock.adjust("100 millis")
        yield* progress.update(done * 1000, 100_000)
      }
      yield* progress.finish
      expect(writes.length).toBe(11)
      expect(writes.every((line) => line.endsWith("\n") && !line.includes("\r"))).toBe(true)
      expect(writes[0]).toBe("hashing 10.0%  9.77 KiB / 97.7 KiB  9.77 KiB/s  ETA 9.0s\n")
      expect(writes[10]).toBe("hashing: 97.7 KiB in 10s  (9.77 KiB/s)\n")
    }))

  it.scoped("without a terminal a task done within a second prints only its summary", () =>
    Effect.gen(function*() {
      const { value, writes } = sink(false)
      const progress = yield* Progress.make({ label: "hashing", sink: value })
      for (let done = 1; done <= 10; done++) {
        yield* TestClock.adjust("50 millis")
        yield* progress.update(done, 10)
      }
      yield* progress.finish
      expect(writes).toEqual(["hashing: 10 B in 0.5s  (20 B/s)\n"])
    }))

  it.scoped("on a terminal redraws one line at most every 100 ms, and erases it when done", () =>
    Effect.gen(function*() {
      const { value, writes } = sink(true)
      const progress = yield* Progress.make({ label: "hashing", sink: value })
      for (let done = 1; done <= 50; done++) {
        yield* TestClock.adjust("20 millis")
        yield* progress.update(done, 50)
      }
      expect(writes.length).toBe(10)
      expect(writes.every((line) => line.startsWith("\r") && line.endsWith("\x1b[K") && line.length <= 60 + 4)).toBe(true)
      expect(writes[writes.length - 1]).toContain("[████████████████████████] 100.0%")
      yield* progress.finish
      expect(writes.slice(-2)).toEqual(["\r\x1b[K", "hashing: 50 B in 1.0s  (50 B/s)\n"])
    }))

  it.effect("erases a half-drawn line when its scope closes (Ctrl-C)", () =>
    Effect.gen(function*() {
      const { value, writes } = sink(true)
      yield* Effect.scoped(
        Effect.gen(function*() {
          const progress = yield* Progress.make({ label: "hashing", sink: value })
          yield* TestClock.adjust("1 second")
          yield* progress.update(1, 2)
        })
      )
      expect(writes.length).toBe(2)
      expect(writes[1]).toBe("\r\x1b[K")
    }))
})

describe("Engine.watch", () => {
  const snapshot = (state: Torrent.State, verifiedPieces: number): Torrent.Progress => ({
    state,
    name: "t",
    infoHash: "00".repeat(20),
    pieceCount: 4,
    totalLength: 4 * 16_384,
    checkedPieces: 4,
    verifiedPieces,
    verifiedBytes: verifiedPieces * 16_384,
    downloaded: 0,
    uploaded: 0,
    downloadRate: 0,
    uploadRate: 0,
    peers: 0,
    seeds: 0,
    connecting: 0,
    candidates: 0,
    complete: verifiedPieces === 4,
    eta: undefined,
    error: undefined,
    trackers: []
  })

  it.effect("shows a change of state at once and other snapshots at most every 200 ms", () =>
    Effect.gen(function*() {
      const shown: Array<readonly [string, boolean]> = []
      const status: StatusLine.StatusLine = {
        live: false,
        show: (text, force = false) => Effect.sync(() => void shown.push([text.split(" ")[0]!, force])),
        done: () => Effect.void
      }
      // No time passes between the snapshots (TestClock): only the first and the changes of state show.
      const changes = Stream.make(snapshot("checking", 0), snapshot("downloading", 1), snapshot("downloading", 2), snapshot("seeding", 4))
      yield* Engine.watch({ changes }, status, false)
      expect(shown).toEqual([["checking", true], ["25.0%", true], ["seeding", true]])
      // Once 200 ms passed, a snapshot in the same state shows too, unforced.
      shown.length = 0
      const later = Stream.concat(Stream.make(snapshot("downloading", 1)), Stream.fromEffect(Effect.as(TestClock.adjust("200 millis"), snapshot("downloading", 2))))
      yield* Engine.watch({ changes: later }, status, false)
      expect(shown).toEqual([["25.0%", true], ["50.0%", false]])
    }))
})
