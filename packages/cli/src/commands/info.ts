/**
 * `bitfiber info <file.torrent | magnet-uri>`: what a torrent contains, for people or (`--json`)
 * for scripts. A magnet link shows only what the link itself says.
 */
import { type EncryptedHandshake, InfoHash, type Magnet, MetadataFetcher, Metainfo, Network, PeerId } from "@bitfiber/core"
import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect } from "effect"
import * as Engine from "../Engine.js"
import { sessionOptions } from "./download.js"
import * as StatusLine from "../ui/StatusLine.js"
import * as Input from "../Input.js"
import * as Format from "../ui/Format.js"

/** Files listed without `--all`. */
export const FILE_LIST_LIMIT = 50

/** The `--json` form of a torrent; its keys are stable, absent values are `null`. */
export const torrentJson = (metainfo: Metainfo.Metainfo) => ({
  type: "torrent" as const,
  infoHash: InfoHash.toHex(metainfo.infoHash),
  name: metainfo.info.name,
  totalLength: metainfo.info.totalLength,
  pieceLength: metainfo.info.pieceLength,
  pieceCount: metainfo.info.pieceCount,
  private: metainfo.info.private,
  files: metainfo.info.files.map((file) => ({ path: file.rawPath.join("/"), length: file.length, padding: file.padding })),
  trackers: metainfo.trackers,
  urlList: metainfo.urlList,
  comment: metainfo.comment ?? null,
  createdBy: metainfo.createdBy ?? null,
  creationDate: metainfo.creationDate?.toISOString() ?? null
})

/** The `--json` form of a magnet link: trackers as tiers of one, like a torrent's. */
export const magnetJson = (magnet: Magnet.Magnet) => ({
  type: "magnet" as const,
  infoHash: InfoHash.toHex(magnet.infoHash),
  name: magnet.name ?? null,
  trackers: magnet.trackers.map((url) => [url]),
  peers: magnet.peers.map(Network.formatAddress),
  webSeeds: magnet.webSeeds
})

const field = (label: string, value: string) => `${`${label}:`.padEnd(12)} ${Format.printable(value)}`

const list = (label: string, items: ReadonlyArray<string>): Array<string> =>
  items.length === 0 ? [] : [`${label}:`, ...items.map((item) => `  ${Format.printable(item)}`)]

const tiers = (trackers: ReadonlyArray<ReadonlyArray<string>>): Array<string> =>
  trackers.length === 0
    ? [field("trackers", "none (DHT and peer exchange only)")]
    : ["trackers:", ...trackers.flatMap((tier, index) =>
      tier.map((url, position) => `${position === 0 ? `  tier ${index + 1}:` : ""}`.padEnd(10) + Format.printable(url))
    )]

const fileLines = (info: Metainfo.Info, all: boolean): Array<string> => {
  const files = info.files.filter((file) => !file.padding)
  const padding = info.files.length - files.length
  const shown = all ? files : files.slice(0, FILE_LIST_LIMIT)
  const header = `files (${files.length}${padding > 0 ? `, plus ${padding} padding` : ""}):`
  const rows = shown.map((file) => `  ${Format.bytes(file.length).padStart(10)}  ${Format.printable(file.path.join("/"))}`)
  const more = files.length - shown.length
  return [header, ...rows, ...(more > 0 ? [`  ... and ${more} more (--all lists them)`] : [])]
}

/** The human-readable description of a torrent. */
export const describeTorrent = (metainfo: Metainfo.Metainfo, all: boolean): string => {
  const { info } = metainfo
  return [
    field("name", info.name),
    field("info-hash", InfoHash.toHex(metainfo.infoHash)),
    field("size", `${Format.bytes(info.totalLength)} (${info.totalLength} bytes)`),
    field("pieces", `${info.pieceCount} x ${Format.bytes(info.pieceLength)}`),
    field("private", info.private ? "yes (trackers only: no DHT, no peer exchange)" : "no"),
    ...(metainfo.createdBy === undefined ? [] : [field("created by", metainfo.createdBy)]),
    ...(metainfo.creationDate === undefined ? [] : [field("created on", metainfo.creationDate.toISOString())]),
    ...(metainfo.comment === undefined ? [] : [field("comment", metainfo.comment)]),
    ...tiers(metainfo.trackers),
    ...list("web seeds", metainfo.urlList),
    ...fileLines(info, all)
  ].join("\n")
}

