// The handle LRU is internal to NodeStorage; its in-use eviction cannot be forced through real files.
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as HandleCache from "../../packages/core/src/storage/internal/handleCache.js"

interface FakeHandle {
  readonly key: string
  readonly writable: boolean
  readonly id: number
}

/** A cache over fake handles that records every open and close. */
const makeCache = (capacity: number) =>
  Effect.gen(function* () {
    const log = { opened: [] as Array<string>, closed: [] as Array<string> }
    let ids = 0
    const name = (handle: FakeHandle) => `${handle.key}${handle.writable ? "+w" : ""}#${handle.id}`
    const cache = yield* HandleCache.make<FakeHandle, never>({
      capacity,
      open: (key, writable) =>
        Effect.sync(() => {
          const handle = { key, writable, id: ++ids }
          log.opened.push(name(handle))
          return handle
        }),
      close: (handle) => Effect.sync(() => void log.closed.push(name(handle)))
    })
    return { cache, log }
  })

const touch = (cache: HandleCache.HandleCache<FakeHandle, never>, key: string, writable = false) =>
  cache.use(key, writable, (handle) => Effect.succeed(handle.id))

describe("HandleCache", () => {
  it.scoped("closes the least recently used handle beyond capacity", () =>
    Effect.gen(function* () {
      const { cache, log } = yield* makeCache(2)
      yield* touch(cache, "a")
      yield* touch(cache, "b")
      yield* touch(cache, "a")
      yield* touch(cache, "c")
      expect(log.opened).toEqual(["a#1", "b#2", "c#3"])
      expect(log.closed).toEqual(["b#2"])
    }))

  it.scoped("replaces a read-only handle when a writer needs the file", () =>
    Effect.gen(function* () {
      const { cache, log } = yield* makeCache(4)
      yield* touch(cache, "a")
      yield* touch(cache, "a", true)
      yield* touch(cache, "a")
      expect(log.opened).toEqual(["a#1", "a+w#2"])
      expect(log.closed).toEqual(["a#1"])
    }))

  it.effect("closes a handle evicted while in use only when its user is done", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { cache, log } = yield* Scope.extend(makeCache(1), scope)
      const inUse = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const user = yield* Effect.fork(cache.use("a", false, () => Effect.zipRight(Deferred.succeed(inUse, undefined), Deferred.await(done))))
      yield* Deferred.await(inUse)
      yield* touch(cache, "b")
      expect(log.closed).toEqual([])
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(user)
      expect(log.closed).toEqual(["a#1"])
      yield* Scope.close(scope, Exit.void)
      expect(log.closed).toEqual(["a#1", "b#2"])
    }))

  it.effect("opens a file once for concurrent users and closes everything with the scope", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { cache, log } = yield* Scope.extend(makeCache(8), scope)
      const ids = yield* Effect.forEach(Array.from({ length: 6 }), () => touch(cache, "a"), { concurrency: "unbounded" })
      yield* touch(cache, "b", true)
      expect(new Set(ids)).toEqual(new Set([1]))
      expect(log.closed).toEqual([])
      yield* Scope.close(scope, Exit.void)
      expect(log.closed.sort()).toEqual(["a#1", "b+w#2"])
    }))
})
