/**
 * The torrent a command is pointed at: a `.torrent` file path or a magnet link, loaded and
 * parsed, with failures tagged by the input so the error message can name it.
 */
import { Magnet, Metainfo } from "@bitfiber/core"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Data, Effect, Either } from "effect"

/** A torrent file or magnet link that could not be parsed. */
export class InputError extends Data.TaggedError("InputError")<{
  /** The path or magnet link as the user gave it. */
  readonly input: string
  readonly cause: Metainfo.MetainfoError | Magnet.MagnetError | FileTooLarge
}> {}

/** A file far larger than any torrent file (probably the payload itself). */
export class FileTooLarge extends Data.TaggedError("FileTooLarge")<{
  readonly size: number
  readonly limit: number
}> {}

/** What a command was pointed at. */
export type Input =
  | { readonly _tag: "Torrent"; readonly path: string; readonly metainfo: Metainfo.Metainfo }
  | { readonly _tag: "Magnet"; readonly uri: string; readonly magnet: Magnet.Magnet }

/** Largest file read as a torrent: the bencode decoder's own default limit. */
export const MAX_TORRENT_FILE_BYTES = 64 * 1024 * 1024

// A path that happens to start with "magnet:" can still be given as ./magnet:...
const isMagnet = (argument: string): boolean => /^magnet:/i.test(argument.trim())

/** Loads `argument`: a magnet link is parsed as such, anything else is read as a `.torrent` file. */
export const load = (
  argument: string
): Effect.Effect<Input, InputError | PlatformError, FileSystem.FileSystem> =>
  isMagnet(argument)
    ? Either.match(Magnet.parse(argument), {
      onLeft: (cause) => Effect.fail(new InputError({ input: argument, cause })),
      onRight: (magnet) => Effect.succeed({ _tag: "Magnet", uri: argument, magnet } as const)
    })
    : Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const stat = yield* fs.stat(argument)
      // Checked before reading, so pointing at a 4 GiB payload by mistake costs nothing.
      if (stat.type === "File" && Number(stat.size) > MAX_TORRENT_FILE_BYTES) {
        return yield* new InputError({
          input: argument,
          cause: new FileTooLarge({ size: Number(stat.size), limit: MAX_TORRENT_FILE_BYTES })
        })
      }
      const bytes = yield* fs.readFile(argument)
      const metainfo = yield* Either.mapLeft(Metainfo.parse(bytes), (cause) => new InputError({ input: argument, cause }))
      return { _tag: "Torrent", path: argument, metainfo } as const
    })

