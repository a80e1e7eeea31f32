/**
 * The `bitfiber` command tree and how a command line runs through it, without the process
 * around it (main.ts adds Node and the exit code), so tests can run it in-process.
 *
 * To add a command: write `commands/<name>.ts` exporting `command`, and list it in `command` below.
 */
import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { readFileSync } from "node:fs"
import * as Create from "./commands/create.js"
import * as Demo from "./commands/demo.js"
import * as Download from "./commands/download.js"
import * as Info from "./commands/info.js"
import * as Seed from "./commands/seed.js"
import * as Tracker from "./commands/tracker.js"

/** The package version (src/ and dist/ are both one level below the package root). */
export const version: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

/** The root command and its subcommands. */
export const command = Command.make("bitfiber").pipe(
  Command.withDescription("A BitTorrent client: inspect, create, download and seed torrents."),
  Command.withSubcommands([Info.command, Create.command, Download.command, Seed.command, Tracker.command, Demo.command])
)

const cli = Command.run(command, { name: "bitfiber", version })

// @effect/cli prints its own multi-line report of a bad command line through Console.error
// before failing; we report that failure ourselves in one line, so its copy is dropped here.
// Commands write their stderr output (progress, warnings) through ui/StatusLine, not Console.
const withoutCliErrorReport = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Console.consoleWith((console) => Effect.withConsole(effect, { ...console, error: () => Effect.void }))

/** Runs a command line (`process.argv`: the node binary and script first); stdout through Console. */
export const run = (argv: ReadonlyArray<string>) => cli(Download.normalizeArgs(argv)).pipe(withoutCliErrorReport)
