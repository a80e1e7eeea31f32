/**
 * SHA-1 piece hashing for `Create`, spread over worker threads the way mktorrent spreads it over
 * pthreads: each worker owns a contiguous run of pieces, reads its byte range of the files with
 * one reused 1 MiB buffer and feeds one node:crypto hash per piece, so memory is bounded by the
 * number of workers, not by the data. The worker is inline JavaScript (`eval`) so it runs the
 * same from the sources (tsx, vitest) and from dist, with nothing to resolve at run time.
 */
import { Effect, Queue } from "effect"
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"

/** A file's place in the concatenated data. */
export interface PlacedFile {
  readonly path: string
  readonly offset: number
  readonly length: number
}

/** What to hash. */
export interface Job {
  readonly files: ReadonlyArray<PlacedFile>
  readonly pieceLength: number
  readonly pieceCount: number
  readonly totalLength: number
}

/** Why hashing stopped. */
export interface HashFailure {
  readonly reason: "NotFound" | "Io" | "FileChanged"
  readonly path: string
  readonly message: string
}

const CHUNK_SIZE = 1024 * 1024
const REPORT_EVERY = 4 * 1024 * 1024
// A worker costs a thread start; below this much data per worker, fewer workers are faster.
const MIN_BYTES_PER_WORKER = 32 * 1024 * 1024
const MAX_WORKERS = 8

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const fs = require("node:fs")
const { files, pieceLength, firstPiece, endPiece, totalLength, chunkSize, reportEvery } = workerData

const fail = (cause, path) => parentPort.postMessage({
  type: "error", reason: cause && cause.code === "ENOENT" ? "NotFound" : "Io", path, message: String(cause)
})

const run = () => {
  const start = firstPiece * pieceLength
  const end = Math.min(endPiece * pieceLength, totalLength)
  const pieces = new Uint8Array((endPiece - firstPiece) * 20)
  const buffer = Buffer.allocUnsafe(chunkSize)
  let hash = createHash("sha1")
  let filled = 0
  let index = 0
  let unreported = 0
  for (const file of files) {
    const from = Math.max(start, file.offset)
    const to = Math.min(end, file.offset + file.length)
    if (from >= to) continue
    let fd
    try {
      fd = fs.openSync(file.path, "r")
    } catch (cause) {
      return fail(cause, file.path)
    }
    try {
      for (let position = from - file.offset, left = to - from; left > 0;) {
        const read = fs.readSync(fd, buffer, 0, Math.min(chunkSize, left), position)
        if (read === 0) {
          return parentPort.postMessage({
            type: "error", reason: "FileChanged", path: file.path, message: file.path + " shrank while being hashed"
          })
        }
        for (let at = 0; at < read;) {
          const take = Math.min(pieceLength - filled, read - at)
          hash.update(buffer.subarray(at, at + take))
          filled += take
          at += take
          if (filled === pieceLength) {
            pieces.set(hash.digest(), 20 * index++)
            hash = createHash("sha1")
            filled = 0
          }
        }
        position += read
        left -= read
        unreported += read
        if (unreported >= reportEvery) {
          parentPort.postMessage({ type: "progress", bytes: unreported })
          unreported = 0
        }
      }
    } catch (cause) {
      return fail(cause, file.path)
    } finally {
      fs.closeSync(fd)
    }
  }
  if (filled > 0) pieces.set(hash.digest(), 20 * index++)
  parentPort.postMessage({ type: "done", firstPiece, pieces, bytes: unreported }, [pieces.buffer])
}
run()
`

type Event =
  | { readonly type: "progress"; readonly bytes: number }
  | { readonly type: "done"; readonly firstPiece: number; readonly pieces: Uint8Array; readonly bytes: number }
  | ({ readonly type: "error" } & HashFailure)

// The worker is ours, but its messages still cross a boundary untyped: check before trusting.
const toEvent = (message: unknown): Event | undefined => {
  if (typeof message !== "object" || message === null || !("type" in message)) return undefined
  const event = message as Record<string, unknown>
  if (event["type"] === "progress" && typeof event["bytes"] === "number") return { type: "progress", bytes: event["bytes"] }
  if (
    event["type"] === "done" && typeof event["firstPiece"] === "number" && event["pieces"] instanceof Uint8Array &&
    typeof event["bytes"] === "number"
  ) {
    return { type: "done", firstPiece: event["firstPiece"], pieces: event["pieces"], bytes: event["bytes"] }
  }
  if (event["type"] === "error" && typeof event["path"] === "string" && typeof event["message"] === "string") {
    const reason = event["reason"] === "NotFound" || event["reason"] === "FileChanged" ? event["reason"] : "Io"
    return { type: "error", reason, path: event["path"], message: event["message"] }
  }
  return undefined
}

/** How many workers to use for `totalLength` bytes. */
export const workerCount = (totalLength: number): number =>
  Math.max(1, Math.min(availableParallelism(), MAX_WORKERS, Math.floor(totalLength / MIN_BYTES_PER_WORKER)))

/** Hashes every piece of `job`, calling `onBytes` as data is hashed; the result is the `pieces` field. */
export const hashPieces = (
  job: Job,
  onBytes: (bytes: number) => Effect.Effect<void>
): Effect.Effect<Uint8Array, HashFailure> =>
  Effect.scoped(
    Effect.gen(function*() {
      const events = yield* Queue.unbounded<Event>()
      const workers = Math.min(workerCount(job.totalLength), job.pieceCount)
      const perWorker = Math.ceil(job.pieceCount / workers)
      const pieces = new Uint8Array(job.pieceCount * 20)
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          Array.from({ length: workers }, (_, index) => {
            const firstPiece = index * perWorker
            const worker = new Worker(WORKER_SOURCE, {
              eval: true,
              workerData: {
                files: job.files,
                pieceLength: job.pieceLength,
                firstPiece,
                endPiece: Math.min(firstPiece + perWorker, job.pieceCount),
                totalLength: job.totalLength,
                chunkSize: CHUNK_SIZE,
                reportEvery: REPORT_EVERY
              }
            })
            const failed = (message: string): Event => ({ type: "error", reason: "Io", path: "", message })
            worker.on("message", (message: unknown) => Queue.unsafeOffer(events, toEvent(message) ?? failed("bad worker message")))
            worker.on("error", (cause) => Queue.unsafeOffer(events, failed(`hashing worker failed: ${String(cause)}`)))
            // Covers a worker that dies without an "error" event; after "done" the loop no longer listens.
            worker.on("exit", (code) => {
              if (code !== 0) Queue.unsafeOffer(events, failed(`hashing worker exited with code ${code}`))
            })
            return worker
          })
        ),
        (started) => Effect.promise(() => Promise.all(started.map((worker) => worker.terminate())))
      )
      let running = workers
      while (running > 0) {
        const event = yield* Queue.take(events)
        if (event.type === "error") {
          return yield* Effect.fail({ reason: event.reason, path: event.path, message: event.message })
        }
        if (event.type === "done") {
          pieces.set(event.pieces, event.firstPiece * 20)
          running--
        }
        if (event.bytes > 0) yield* onBytes(event.bytes)
      }
      return pieces
    })
  )
