/**
 * A worker thread for the live storage's heavy synchronous work: the SHA-1 of pieces and their
 * writes. On the main thread, hashing took ~15% of a download's CPU, and it blocked the event loop
 * ~0.1 ms per 256 KiB piece; on node's libuv pool, four threads writing one file contended for its
 * inode lock. One thread of our own does both in order, while the main thread keeps receiving.
 *
 * Bytes on a SharedArrayBuffer are shared with the thread; any other buffer is copied by
 * `postMessage` (correct, just slower), so the piece buffers are allocated shared.
 */
import { Worker } from "node:worker_threads"
import { Effect, type Scope } from "effect"
import { sha1 } from "../Storage.js"

/**
 * Largest single write(2). Each write fills page-cache folios of its own size: 16 KiB folios come
 * from the kernel's per-CPU free lists, 256 KiB ones from high-order blocks, which on this VM's
 * balloon had been handed back to the host and cost a host page fault each: writing 1 GiB in
 * 256 KiB calls took 2.0 s of system time, in 16 KiB calls 0.9 s.
 */
const WRITE_CHUNK = 16 * 1024

/** A write(2) that failed on the thread: its errno code and message, for `fromSystemError`. */
export interface WriteFailure {
  readonly code: string | undefined
  readonly message: string
}

/** The thread's two operations. */
export interface DiskThread {
  /** SHA-1 of `data`. */
  readonly sha1: (data: Uint8Array) => Effect.Effect<Uint8Array>
  /** Writes all of `data` at `position` of descriptor `fd`, which must stay open until this completes. */
  readonly write: (fd: number, data: Uint8Array, position: number) => Effect.Effect<void, WriteFailure>
}

type Request =
  | { readonly id: number; readonly op: "sha1"; readonly data: Uint8Array }
  | { readonly id: number; readonly op: "write"; readonly data: Uint8Array; readonly fd: number; readonly position: number }

type Reply =
  | { readonly id: number; readonly digest: Uint8Array }
  | { readonly id: number; readonly failure: WriteFailure }
  | { readonly id: number }

// The thread's program: a CommonJS script (`eval`), so it needs no file of its own next to the bundle.
const program = `
const { parentPort } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const { writeSync } = require("node:fs")
const CHUNK = ${WRITE_CHUNK}
parentPort.on("message", (request) => {
  if (request.op === "sha1") {
    parentPort.postMessage({ id: request.id, digest: createHash("sha1").update(request.data).digest() })
    return
  }
  const { id, data, fd, position } = request
  try {
    for (let done = 0; done < data.length;) {
      const n = writeSync(fd, data, done, Math.min(CHUNK, data.length - done), position + done)
      if (n === 0) throw Object.assign(new Error("write(2) wrote nothing"), { code: "EIO" })
      done += n
    }
    parentPort.postMessage({ id })
  } catch (error) {
    parentPort.postMessage({ id, failure: { code: error.code, message: error.message } })
  }
})
`

/** What a request does with the thread's reply, or when the thread is gone without one. */
interface Pending {
  readonly reply: (reply: Reply) => void
  readonly lost: () => void
}

/**
 * A disk thread, started on first use (a session with only idle torrents runs none) and stopped
 * with the scope. Should the thread die, its pending hashes are computed here instead, its pending
 * writes fail (`EIO`), and the next request starts a new thread.
 */
export const make: Effect.Effect<DiskThread, never, Scope.Scope> = Effect.gen(function* () {
  let worker: Worker | undefined
  let nextId = 0
  const pending = new Map<number, Pending>()

  const loseAll = (from: Worker) => {
    if (worker !== from) return
    worker = undefined
    const lost = [...pending.values()]
    pending.clear()
    lost.forEach((request) => request.lost())
  }

  const started = (): Worker => {
    if (worker !== undefined) return worker
    const thread = new Worker(program, { eval: true })
    thread.on("message", (reply: Reply) => {
      const request = pending.get(reply.id)
      pending.delete(reply.id)
      idleIfDone(thread)
      request?.reply(reply)
    })
    thread.on("error", () => loseAll(thread))
    thread.on("exit", () => loseAll(thread))
    // After the listeners, which ref the thread: like a pending fs call, only a request in flight
    // keeps the process alive; an idle thread never does.
    thread.unref()
    worker = thread
    return thread
  }
  const idleIfDone = (thread: Worker) => {
    if (pending.size === 0) thread.unref()
  }

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      const thread = worker
      worker = undefined
      return thread === undefined ? Effect.void : Effect.promise(() => thread.terminate())
    })
  )

  const send = <A, E>(request: (id: number) => Request, handle: (reply: Reply) => Effect.Effect<A, E>, lost: () => Effect.Effect<A, E>) =>
    Effect.async<A, E>((resume) => {
      const id = nextId++
      const thread = started()
      thread.ref()
      pending.set(id, { reply: (reply) => resume(handle(reply)), lost: () => resume(lost()) })
      thread.postMessage(request(id))
      return Effect.sync(() => {
        pending.delete(id)
        idleIfDone(thread)
      })
    })

  return {
    sha1: (data) =>
      send((id) => ({ id, op: "sha1", data }), (reply) => ("digest" in reply ? Effect.succeed(reply.digest) : sha1(data)), () => sha1(data)),
    write: (fd, data, position) =>
      // Not interruptible: the thread writes to `fd` whatever happens here, so the caller must
      // keep it open (and its number not reused) until the reply.
      Effect.uninterruptible(
        send<void, WriteFailure>(
          (id) => ({ id, op: "write", data, fd, position }),
          (reply) => ("failure" in reply ? Effect.fail(reply.failure) : Effect.void),
          () => Effect.fail({ code: "EIO", message: "the disk thread exited during the write" })
        )
      )
  }
})
