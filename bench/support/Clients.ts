/**
 * The clients a benchmark races, each its own OS process under GNU time (see Usage.ts): the
 * built bitfiber CLI, libtorrent through the interop harness's lt_client.py, and aria2c. All of
 * them listen on and talk to 127.0.0.1 only.
 *
 * The harness's own launchers (test/interop/support) start programs directly, without GNU time,
 * and Libtorrent.ts cannot be imported outside vitest (its Binaries.ts imports vitest), so the
 * command lines are written here; aria2c's common flags come from Aria2.ts.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, type Scope } from "effect"
import { freePort, type PeerAddress } from "../../test/interop/support/Ports.js"
import type { ProcessError } from "../../test/interop/support/Process.js"
import { spawnTimed, type Timed } from "./Usage.js"
import * as Aria2 from "../../test/interop/support/Aria2.js"

/** The workspace root. */
export const root = path.resolve(import.meta.dirname, "../..")

/** The built CLI: measured instead of the sources so that tsx's start-up is not billed to bitfiber. */
export const bitfiberCli = path.join(root, "packages/cli/bin/bitfiber.js")

const ltClient = path.join(root, "test/interop/support/lt_client.py")

/** The python with Debian's libtorrent bindings (as the interop harness picks it). */
export const python = process.env["BITFIBER_PYTHON"] ?? "/usr/bin/python3"

/**
 * Extra node flags for every bitfiber process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to
 * profile what a benchmark measures (node refuses `--cpu-prof` in NODE_OPTIONS).
 */
const nodeArgs = (process.env["BITFIBER_BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")

/**
 * How to run the CLI with `args`: as users do, the bin itself (its shebang carries node's flags
 * and environment), or through `env` and node when extra node flags are asked for (the bin's own
 * flags and variables are then repeated).
 */
export const bitfiberCommand = (args: ReadonlyArray<string>): { readonly command: string; readonly args: Array<string> } => {
  if (nodeArgs.length === 0) return { command: bitfiberCli, args: [...args] }
  const shebang = (fs.readFileSync(bitfiberCli, "utf8").split("\n", 1)[0] ?? "").split(" ")
  const binVariables = shebang.filter((word) => /^[A-Z_]+=/.test(word))
  const binFlags = shebang.filter((word) => word.startsWith("--"))
  return { command: "env", args: [...binVariables, process.execPath, ...binFlags, ...nodeArgs, bitfiberCli, ...args] }
}

/** Longest any client may live: a slow 1 GiB run on a busy 2-core machine stays well inside. */
const lifetime = Duration.minutes(30)

/** The three kinds of client a benchmark compares. */
export type Kind = "bitfiber" | "libtorrent" | "aria2c"

/** A leecher racing to download one torrent. */
export interface Leecher {
  readonly kind: Kind
  readonly timed: Timed
  /** Waits until it reports the download complete; returns seconds since it was started. */
  readonly finished: (timeout: Duration.DurationInput) => Effect.Effect<number, ProcessError>
}

/** A seeder serving one torrent on 127.0.0.1:`port`. */
export interface Seeder {
  readonly kind: Kind
  readonly port: number
  readonly timed: Timed
}

/** What a leecher downloads and from whom. */
export interface LeechOptions {
  readonly torrentPath: string
  /** Where the download goes; created if absent. */
  readonly dir: string
  /** Seeders to dial directly (aria2c cannot: it finds them through the torrent's tracker). */
  readonly peers: ReadonlyArray<PeerAddress>
}

/** What a seeder serves: the torrent's data lies under `dataDir`. */
export interface SeedOptions {
  readonly torrentPath: string
  readonly dataDir: string
}

const completion = (timed: Timed, pattern: RegExp) => (timeout: Duration.DurationInput) =>
  Effect.map(timed.child.waitForLine(pattern, timeout), () => (Date.now() - timed.startedAt) / 1000)

const mkdir = (dir: string) => Effect.sync(() => fs.mkdirSync(dir, { recursive: true }))

/** `bitfiber download <torrent> -o dir --peer ... --port 0 --json`; complete at its `done` line. */
export const bitfiberLeecher = (options: LeechOptions): Effect.Effect<Leecher, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* mkdir(options.dir)
    const timed = yield* spawnTimed({
      name: "bitfiber-leecher",
      ...bitfiberCommand([
        "download", options.torrentPath, "-o", options.dir, "--port", "0", "--json",
        ...options.peers.flatMap((peer) => ["--peer", `${peer.host}:${peer.port}`])
      ]),
      lifetime
    })
    return { kind: "bitfiber", timed, finished: completion(timed, /^\{"type":"done"/) }
  })

