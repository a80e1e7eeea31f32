import { Announce, Announcer, InfoHash, type Network, PeerId } from "@bitfiber/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope, TestClock } from "effect"
import { fakeTrackers, type SeenAnnounce, unreachable } from "./fakes.js"

const infoHash = InfoHash.unsafeFromBytes(new Uint8Array(20).fill(1))
const peerId = PeerId.unsafeFromBytes(new Uint8Array(20).fill(2))
const PEER = { host: "127.0.0.1", port: 7001 }

const reply = (overrides: Partial<Announce.AnnounceResponse> = {}): Announce.AnnounceResponse => ({
  interval: 1800,
  peers: [PEER],
  ...overrides
})

/** Lets forked fibers run until `done` holds (bounded: the fibers only need a few turns). */
const settle = (done: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    for (let turn = 0; turn < 200; turn++) {
      if (yield* done) return
      yield* Effect.yieldNow()
    }
    throw new Error("fibers did not settle")
  })

/** Starts an Announcer against fake trackers in a scope the test closes. */
const start = (
  answer: (url: string, request: Announce.AnnounceRequest) => Effect.Effect<Announce.AnnounceResponse, Announce.TrackerError>,
  options: Partial<Announcer.Options> & Pick<Announcer.Options, "tiers">
) =>
  Effect.gen(function* () {
    const trackers = yield* fakeTrackers(answer)
    const found = yield* Ref.make<ReadonlyArray<ReadonlyArray<Network.Address>>>([])
    const left = yield* Ref.make(1000)
    const scope = yield* Scope.make()
    const announcer = yield* Announcer.make({
      infoHash,
      peerId,
      port: 6881,
      stats: Effect.map(Ref.get(left), (l) => ({ uploaded: 0, downloaded: 1000 - l, left: l })),
      onPeers: (peers) => Ref.update(found, (all) => [...all, peers]),
      ...options
    }).pipe(Effect.provide(trackers.layer), Scope.extend(scope))
    const seenCount = (n: number) => settle(Effect.map(trackers.seen, (seen) => seen.length >= n))
    return {
      announcer,
      seen: trackers.seen,
      found: Ref.get(found),
      left,
      seenCount,
      close: Scope.close(scope, Exit.void)
    }
  })

const events = (seen: ReadonlyArray<SeenAnnounce>) => seen.map((s) => s.event)

