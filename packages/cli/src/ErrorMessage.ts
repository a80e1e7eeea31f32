/**
 * Turns whatever a command failed with into the one line a user sees,
 * `bitfiber: <what went wrong> — <what to do>`, and the exit code (ExitCode.ts).
 * Every error the CLI can meet is mapped here, in one place; anything unknown is a bug (exit 1).
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import { Error as PlatformError } from "@effect/platform"
import { Create, Magnet, Metainfo, MetadataFetcher, Network, Session, Storage, Torrent } from "@bitfiber/core"
import { Cause, Exit, Option } from "effect"
import { CommandError } from "./CommandError.js"
import * as ExitCode from "./ExitCode.js"
import * as Format from "./ui/Format.js"
import { InputError } from "./Input.js"

/** What to tell the user about a failure, and how the process ends. */
export interface Description {
  readonly problem: string
  readonly remedy: string
  readonly exitCode: ExitCode.ExitCode
}

/** The final report of a run: the line for stderr (none on success) and the exit code. */
export interface Report {
  readonly line: string | undefined
  readonly exitCode: ExitCode.ExitCode
}

/** The one-line form every error message takes. */
export const format = (description: Pick<Description, "problem" | "remedy">): string =>
  `bitfiber: ${description.problem} — ${description.remedy}`

const ANSI = /\x1b\[[0-9;]*m/g

/** @effect/cli words its errors as a styled help document; we want its text on one line. */
const plainText = (doc: HelpDoc.HelpDoc): string =>
  HelpDoc.toAnsiText(doc).replace(ANSI, "").replace(/\s+/g, " ").trim()

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1)

const usage = (error: ValidationError.ValidationError): Description => ({
  problem: "error" in error ? lowerFirst(plainText(error.error)) : "invalid command line",
  remedy: "run 'bitfiber --help' or 'bitfiber <command> --help' for usage",
  exitCode: ExitCode.Usage
})

const errnoCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

const fileSystem = (error: PlatformError.PlatformError): Description => {
  const io = (problem: string, remedy: string): Description => ({ problem, remedy, exitCode: ExitCode.FileSystem })
  if (error._tag === "BadArgument") return io(`${error.method}: ${error.description ?? "bad argument"}`, "check the path")
  const path = error.pathOrDescriptor === undefined ? "" : `: ${String(error.pathOrDescriptor)}`
  switch (errnoCode(error.cause)) {
    case "ENOSPC":
    case "EDQUOT":
      return io(`no space left on the device${path}`, "free some space or write somewhere else")
    case "EISDIR":
      return io(`is a directory${path}`, "give the path of a file")
    case "ENOTDIR":
      return io(`a part of the path is not a directory${path}`, "check the path")
    case "EROFS":
      return io(`read-only file system${path}`, "write somewhere else")
  }
  switch (error.reason) {
    case "NotFound":
      return io(`no such file or directory${path}`, "check the path")
    case "PermissionDenied":
      return io(`permission denied${path}`, "check the permissions of the file and its directory")
    case "AlreadyExists":
      return io(`already exists${path}`, "remove it or choose another name")
    default:
      return io(`${error.method} failed${path}: ${error.description ?? error.reason}`, "check the path and the disk")
  }
}

const invalid = (problem: string, remedy: string): Description => ({ problem, remedy, exitCode: ExitCode.InvalidInput })

const NOT_A_TORRENT = "check the file is a .torrent (not an HTML page or the payload itself) or pass a magnet link"

const metainfo = (error: Metainfo.MetainfoError, input: string | undefined): Description => {
  const source = input === undefined ? "" : `${input}: `
  switch (error.reason) {
    case "Bencode":
    case "NotADictionary":
      return invalid(`not a torrent file: ${source}${error.message}`, NOT_A_TORRENT)
    case "UnsupportedVersion":
      return invalid(`unsupported torrent: ${source}${error.message}`, "use a v1 or hybrid v1/v2 torrent of the same content")
    default:
      return invalid(`invalid torrent file: ${source}${error.message}`, "the file is damaged or was made by a broken tool; get a fresh copy")
  }
}

const magnet = (error: Magnet.MagnetError): Description =>
  invalid(
    `invalid magnet link: ${error.message}`,
    error.reason === "NotMagnet" || error.reason === "TooLong"
      ? "pass a magnet:?xt=urn:btih:... link or a .torrent file"
      : "check the link is complete, and quote it in single quotes so the shell keeps the parts after '&'"
  )

const input = (error: InputError): Description => {
  switch (error.cause._tag) {
    case "MetainfoError":
      return metainfo(error.cause, error.input)
    case "MagnetError":
      return magnet(error.cause)
    case "FileTooLarge":
      return invalid(
        `not a torrent file: ${error.input}: ${Format.bytes(error.cause.size)} is larger than any torrent file (limit ${Format.bytes(error.cause.limit)})`,
        `${NOT_A_TORRENT}; to make a torrent of it, run 'bitfiber create'`
      )
  }
}

