/**
 * A bounded LRU of open file handles, shared by concurrent fibers. A handle evicted while in use
 * is closed by its last user, so the bound is exceeded at most by the operations in flight.
 */
import { Effect, type Scope } from "effect"

/** A cache of handles keyed by path; a read-only handle is replaced when a writer needs the file. */
export interface HandleCache<H, E> {
  /** Runs `f` with an open handle for `key` (writable if asked), opening it if needed. */
  readonly use: <A, E2>(key: string, writable: boolean, f: (handle: H) => Effect.Effect<A, E2>) => Effect.Effect<A, E | E2>
  /** Whether a handle for `key` that serves `writable` is open now. */
  readonly has: (key: string, writable: boolean) => boolean
}

const serves = (entry: Entry<unknown>, writable: boolean) => entry.writable || !writable

interface Entry<H> {
  readonly handle: H
  readonly writable: boolean
  users: number
  retired: boolean
}

/** A cache of at most `capacity` idle handles, all closed when the scope closes. */
export const make = <H, E>(options: {
  readonly capacity: number
  readonly open: (key: string, writable: boolean) => Effect.Effect<H, E>
  readonly close: (handle: H) => Effect.Effect<void>
}): Effect.Effect<HandleCache<H, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const capacity = Math.max(1, options.capacity)
    // Map iteration order is insertion order: the first entry is the least recently used.
    const entries = new Map<string, Entry<H>>()
    const lock = yield* Effect.makeSemaphore(1)

    const retire = (entry: Entry<H>): Effect.Effect<void> =>
      Effect.suspend(() => {
        entry.retired = true
        return entry.users === 0 ? options.close(entry.handle) : Effect.void
      })

    /** The open entry for `key` if it serves `writable`, marked in use and most recently used. */
    const takeCached = (key: string, writable: boolean): Entry<H> | undefined => {
      const cached = entries.get(key)
      if (cached === undefined || !serves(cached, writable)) return undefined
      entries.delete(key)
      entries.set(key, cached)
      cached.users++
      return cached
    }

    // Opening runs under the lock, so that two fibers needing one file open it once.
    const open = (key: string, writable: boolean): Effect.Effect<Entry<H>, E> =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const taken = takeCached(key, writable)
          if (taken !== undefined) return Effect.succeed(taken)
          const cached = entries.get(key)
          return Effect.flatMap(options.open(key, writable), (handle) => {
            const stale: Array<Entry<H>> = []
            if (cached !== undefined) stale.push(cached)
            entries.delete(key)
            const entry: Entry<H> = { handle, writable, users: 1, retired: false }
            entries.set(key, entry)
            for (const [oldKey, oldEntry] of entries) {
              if (entries.size <= capacity) break
              entries.delete(oldKey)
              stale.push(oldEntry)
            }
            return Effect.as(Effect.forEach(stale, retire, { discard: true }), entry)
          })
        })
      )

    const release = (entry: Entry<H>): Effect.Effect<void> =>
      Effect.suspend(() => {
        entry.users--
        return entry.retired && entry.users === 0 ? options.close(entry.handle) : Effect.void
      })

    yield* Effect.addFinalizer(() =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const all = [...entries.values()]
          entries.clear()
          return Effect.forEach(all, retire, { discard: true })
        })
      )
    )

    // A handle already open (every piece write but a file's first) is taken without the lock:
    // 20 fewer Effect steps per write.
    const acquire = (key: string, writable: boolean): Effect.Effect<Entry<H>, E> =>
      Effect.suspend(() => {
        const taken = takeCached(key, writable)
        return taken === undefined ? open(key, writable) : Effect.succeed(taken)
      })

    return {
      use: (key, writable, f) => Effect.acquireUseRelease(acquire(key, writable), (entry) => f(entry.handle), release),
      has: (key, writable) => {
        const cached = entries.get(key)
        return cached !== undefined && serves(cached, writable)
      }
    }
  })
