/**
 * `bitfiber download <torrent>`: downloads into a directory with a live progress line, exits 0
 * only when every piece is verified, and optionally seeds afterwards. Ctrl-C stops cleanly
 * (trackers told `stopped`, files closed); running it again resumes from what is on disk.
 */
import { EncryptedHandshake, InfoHash, type Network, type Session, type Torrent } from "@bitfiber/core"
import { Args, Command, Options } from "@effect/cli"
import { Clock, Duration, Effect, Either, Fiber, Option, Schedule, Stream } from "effect"
import { CommandError } from "../CommandError.js"
import * as Engine from "../Engine.js"
import * as ExitCode from "../ExitCode.js"
import * as Input from "../Input.js"
import * as PeerAddress from "../PeerAddress.js"
import * as Format from "../ui/Format.js"
import * as StatusLine from "../ui/StatusLine.js"

/** When to stop seeding after the download: never, at an upload ratio, or after a while. */
export type SeedGoal =
  | { readonly _tag: "None" }
  | { readonly _tag: "Forever" }
  | { readonly _tag: "Ratio"; readonly ratio: number }
  | { readonly _tag: "Duration"; readonly duration: Duration.Duration }

/** Parses the value of `--seed`: `forever`, a ratio (`1.5`) or a duration (`30m`, `2h`, `90s`). */
export const parseSeedGoal = (text: string): Either.Either<SeedGoal, string> => {
  if (text === "forever") return Either.right({ _tag: "Forever" })
  if (/^\d+(\.\d+)?$/.test(text)) return Either.right({ _tag: "Ratio", ratio: Number(text) })
  const match = /^(\d+)(s|m|h|d)$/.exec(text)
  if (match === null) return Either.left(`--seed takes a ratio (1.5), a duration (30m, 2h) or nothing; got '${text}'`)
  const units = { s: "seconds", m: "minutes", h: "hours", d: "days" } as const
  return Either.right({ _tag: "Duration", duration: Duration.decode(`${Number(match[1])} ${units[match[2] as keyof typeof units]}`) })
}

/** `--seed` alone means "forever": @effect/cli options take a value, so the bare flag is rewritten. */
export const normalizeArgs = (argv: ReadonlyArray<string>): Array<string> =>
  argv.map((arg) => (arg === "--seed" ? "--seed=forever" : arg))

