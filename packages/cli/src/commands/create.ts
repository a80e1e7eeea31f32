/**
 * `bitfiber create <path>`: makes a `.torrent` of a file or directory, with a progress bar
 * while hashing, and prints the info-hash, where the torrent went and its magnet link.
 */
import { Create, InfoHash, Magnet } from "@bitfiber/core"
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Either, Option } from "effect"
import * as nodePath from "node:path"
import { CommandError } from "../CommandError.js"
import * as ExitCode from "../ExitCode.js"
import * as Format from "../ui/Format.js"
import * as Progress from "../ui/Progress.js"

/** `-t` values to tiers: each flag is a tier, a comma-separated value lists one tier's trackers. */
export const trackerTiers = (values: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<string>> =>
  values.map((value) => value.split(",").map((url) => url.trim()).filter((url) => url !== ""))

/** The default output: `<basename of path>.torrent` in the current directory. */
export const defaultOutput = (path: string): string => `${nodePath.basename(nodePath.resolve(path))}.torrent`

const pieceLength = Options.text("piece-length").pipe(
  Options.withPseudoName("SIZE"),
  Options.withDescription("Piece size: a power of two from 16K to 256M, as bytes or with K/M (256K, 1M, 2097152); default: chosen for about 1000-2000 pieces"),
  Options.mapEffect((text) =>
    Either.match(Format.parseSize(text), {
      onLeft: (reason) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--piece-length: ${reason}`))),
      onRight: Effect.succeed
    })
  ),
  Options.optional
)

/** The `create` command. */
export const command = Command.make(
  "create",
  {
    path: Args.path({ name: "path" }).pipe(Args.withDescription("The file or directory to share")),
    trackers: Options.text("tracker").pipe(
      Options.withAlias("t"),
      Options.withPseudoName("URL[,URL...]"),
      Options.withDescription("Add a tracker tier: repeat -t for more tiers (tried in order); comma-separated URLs form one tier (tried in random order)"),
      Options.repeated
    ),
    output: Options.file("output").pipe(
      Options.withAlias("o"),
      Options.withDescription("Where to write the torrent (default: <name>.torrent in the current directory)"),
      Options.optional
    ),
    pieceLength,
    private: Options.boolean("private").pipe(Options.withDescription("Mark the torrent private (BEP 27): peers only from its trackers")),
    comment: Options.text("comment").pipe(Options.withDescription("A comment stored in the torrent"), Options.optional),
    webSeeds: Options.text("web-seed").pipe(
      Options.withPseudoName("URL"),
      Options.withDescription("Add an HTTP web seed (BEP 19); repeatable"),
      Options.repeated
    ),
    noDate: Options.boolean("no-date").pipe(Options.withDescription("Leave the creation date out (same input, same torrent bytes)")),
    force: Options.boolean("force").pipe(Options.withDescription("Overwrite the output file if it exists")),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object on stdout instead"))
  },
  (options) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const output = nodePath.resolve(Option.getOrElse(options.output, () => defaultOutput(options.path)))
      const refuse = new CommandError({
        problem: `${output} already exists`,
        remedy: "pass --force to overwrite it, or choose another file with -o",
        exitCode: ExitCode.FileSystem
      })
      // Checked before hashing, which may take minutes; the exclusive write below closes the race.
      if (!options.force && (yield* fs.exists(output))) return yield* refuse
      yield* fs.access(nodePath.dirname(output), { writable: true })

      const progress = yield* Progress.make({ label: "hashing" })
      const { metainfo, torrent } = yield* Create.make(
        {
          path: options.path,
          trackers: trackerTiers(options.trackers),
          private: options.private,
          webSeeds: options.webSeeds,
          ...(Option.isSome(options.pieceLength) ? { pieceLength: options.pieceLength.value } : {}),
          ...(Option.isSome(options.comment) ? { comment: options.comment.value } : {}),
          ...(options.noDate ? { creationDate: null } : {})
        },
        ({ hashedBytes, totalBytes }) => progress.update(hashedBytes, totalBytes)
      )
      yield* progress.finish
      yield* fs.writeFile(output, torrent, { flag: options.force ? "w" : "wx" }).pipe(
        Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "AlreadyExists", () => refuse)
      )

      const infoHash = InfoHash.toHex(metainfo.infoHash)
      const magnet = Magnet.format({
        infoHash: metainfo.infoHash,
        name: metainfo.info.name,
        trackers: metainfo.trackers.flat(),
        peers: [],
        webSeeds: metainfo.urlList,
        select: undefined
      })
      const { info } = metainfo
      yield* Console.log(
        options.json
          ? JSON.stringify(
            { infoHash, output, magnet, pieceLength: info.pieceLength, pieceCount: info.pieceCount, totalLength: info.totalLength },
            null,
            2
          )
          : [
            `info-hash:  ${infoHash}`,
            `torrent:    ${output}`,
            `content:    ${info.files.length} file${info.files.length === 1 ? "" : "s"}, ${Format.bytes(info.totalLength)} in ${info.pieceCount} pieces of ${Format.bytes(info.pieceLength)}`,
            `magnet:     ${magnet}`
          ].join("\n")
      )
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Make a .torrent of a file or directory."))