/** `bitfiber seed <torrent> -o dataDir --port P --json`; ready once it has checked the data and listens. */
export const bitfiberSeeder = (options: SeedOptions): Effect.Effect<Seeder, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const timed = yield* spawnTimed({
      name: `bitfiber-seeder:${port}`,
      ...bitfiberCommand(["seed", options.torrentPath, "-o", options.dataDir, "--port", String(port), "--json"]),
      ready: /"state":"seeding"/,
      readyPort: port,
      readyTimeout: "5 minutes",
      lifetime
    })
    return { kind: "bitfiber", port, timed }
  })

const ltReady = /^READY port=(\d+)$/

/** A libtorrent leecher (lt_client.py leech); complete at its `FINISHED` line, after which it exits. */
export const libtorrentLeecher = (options: LeechOptions): Effect.Effect<Leecher, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* mkdir(options.dir)
    const timed = yield* spawnTimed({
      name: "libtorrent-leecher",
      command: python,
      args: [
        ltClient, "leech", "--torrent", options.torrentPath, "--dir", options.dir, "--port", "0",
        ...options.peers.flatMap((peer) => ["--connect", `${peer.host}:${peer.port}`])
      ],
      lifetime
    })
    return { kind: "libtorrent", timed, finished: completion(timed, /^FINISHED$/) }
  })

/** A libtorrent seeder (lt_client.py seed); ready once it has verified its data. */
export const libtorrentSeeder = (options: SeedOptions): Effect.Effect<Seeder, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const timed = yield* spawnTimed({
      name: "libtorrent-seeder",
      command: python,
      args: [ltClient, "seed", "--torrent", options.torrentPath, "--dir", options.dataDir, "--port", "0"],
      ready: ltReady,
      readyTimeout: "5 minutes",
      lifetime
    })
    const port = Number((yield* timed.child.waitForLine(ltReady))[1])
    return { kind: "libtorrent", port, timed }
  })

/** An aria2c leecher: it finds seeders through the torrent's (http) tracker; complete at "Download complete", then exits. */
export const aria2Leecher = (options: Omit<LeechOptions, "peers">): Effect.Effect<Leecher, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* mkdir(options.dir)
    const port = yield* freePort
    const timed = yield* spawnTimed({
      name: `aria2c-leecher:${port}`,
      command: "aria2c",
      args: [...Aria2.commonArgs(port, options.dir), "--seed-time=0", options.torrentPath],
      lifetime
    })
    return { kind: "aria2c", timed, finished: completion(timed, /Seeding is over\.|Download complete:/) }
  })

/** An aria2c seeder: checks the data (-V), then seeds until stopped; it announces itself to the tracker. */
export const aria2Seeder = (options: SeedOptions): Effect.Effect<Seeder, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const timed = yield* spawnTimed({
      name: `aria2c-seeder:${port}`,
      command: "aria2c",
      args: [
        ...Aria2.commonArgs(port, options.dataDir),
        "--check-integrity=true", "--bt-seed-unverified=false", "--seed-ratio=0.0",
        options.torrentPath
      ],
      ready: /listening on TCP port/,
      readyTimeout: "5 minutes",
      lifetime
    })
    const verified = yield* timed.child.waitForLine(/(Verification finished successfully)|Checksum error detected/, "5 minutes")
    if (verified[1] === undefined) return yield* timed.child.failure("Unexpected", `data in ${options.dataDir} failed verification`)
    return { kind: "aria2c", port, timed }
  })

/** Fails when the built CLI is missing; warns when the sources are newer than the build. */
export const checkBuild = (): void => {
  // The bundle the bin script loads is what gets measured.
  const built = path.join(root, "packages/cli/dist/bitfiber.cjs")
  if (!fs.existsSync(built)) throw new Error(`${path.relative(root, built)} is missing: run \`pnpm build\` first`)
  const newest = (dir: string): number =>
    fs.readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
      .reduce((latest, entry) => Math.max(latest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0)
  const sources = Math.max(newest(path.join(root, "packages/cli/src")), newest(path.join(root, "packages/core/src")))
  if (sources > fs.statSync(built).mtimeMs) console.warn("warning: sources are newer than packages/cli/dist: run `pnpm build` for current figures")
}