describe("Announcer", () => {
  it.effect("announces started, hands over the peers, and re-announces at the interval", () =>
    Effect.gen(function* () {
      const t = yield* start(() => Effect.succeed(reply()), { tiers: [["http://a/announce"]] })
      yield* t.seenCount(1)
      expect(events(yield* t.seen)).toEqual(["started"])
      expect(yield* t.found).toEqual([[PEER]])
      const [status] = yield* t.announcer.status
      expect(status).toMatchObject({ url: "http://a/announce", status: "ok", peers: 1, nextAnnounceAt: 1_800_000 })

      yield* TestClock.adjust("1799 seconds")
      expect((yield* t.seen).length).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* t.seenCount(2)
      expect(yield* t.seen).toMatchObject([{ event: "started" }, { event: "none", at: 1_800_000 }])
      yield* t.close
    }))

  it.effect("tries the next tracker of a tier and promotes the one that answered", () =>
    Effect.gen(function* () {
      let calls = 0
      const t = yield* start(
        // Whichever tracker the shuffle puts first is down the first time.
        (url) => (++calls === 1 ? unreachable(url) : Effect.succeed(reply())),
        { tiers: [["http://a/announce", "http://b/announce"]] }
      )
      yield* t.seenCount(2)
      const [first, second] = yield* t.seen
      expect(first!.url).not.toBe(second!.url)
      expect([first!.event, second!.event]).toEqual(["started", "started"])
      const statuses = yield* t.announcer.status
      expect(statuses.find((s) => s.url === first!.url)).toMatchObject({
        status: "error",
        lastError: "Unreachable: connection refused"
      })
      expect(statuses.find((s) => s.url === second!.url)).toMatchObject({ status: "ok" })

      yield* TestClock.adjust("1800 seconds")
      yield* t.seenCount(3)
      expect((yield* t.seen)[2]).toMatchObject({ url: second!.url, event: "none" })
      yield* t.close
    }))

  it.effect("reports every status change to onStatus as it happens, starting with all idle", () =>
    Effect.gen(function* () {
      const reported: Array<ReadonlyArray<Announcer.TrackerStatus>> = []
      let calls = 0
      const t = yield* start((url) => (++calls === 1 ? unreachable(url) : Effect.succeed(reply())), {
        tiers: [["http://a/announce", "http://b/announce"]],
        onStatus: (statuses) => Effect.sync(() => void reported.push(statuses))
      })
      expect(reported[0]!.map((s) => s.status)).toEqual(["idle", "idle"])
      yield* t.seenCount(2)
      yield* settle(Effect.sync(() => reported.at(-1)!.some((s) => s.nextAnnounceAt !== undefined)))
      // Every report is what `status` said right then: the last one is the current status.
      expect(reported.at(-1)).toEqual(yield* t.announcer.status)
      expect(reported.map((statuses) => statuses.map((s) => s.status).sort().join())).toEqual([
        "idle,idle",
        "error,idle",
        "error,ok",
        "error,ok"
      ])
      yield* t.close
    }))

  it.effect("runs tiers independently", () =>
    Effect.gen(function* () {
      const t = yield* start((url) => Effect.succeed(reply({ interval: url.includes("fast") ? 100 : 1000 })), {
        tiers: [["http://fast/announce"], ["http://slow/announce"]]
      })
      yield* t.seenCount(2)
      yield* TestClock.adjust("100 seconds")
      yield* t.seenCount(3)
      expect((yield* t.seen).map((s) => s.url)).toEqual(
        expect.arrayContaining(["http://fast/announce", "http://slow/announce"])
      )
      expect((yield* t.seen)[2]).toMatchObject({ url: "http://fast/announce", event: "none" })
      yield* t.close
    }))

  it.effect("backs off exponentially while every tracker fails, without failing", () =>
    Effect.gen(function* () {
      const t = yield* start(unreachable, { tiers: [["http://dead/announce"]] })
      yield* t.seenCount(1)
      yield* TestClock.adjust("15 seconds")
      yield* t.seenCount(2)
      yield* TestClock.adjust("30 seconds")
      yield* t.seenCount(3)
      yield* TestClock.adjust("60 seconds")
      yield* t.seenCount(4)
      expect((yield* t.seen).map((s) => s.at)).toEqual([0, 15_000, 45_000, 105_000])
      expect(events(yield* t.seen)).toEqual(["started", "started", "started", "started"])
      expect((yield* t.announcer.status)[0]).toMatchObject({ status: "error" })
      yield* t.close
    }))

  it.effect("re-announces early when peers are needed, but not before the min interval", () =>
    Effect.gen(function* () {
      const t = yield* start(() => Effect.succeed(reply({ minInterval: 60 })), { tiers: [["http://a/announce"]] })
      yield* t.seenCount(1)
      yield* TestClock.adjust("10 seconds")
      yield* t.announcer.needPeers
      yield* TestClock.adjust("49 seconds")
      expect((yield* t.seen).length).toBe(1)
      expect((yield* t.announcer.status)[0]!.nextAnnounceAt).toBe(60_000)
      yield* TestClock.adjust("1 second")
      yield* t.seenCount(2)
      expect((yield* t.seen)[1]).toMatchObject({ event: "none", at: 60_000 })
      yield* t.close
    }))

  it.effect("announces completed once, with the counters of a seeder", () =>
    Effect.gen(function* () {
      const t = yield* start(() => Effect.succeed(reply({ minInterval: 30 })), { tiers: [["http://a/announce"]] })
      yield* t.seenCount(1)
      yield* Ref.set(t.left, 0)
      yield* t.announcer.complete
      yield* t.announcer.complete
      yield* TestClock.adjust("30 seconds")
      yield* t.seenCount(2)
      yield* TestClock.adjust("1800 seconds")
      yield* t.seenCount(3)
      expect(yield* t.seen).toMatchObject([
        { event: "started", left: 1000 },
        { event: "completed", left: 0, at: 30_000 },
        { event: "none", left: 0 }
      ])
      yield* t.close
    }))

  it.effect("never re-announces faster than the minimum interval, whatever the tracker says", () =>
    Effect.gen(function* () {
      const t = yield* start(() => Effect.succeed(reply({ interval: 0 })), { tiers: [["http://a/announce"]] })
      yield* t.seenCount(1)
      yield* TestClock.adjust("29 seconds")
      expect((yield* t.seen).length).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* t.seenCount(2)
      yield* t.close
    }))

  it.effect("sends stopped to the tracker it is registered with when its scope closes", () =>
    Effect.gen(function* () {
      const t = yield* start((url) => (url.includes("dead") ? unreachable(url) : Effect.succeed(reply())), {
        tiers: [["http://a/announce"], ["http://dead/announce"]]
      })
      yield* t.seenCount(2)
      yield* t.close
      const seen = yield* t.seen
      expect(seen.filter((s) => s.event === "stopped")).toEqual([{ url: "http://a/announce", event: "stopped", left: 1000, at: 0 }])
    }))

  it.effect("gives up on stopped after the stop timeout", () =>
    Effect.gen(function* () {
      const t = yield* start(
        (_url, request) => (request.event === "stopped" ? Effect.never : Effect.succeed(reply())),
        { tiers: [["http://a/announce"]], stopTimeout: "5 seconds" }
      )
      yield* t.seenCount(1)
      const closing = yield* Effect.fork(t.close)
      yield* t.seenCount(2)
      yield* TestClock.adjust("4 seconds")
      expect(closing.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(events(yield* t.seen)).toEqual(["started", "stopped"])
    }))

  it.effect("echoes the tracker id and sends no stopped to a tracker that never answered", () =>
    Effect.gen(function* () {
      const ids: Array<string | undefined> = []
      const t = yield* start(
        (_url, request) => {
          ids.push(request.trackerId)
          return Effect.succeed(reply({ trackerId: "abc", peers: [] }))
        },
        { tiers: [["http://a/announce"]] }
      )
      yield* t.seenCount(1)
      yield* TestClock.adjust("1800 seconds")
      yield* t.seenCount(2)
      expect(ids).toEqual([undefined, "abc"])
      expect(yield* t.found).toEqual([])
      yield* t.close

      const dead = yield* start(unreachable, { tiers: [["http://dead/announce"]] })
      yield* dead.seenCount(1)
      yield* dead.close
      expect(events(yield* dead.seen)).toEqual(["started"])
    }))
})