/** Options shared by the commands that run a session. */
export const sessionOptions = {
  port: Options.integer("port").pipe(
    Options.withDescription("port for incoming peers (default 6881, or a free one if 6881 is taken; 0 = any)"),
    Options.optional
  ),
  maxPeers: Options.integer("max-peers").pipe(Options.withDescription("connected peers at most"), Options.withDefault(50)),
  peers: Options.text("peer").pipe(
    Options.withDescription("also connect to this peer (host:port); repeatable"),
    Options.repeated
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print progress and the result as JSON lines on stdout")),
  noDht: Options.boolean("no-dht").pipe(Options.withDescription("do not run a DHT node (peers from trackers, --peer and peer exchange only)")),
  dhtBootstrap: Options.text("dht-bootstrap").pipe(
    Options.withDescription("a DHT node to join the DHT through (host:port); repeatable"),
    Options.repeated
  ),
  encryption: Options.choice("encryption", EncryptedHandshake.POLICIES).pipe(
    Options.withDescription(
      "message stream encryption: accept = answer encrypted peers, dial plain; prefer = also dial encrypted (plain if refused); require = RC4-encrypted peers only"
    ),
    Options.withDefault("accept" as const)
  )
}

/** The session configuration the shared options describe. */
export const sessionConfig = (options: {
  readonly port: Option.Option<number>
  readonly maxPeers: number
  readonly noDht: boolean
  readonly dhtBootstrap: ReadonlyArray<string>
  readonly encryption: EncryptedHandshake.Policy
}) => ({
  port: Option.getOrElse(options.port, () => 6881),
  maxPeersPerTorrent: options.maxPeers,
  dht: !options.noDht,
  dhtBootstrap: options.dhtBootstrap,
  encryption: options.encryption
})

/** Parses `--peer` values. */
export const parsePeers = (values: ReadonlyArray<string>) =>
  Effect.forEach(values, (value) =>
    Either.match(PeerAddress.parse(value), {
      onLeft: (problem) =>
        Effect.fail(new CommandError({ problem, remedy: "write peers as host:port, e.g. 127.0.0.1:6881 or [::1]:6881", exitCode: ExitCode.Usage })),
      onRight: Effect.succeed
    }))

/** Loads a `.torrent` for a command that needs the whole metainfo up front (seeding). */
export const loadTorrent = (input: string) =>
  Effect.flatMap(Input.load(input), (loaded) =>
    loaded._tag === "Torrent"
      ? Effect.succeed(loaded.metainfo)
      : Effect.fail(
        new CommandError({
          problem: "seeding needs the torrent's metadata, which a magnet link does not carry",
          remedy: "pass the .torrent file (bitfiber download <magnet> fetches the metadata and then seeds with --seed)",
          exitCode: ExitCode.InvalidInput
        })
      ))

/** Adds a loaded input to the session: a magnet link first fetches its metadata from peers, with a status line. */
export const addInput = (
  session: Session.SessionService,
  loaded: Input.Input,
  options: { readonly directory: string; readonly peers: ReadonlyArray<Network.Address> },
  status: StatusLine.StatusLine
) => {
  if (loaded._tag === "Torrent") return session.add({ torrent: loaded.metainfo, ...options })
  const { magnet } = loaded
  const name = Format.printable(magnet.name ?? InfoHash.toHex(magnet.infoHash))
  return Effect.gen(function*() {
    yield* status.show(`fetching metadata of ${name} from peers...`, true)
    const ticker = yield* Effect.forkScoped(
      Effect.repeat(status.show(`fetching metadata of ${name} from peers...`), Schedule.spaced("1 second"))
    )
    const torrent = yield* session.addMagnet(magnet, options)
    yield* Fiber.interrupt(ticker)
    yield* status.done(`metadata: ${Format.printable(torrent.metainfo.info.name)}, ${Format.bytes(torrent.metainfo.info.totalLength)} in ${torrent.metainfo.info.files.length} files`)
    return torrent
  })
}

/** Fails early when a torrent has no way to find peers. */
export const requirePeerSource = (
  trackers: ReadonlyArray<ReadonlyArray<string>>,
  peers: ReadonlyArray<Network.Address>,
  dht: boolean
) =>
  trackers.length === 0 && peers.length === 0 && !dht
    ? Effect.fail(
      new CommandError({
        problem: "no way to find peers: no trackers, no peers and no DHT node to start from",
        remedy: "pass --peer host:port for a peer that has the data, or --dht-bootstrap host:port",
        exitCode: ExitCode.Network
      })
    )
    : Effect.void

/** Seeds until `goal` is met (never returns for `Forever`). */
export const seedUntil = (torrent: Torrent.Torrent, goal: SeedGoal) => {
  switch (goal._tag) {
    case "None":
      return Effect.void
    case "Forever":
      return Effect.never
    case "Duration":
      return Effect.sleep(goal.duration)
    case "Ratio":
      return torrent.changes.pipe(
        Stream.takeUntil((p) => p.uploaded >= goal.ratio * p.totalLength),
        Stream.runDrain
      )
  }
}

/** The final summary of a finished download. */
export const summaryJson = (p: Torrent.Progress, directory: string, seconds: number) => ({
  type: "done" as const,
  infoHash: p.infoHash,
  name: p.name,
  directory,
  totalLength: p.totalLength,
  downloaded: p.downloaded,
  uploaded: p.uploaded,
  seconds
})

/** The `download` command. */
export const command = Command.make(
  "download",
  {
    input: Args.text({ name: "torrent" }).pipe(Args.withDescription("the .torrent file or magnet link to download (quote magnet links)")),
    output: Options.directory("output").pipe(
      Options.withAlias("o"),
      Options.withDescription("directory to download into (default: the current directory)"),
      Options.withDefault(".")
    ),
    seed: Options.text("seed").pipe(
      Options.withDescription("keep seeding when done: --seed (until Ctrl-C), --seed=1.5 (ratio), --seed=30m (time)"),
      Options.optional
    ),
    ...sessionOptions
  },
  (options) =>
    Effect.scoped(
      Effect.gen(function*() {
        const goal = yield* Option.match(options.seed, {
          onNone: () => Effect.succeed<SeedGoal>({ _tag: "None" }),
          onSome: (text) =>
            Either.match(parseSeedGoal(text), {
              onLeft: (problem) => Effect.fail(new CommandError({ problem, remedy: "see 'bitfiber download --help'", exitCode: ExitCode.Usage })),
              onRight: Effect.succeed
            })
        })
        const loaded = yield* Input.load(options.input)
        const peers = yield* parsePeers(options.peers)
        yield* requirePeerSource(
          loaded._tag === "Torrent" ? loaded.metainfo.trackers : loaded.magnet.trackers.map((url) => [url]),
          [...peers, ...(loaded._tag === "Magnet" ? loaded.magnet.peers : [])],
          !options.noDht && options.dhtBootstrap.length > 0
        )
        const started = yield* Clock.currentTimeMillis
        const session = yield* Engine.session(sessionConfig(options), Option.isSome(options.port))
        const status = yield* StatusLine.make(StatusLine.stderr())
        const torrent = yield* addInput(session, loaded, { directory: options.output, peers }, status)
        const metainfo = torrent.metainfo
        const watching = yield* Effect.forkScoped(Engine.watch(torrent, status, options.json))
        yield* torrent.completed
        const progress = yield* torrent.progress
        const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
        if (options.json) yield* Effect.sync(() => process.stdout.write(`${JSON.stringify(summaryJson(progress, options.output, seconds))}\n`))
        else {
          yield* status.done(
            `done: ${Format.printable(metainfo.info.name)}, ${Format.bytes(metainfo.info.totalLength)} verified in ${Format.duration(seconds)} → ${Format.printable(options.output)}`
          )
        }
        if (goal._tag === "None") return
        yield* seedUntil(torrent, goal)
        yield* watching.pipe(Effect.fork)
      })
    )
).pipe(Command.withDescription("Download a torrent into a directory, verifying every piece; resumes from data already there."))