/** The human-readable description of a magnet link. */
export const describeMagnet = (magnet: Magnet.Magnet): string => {
  const json = magnetJson(magnet)
  return [
    field("name", magnet.name ?? "(not given)"),
    field("info-hash", json.infoHash),
    ...tiers(json.trackers),
    ...list("peers", json.peers),
    ...list("web seeds", json.webSeeds),
    "(files and sizes come with the metadata, fetched from peers when downloading)"
  ].join("\n")
}

/** Fetches a magnet link's metadata from its peers (BEP 9), for `--resolve`, under an encryption policy. */
const resolve = (magnet: Magnet.Magnet, timeoutSeconds: number, encryption: EncryptedHandshake.Policy) =>
  Effect.scoped(
    Effect.gen(function*() {
      const status = yield* StatusLine.make(StatusLine.stderr())
      yield* status.show(`fetching metadata from peers (up to ${timeoutSeconds}s)...`, true)
      const fetched = yield* MetadataFetcher.fetch({
        infoHash: magnet.infoHash,
        peerId: PeerId.generate(),
        port: 0,
        trackers: magnet.trackers.map((url) => [url]),
        peers: magnet.peers,
        encryption
      }).pipe(
        Effect.provide(Engine.services),
        Effect.timeoutFail({
          duration: Duration.seconds(timeoutSeconds),
          onTimeout: () =>
            new MetadataFetcher.MetadataError({ reason: "Timeout", message: `no peer sent the metadata in ${timeoutSeconds}s` })
        })
      )
      yield* status.done()
      const parsed = yield* Metainfo.parseInfo(fetched.infoBytes, magnet.infoHash)
      return { ...parsed, trackers: magnet.trackers.map((url) => [url]), urlList: magnet.webSeeds }
    })
  )

/** The `info` command. */
export const command = Command.make(
  "info",
  {
    input: Args.text({ name: "torrent-or-magnet" }).pipe(
      Args.withDescription("A .torrent file, or a magnet link (quote it: the shell treats & specially)")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object on stdout instead")),
    all: Options.boolean("all").pipe(Options.withDescription(`List every file, not only the first ${FILE_LIST_LIMIT}`)),
    resolve: Options.boolean("resolve").pipe(
      Options.withDescription("For a magnet link: fetch the metadata from its peers and trackers, then show the torrent")
    ),
    timeout: Options.integer("timeout").pipe(
      Options.withDescription("Seconds --resolve waits for the metadata"),
      Options.withDefault(60)
    ),
    encryption: sessionOptions.encryption
  },
  ({ all, encryption, input, json, resolve: shouldResolve, timeout }) =>
    Effect.gen(function*() {
      const loaded = yield* Input.load(input)
      const metainfo = loaded._tag === "Torrent"
        ? loaded.metainfo
        : shouldResolve
        ? yield* resolve(loaded.magnet, timeout, encryption)
        : undefined
      if (metainfo !== undefined) {
        return yield* Console.log(json ? JSON.stringify(torrentJson(metainfo), null, 2) : describeTorrent(metainfo, all))
      }
      if (loaded._tag === "Magnet") {
        yield* Console.log(json ? JSON.stringify(magnetJson(loaded.magnet), null, 2) : describeMagnet(loaded.magnet))
      }
    })
).pipe(Command.withDescription("Show what a .torrent file or magnet link contains (--resolve fetches a magnet's metadata)."))