const create = (error: Create.CreateError): Description => {
  switch (error.reason) {
    case "NotFound":
      return { problem: `no such file or directory: ${error.path ?? error.message}`, remedy: "check the path", exitCode: ExitCode.FileSystem }
    case "Io":
      return { problem: error.message, remedy: "check the files are readable", exitCode: ExitCode.FileSystem }
    case "FileChanged":
      return { problem: error.message, remedy: "run create again once nothing is writing to the files", exitCode: ExitCode.FileSystem }
    case "InvalidOption":
      return { problem: error.message, remedy: "run 'bitfiber create --help' for the accepted values", exitCode: ExitCode.Usage }
    case "Empty":
      return invalid(`nothing to share: ${error.message}`, "point create at a file or a directory with data in it")
    case "UnsupportedFile":
    case "SymlinkLoop":
      return invalid(error.message, "a torrent holds only regular files and directories: leave it out")
    case "InvalidTorrent":
      return invalid(error.message, "rename the files the message names")
  }
}

const storage = (error: Storage.StorageError): Description => ({
  problem: error.message,
  remedy:
    error.reason === "NoSpace"
      ? "free some space (or download elsewhere with -o), then run the same command again: it resumes"
      : error.reason === "Permission"
        ? "check the permissions of the download directory, then run the same command again"
        : "check the download directory and the disk, then run the same command again: it resumes",
  exitCode: ExitCode.FileSystem
})

const engine = (error: Torrent.TorrentError | Session.AddError | Network.NetworkError | MetadataFetcher.MetadataError): Description => {
  switch (error._tag) {
    case "TorrentError":
      return error.cause !== undefined
        ? storage(error.cause)
        : { problem: error.message, remedy: "run the command again", exitCode: ExitCode.Internal }
    case "AddError":
      if (error.cause instanceof Storage.StorageError) return storage(error.cause)
      if (error.cause instanceof Metainfo.MetainfoError) return metainfo(error.cause, undefined)
      return { problem: error.message, remedy: "check the torrent and the download directory", exitCode: ExitCode.InvalidInput }
    case "NetworkError":
      return {
        problem: `${error.reason === "Listen" ? "could not listen on" : "network failure at"} ${error.address}${error.cause instanceof Error ? `: ${error.cause.message}` : ""}`,
        remedy: error.reason === "Listen" ? "pass --port 0 (any free port) or another port" : "check the address and the network",
        exitCode: ExitCode.Network
      }
    case "MetadataError":
      return {
        problem: error.message,
        remedy: "check the magnet link's trackers and peers are reachable, or pass --peer host:port, or use the .torrent file",
        exitCode: ExitCode.Network
      }
  }
}

/** Describes one failure value: our own errors, @effect/cli's, the platform's and the engine's. */
export const describe = (error: unknown): Description => {
  if (error instanceof CommandError) return error
  if (error instanceof InputError) return input(error)
  if (error instanceof Metainfo.MetainfoError) return metainfo(error, undefined)
  if (error instanceof Magnet.MagnetError) return magnet(error)
  if (error instanceof Create.CreateError) return create(error)
  if (error instanceof Storage.StorageError) return storage(error)
  if (
    error instanceof Torrent.TorrentError || error instanceof Session.AddError ||
    error instanceof Network.NetworkError || error instanceof MetadataFetcher.MetadataError
  ) return engine(error)
  if (ValidationError.isValidationError(error)) return usage(error)
  if (PlatformError.isPlatformError(error)) return fileSystem(error)
  return internal(error)
}

const internal = (error: unknown): Description => ({
  problem: `internal error: ${error instanceof Error ? error.message : String(error)}`,
  remedy: "this is a bug; please report it with the command you ran (set BITFIBER_DEBUG=1 for details)",
  exitCode: ExitCode.Internal
})

/** The report for a finished run; `debug` appends the full cause (stack traces) after the line. */
export const fromExit = (exit: Exit.Exit<unknown, unknown>, options?: { readonly debug?: boolean }): Report => {
  if (Exit.isSuccess(exit)) return { line: undefined, exitCode: ExitCode.Ok }
  const cause = exit.cause
  if (Cause.isInterruptedOnly(cause)) return { line: "bitfiber: interrupted", exitCode: ExitCode.Interrupted }
  const description = Option.match(Cause.failureOption(cause), {
    onSome: describe,
    onNone: () => internal(Option.getOrUndefined(Cause.dieOption(cause)) ?? Cause.pretty(cause))
  })
  const details = options?.debug === true ? `\n${Cause.pretty(cause)}` : ""
  return { line: `${format(description)}${details}`, exitCode: description.exitCode }
}
