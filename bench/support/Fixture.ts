/**
 * The data a transfer benchmark moves: one incompressible file of the requested size, its
 * .torrent (mktorrent, announcing to a local opentracker over HTTP, which aria2c needs to find
 * peers) and the tracker itself, all under a temp dir removed at the end.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, type Scope } from "effect"
import { InfoHash, Metainfo } from "@bitfiber/core"
import { mktorrent } from "../../test/interop/support/Mktorrent.js"
import { makeTestPayload, sha256File, tempDir } from "../../test/interop/support/Payload.js"
import { live, type ProcessError } from "../../test/interop/support/Process.js"
import { opentracker, type Tracker } from "../../test/interop/support/Tracker.js"

/** A payload, its torrent and a tracker that serves it. */
export interface Fixture {
  readonly root: string
  /** The seeders' data dir: holds `payload.bin`, the torrent's single file. */
  readonly seedDir: string
  readonly torrentPath: string
  /** Hex info-hash of the torrent. */
  readonly infoHash: string
  readonly tracker: Tracker
  readonly sizeBytes: number
  readonly pieceLength: number
  /** Hex SHA-256 of the payload, to check a download against. */
  readonly sha256: string
}

/** The torrent's single file name. */
export const payloadName = "payload.bin"

/** Writes the payload, makes its torrent and starts a tracker that serves it. */
export const make = (options: {
  readonly name: string
  readonly sizeBytes: number
  readonly pieceLength: number
}): Effect.Effect<Fixture, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const root = yield* tempDir(`bench-${options.name}`)
    const seedDir = path.join(root, "seed")
    yield* makeTestPayload({ dir: seedDir, files: [{ path: payloadName, size: options.sizeBytes }], seed: options.name })
    const tracker = yield* opentracker()
    const torrentPath = yield* mktorrent({
      path: path.join(seedDir, payloadName),
      out: path.join(root, "payload.torrent"),
      announce: [tracker.httpUrl],
      pieceLength: options.pieceLength
    })
    const metainfo = yield* Effect.orDie(Metainfo.parse(fs.readFileSync(torrentPath)))
    const infoHash = InfoHash.toHex(metainfo.infoHash)
    yield* tracker.addInfoHash(infoHash)
    const sha256 = yield* sha256File(path.join(seedDir, payloadName))
    return { root, seedDir, torrentPath, infoHash, tracker, sizeBytes: options.sizeBytes, pieceLength: options.pieceLength, sha256 }
  })

/** The number of seeders the tracker lists (its scrape's `complete`), 0 when it does not answer. */
export const trackedSeeders = (fixture: Fixture): Effect.Effect<number> =>
  Effect.promise(async () => {
    const url = `${fixture.tracker.httpUrl.replace(/\/announce$/, "/scrape")}?info_hash=${fixture.infoHash.replace(/../g, "%$&")}`
    const reply = await fetch(url).then((response) => response.text()).catch(() => "")
    return Number(/8:completei(\d+)e/.exec(reply)?.[1] ?? 0)
  })

/**
 * Waits (up to 30 s) until the tracker lists at least `count` seeders, so that a leecher that
 * finds peers only through the tracker (aria2c) does not start before the seeders announced.
 * Seeders killed without a `stopped` announce stay listed: pass the count from before they started plus the new ones.
 */
export const awaitSeeders = (fixture: Fixture, count: number): Effect.Effect<void> =>
  live(
    Effect.gen(function*() {
      while ((yield* trackedSeeders(fixture)) < count) yield* Effect.sleep("100 millis")
    }).pipe(
      Effect.timeout("30 seconds"),
      Effect.catchTag("TimeoutException", () =>
        Effect.sync(() => console.error(`warning: the tracker lists fewer than ${count} seeders after 30 s; going on`)))
    )
  )

/**
 * A data dir of its own for one more seeder, sharing the payload's inode (a hard link): no copy,
 * one page cache, but each client's side files (aria2c's control file) stay apart.
 */
export const seederDir = (fixture: Fixture, name: string): Effect.Effect<string> =>
  Effect.sync(() => {
    const dir = path.join(fixture.root, `seed-${name}`)
    fs.mkdirSync(dir, { recursive: true })
    fs.linkSync(path.join(fixture.seedDir, payloadName), path.join(dir, payloadName))
    return dir
  })

/** Whether `dir` holds the payload exactly. */
export const holdsPayload = (fixture: Fixture, dir: string): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    const file = path.join(dir, payloadName)
    return fs.existsSync(file) && fs.statSync(file).size === fixture.sizeBytes
      ? Effect.map(sha256File(file), (digest) => digest === fixture.sha256)
      : Effect.succeed(false)
  })

/**
 * Deletes a finished download and flushes the page cache's dirty pages, so that one client's
 * writeback does not slow the next client down.
 */
export const discard = (dir: string): Effect.Effect<void> =>
  Effect.sync(() => {
    fs.rmSync(dir, { recursive: true, force: true })
    execFileSync("sync")
  })

/** Parses a flag's piece length, which mktorrent needs as a power of two from 32 KiB. */
export const checkPieceLength = (pieceLength: number): Either.Either<number, string> =>
  Number.isInteger(Math.log2(pieceLength)) && pieceLength >= 32 * 1024
    ? Either.right(pieceLength)
    : Either.left("--piece-length must be a power of two of at least 32 KiB (mktorrent's limits)")
