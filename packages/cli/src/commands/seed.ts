/**
 * `bitfiber seed <torrent>`: checks the data in a directory piece by piece (with progress), then
 * serves it to other peers until Ctrl-C.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Stream } from "effect"
import * as Engine from "../Engine.js"
import * as Format from "../ui/Format.js"
import * as StatusLine from "../ui/StatusLine.js"
import { loadTorrent, parsePeers, sessionConfig, sessionOptions } from "./download.js"

/** The `seed` command. */
export const command = Command.make(
  "seed",
  {
    input: Args.text({ name: "torrent" }).pipe(Args.withDescription("the .torrent file of the data to seed")),
    output: Options.directory("output").pipe(
      Options.withAlias("o"),
      Options.withDescription("directory the data is in, as 'download -o' would have put it (default: the current directory)"),
      Options.withDefault(".")
    ),
    ...sessionOptions
  },
  (options) =>
    Effect.scoped(
      Effect.gen(function*() {
        const metainfo = yield* loadTorrent(options.input)
        const peers = yield* parsePeers(options.peers)
        const session = yield* Engine.session(sessionConfig(options), Option.isSome(options.port))
        const torrent = yield* session.add({ torrent: metainfo, directory: options.output, peers })
        const status = yield* StatusLine.make(StatusLine.stderr())
        yield* Effect.forkScoped(Engine.watch(torrent, status, options.json))
        const checked = yield* torrent.changes.pipe(
          Stream.filter((p) => p.state !== "checking"),
          Stream.runHead,
          Effect.flatMap(Option.match({ onNone: () => torrent.progress, onSome: Effect.succeed }))
        )
        const present = checked.totalLength === 0 ? 1 : checked.verifiedBytes / checked.totalLength
        const note = present < 1 ? ` — only ${Format.percent(present)} of the data is there; serving what is` : ""
        if (!options.json) {
          yield* status.done(`seeding ${Format.printable(metainfo.info.name)} on port ${session.port}${note}`)
        }
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Verify the data of a torrent in a directory, then seed it until interrupted."))
