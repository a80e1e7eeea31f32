/**
 * SHA-1 of runs of whole pieces on worker threads, for jobs that hash a lot of data at once
 * (creating a torrent, the resume check): one thread hashes ~1.8 GB/s on this machine's SHA
 * extensions, and mktorrent hashes on every core. A run on a SharedArrayBuffer is shared with the
 * thread, not copied; only its digests come back. Each thread is a Node isolate of ~15 MiB, there
 * for the job only.
 */
import { Effect, type Scope } from "effect"
import { createHash } from "node:crypto"
import * as os from "node:os"
import { Worker } from "node:worker_threads"

/**
 * Bytes of a run, at least one piece. Per run: a read through the storage and the event loop (a
 * resume check reading piece by piece spent about as much of its time there as on the bytes), and
 * a message each way to a thread (runs of 1 MiB: 1 GiB created in 1.05 s against 0.8).
 */
const RUN_BYTES = 4 * 1024 * 1024
/** Less data than this is hashed on the calling thread: starting threads costs more than they save. */
const THREADS_FROM_BYTES = 64 * 1024 * 1024
const MAX_THREADS = 4

/** Threads to hash `bytes` on: one per core, up to 4, or none for small jobs. */
export const threadsFor = (bytes: number): number =>
  bytes < THREADS_FROM_BYTES ? 0 : Math.min(MAX_THREADS, os.availableParallelism())

/** Hashes runs of pieces. */
export interface HashPool {
  /** Threads it hashes on; 0: on the calling thread. */
  readonly threads: number
  /** The SHA-1 of each piece of `run` (pieces of `pieceLength` bytes, the last may be shorter), 20 bytes each. */
  readonly digests: (run: Uint8Array, pieceLength: number) => Effect.Effect<Uint8Array>
  /**
   * Buffers for a job's runs of whole pieces of `pieceLength` (~4 MiB each, at least one piece),
   * on shared memory: one per thread, one being read and one being collected.
   */
  readonly runBuffers: (pieceLength: number) => Array<Uint8Array>
}

const runBuffers = (threads: number) => (pieceLength: number): Array<Uint8Array> => {
  const length = Math.max(1, Math.floor(RUN_BYTES / pieceLength)) * pieceLength
  return Array.from({ length: threads + 2 }, () => new Uint8Array(new SharedArrayBuffer(length)))
}

/**
 * The digests of `run`'s pieces, on this thread. The hashing threads run its source too, so it
 * uses nothing but its arguments.
 */
const hashRun = (hash: typeof createHash, run: Uint8Array, pieceLength: number): Uint8Array => {
  const count = Math.ceil(run.length / pieceLength)
  const out = new Uint8Array(count * 20)
  for (let i = 0; i < count; i++) {
    out.set(hash("sha1").update(run.subarray(i * pieceLength, Math.min(run.length, (i + 1) * pieceLength))).digest(), i * 20)
  }
  return out
}

// The thread's program: a CommonJS script (`eval`), so it needs no file of its own next to the bundle.
const program = `
const { parentPort } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const hashRun = ${hashRun.toString()}
parentPort.on("message", ({ id, run, pieceLength }) => {
  const out = hashRun(createHash, run, pieceLength)
  parentPort.postMessage({ id, out }, [out.buffer])
})
`

interface Thread {
  readonly worker: Worker
  /** Requests sent to it and not answered yet, by id. */
  readonly pending: Map<number, (answer: Effect.Effect<Uint8Array>) => void>
}

/** A pool of `threads` hashing threads (none: hashing on the calling thread), stopped with the scope. */
export const make = (threads: number): Effect.Effect<HashPool, never, Scope.Scope> => {
  if (threads <= 0) {
    return Effect.succeed({
      threads: 0,
      digests: (run, pieceLength) => Effect.sync(() => hashRun(createHash, run, pieceLength)),
      runBuffers: runBuffers(0)
    })
  }
  return Effect.gen(function* () {
    let nextId = 0
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: threads }, (): Thread => {
          const thread: Thread = { worker: new Worker(program, { eval: true }), pending: new Map() }
          thread.worker.on("message", ({ id, out }: { readonly id: number; readonly out: Uint8Array }) => {
            const reply = thread.pending.get(id)
            thread.pending.delete(id)
            if (thread.pending.size === 0) thread.worker.unref()
            reply?.(Effect.succeed(out))
          })
          // Our own program failing is a bug: what it had been asked dies.
          thread.worker.on("exit", () => {
            const lost = [...thread.pending.values()]
            thread.pending.clear()
            for (const reply of lost) reply(Effect.die(new Error("a hashing thread exited")))
          })
          thread.worker.on("error", () => {})
          // Only a request in flight keeps the process alive, not an idle thread.
          thread.worker.unref()
          return thread
        })
      ),
      (threads) => Effect.promise(() => Promise.all(threads.map((thread) => thread.worker.terminate())))
    )
    const digests = (run: Uint8Array, pieceLength: number) =>
      Effect.async<Uint8Array>((resume) => {
        // The least busy thread.
        const thread = pool.reduce((best, candidate) => (candidate.pending.size < best.pending.size ? candidate : best))
        const id = nextId++
        thread.pending.set(id, resume)
        thread.worker.ref()
        // A run not on shared memory is copied to the thread (correct, just slower).
        thread.worker.postMessage({ id, run, pieceLength })
      })
    return { threads, digests, runBuffers: runBuffers(threads) }
  })
}
