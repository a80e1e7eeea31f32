/**
 * A worker thread for the live storage's heavy synchronous work: the SHA-1 of received pieces and
 * their writes. On the main thread, hashing took ~15% of a download's CPU, and it blocked the event
 * loop ~0.1 ms per 256 KiB piece; on node's libuv pool, four threads writing one file contended for
 * its inode lock. One thread of our own does both in order, while the main thread keeps receiving.
 *
 * Bytes on a SharedArrayBuffer are shared with the thread; any other buffer is copied by
 * `postMessage` (correct, just slower), so the piece buffers are allocated shared.
 */
import { Worker } from "node:worker_threads"
import { Effect, type Scope } from "effect"

/**
 * Largest single write(2). Each write fills page-cache folios of its own size: 16 KiB folios come
 * from the kernel's per-CPU free lists, 256 KiB ones from high-order blocks, which on this VM's
 * balloon had been handed back to the host and cost a host page fault each: writing 1 GiB in
 * 256 KiB calls took 2.0 s of system time, in 16 KiB calls 0.9 s. Against 16 KiB, a 1 GiB
 * download took 18% more CPU with 64 KiB calls, 9% with 8 KiB and 16% with 4 KiB (more calls).
 */
const WRITE_CHUNK = 16 * 1024

/** A write(2) that failed on the thread: its errno code and message, for `fromSystemError`, and which write. */
export interface WriteFailure {
  readonly code: string | undefined
  readonly message: string
  /** Index of the failed write in the request's `writes`. */
  readonly at: number
}

/** Bytes [begin, begin + length) of a request's data, to be written at `position` of descriptor `fd`. */
export interface FileWrite {
  readonly fd: number
  readonly position: number
  readonly begin: number
  readonly length: number
}

/** The thread's one operation. */
export interface DiskThread {
  /**
   * Writes `writes` of `data`, in order, if `data` hashes (SHA-1) to `digest` or no digest is
   * given, and whether it did. Each `fd` must stay open until this completes.
   */
  readonly writePiece: (data: Uint8Array, writes: ReadonlyArray<FileWrite>, digest?: Uint8Array) => Effect.Effect<boolean, WriteFailure>
}

interface Request {
  readonly id: number
  readonly data: Uint8Array
  readonly writes: ReadonlyArray<FileWrite>
  readonly digest: Uint8Array | undefined
}

type Reply =
  | { readonly id: number; readonly written: boolean }
  | { readonly id: number; readonly failure: WriteFailure }

// The thread's program: a CommonJS script (`eval`), so it needs no file of its own next to the bundle.
// Requests come in batches and their replies go back as one: each message costs both threads a wake-up.
const program = `
const { parentPort } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const { writeSync } = require("node:fs")
const CHUNK = ${WRITE_CHUNK}
const writeAll = (fd, data, position) => {
  for (let done = 0; done < data.length;) {
    const n = writeSync(fd, data, done, Math.min(CHUNK, data.length - done), position + done)
    if (n === 0) throw Object.assign(new Error("write(2) wrote nothing"), { code: "EIO" })
    done += n
  }
}
const run = ({ id, data, writes, digest }) => {
  if (digest !== undefined && !createHash("sha1").update(data).digest().equals(digest)) return { id, written: false }
  for (let at = 0; at < writes.length; at++) {
    const { fd, position, begin, length } = writes[at]
    try {
      writeAll(fd, data.subarray(begin, begin + length), position)
    } catch (error) {
      return { id, failure: { code: error.code, message: error.message, at } }
    }
  }
  return { id, written: true }
}
parentPort.on("message", (requests) => parentPort.postMessage(requests.map(run)))
`

/**
 * `view` as postMessage should get it: a view of a SharedArrayBuffer is shared as it is; any other
 * is cloned with its whole ArrayBuffer, so a view of part of one is copied out first: by
 * `Uint8Array.from`, as `slice` of a Buffer is a view (a digest viewing a Buffer of a torrent's
 * piece hashes would clone all of them, 8 MB per piece of a 100 GiB torrent).
 */
export const ownBytes = (view: Uint8Array): Uint8Array =>
  view.buffer instanceof SharedArrayBuffer || (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength)
    ? view
    : Uint8Array.from(view)

/** What a request does with the thread's reply, or when the thread is gone without one. */
interface Pending {
  readonly reply: (reply: Reply) => void
  readonly lost: () => void
}

/**
 * A disk thread, started on first use (a session with only idle torrents runs none) and stopped
 * with the scope. Should the thread die, its pending requests fail (`EIO`), and the next request
 * starts a new thread.
 */
export const make: Effect.Effect<DiskThread, never, Scope.Scope> = Effect.gen(function* () {
  let worker: Worker | undefined
  let closed = false
  let nextId = 0
  const pending = new Map<number, Pending>()
  // Requests made in one turn of the event loop (the pieces that one read completed) go to the
  // thread as one message, posted once the turn's work is done.
  let batch: Array<Request> = []

  /** Fails every pending request: the thread that had them is gone (or never got them). */
  const loseAll = () => {
    batch = []
    const lost = [...pending.values()]
    pending.clear()
    lost.forEach((request) => request.lost())
  }

  const started = (): Worker => {
    if (worker !== undefined) return worker
    const thread = new Worker(program, { eval: true })
    thread.on("message", (replies: ReadonlyArray<Reply>) => {
      for (const reply of replies) {
        const request = pending.get(reply.id)
        pending.delete(reply.id)
        request?.reply(reply)
      }
      idleIfDone(thread)
    })
    const exited = () => {
      if (worker !== thread) return
      worker = undefined
      loseAll()
    }
    thread.on("error", exited)
    thread.on("exit", exited)
    // After the listeners, which ref the thread: like a pending fs call, only a request in flight
    // keeps the process alive; an idle thread never does.
    thread.unref()
    worker = thread
    return thread
  }
  const idleIfDone = (thread: Worker) => {
    if (pending.size === 0) thread.unref()
  }

  // Requests still pending fail once the thread has stopped, so that none writes after its caller went on.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      closed = true
      const thread = worker
      worker = undefined
      const stopped = thread === undefined ? Effect.void : Effect.promise(() => thread.terminate())
      return Effect.zipRight(stopped, Effect.sync(loseAll))
    })
  )

  const post = () => {
    const requests = batch
    batch = []
    if (!closed && requests.length > 0) started().postMessage(requests)
  }

  // No canceler: requests run uninterruptibly (see writePiece).
  const send = (request: Omit<Request, "id">) =>
    Effect.async<boolean, WriteFailure>((resume) => {
      const lost = () => resume(Effect.fail({ code: "EIO", message: "the disk thread exited during the write", at: 0 }))
      if (closed) return lost()
      const id = nextId++
      started().ref()
      pending.set(id, { reply: (reply) => resume("failure" in reply ? Effect.fail(reply.failure) : Effect.succeed(reply.written)), lost })
      if (batch.length === 0) setImmediate(post)
      batch.push({ id, ...request })
    })

  return {
    // Not interruptible: the thread writes to the descriptors whatever happens here, so the caller
    // must keep them open (and their numbers not reused) until the reply.
    writePiece: (data, writes, digest) =>
      Effect.uninterruptible(send({ data: ownBytes(data), writes, digest: digest === undefined ? undefined : ownBytes(digest) }))
  }
})
