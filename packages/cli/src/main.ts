/**
 * The `bitfiber` executable: builds the command tree, runs it on Node, and turns every
 * outcome into one line on stderr and a documented exit code (see ExitCode.ts).
 */
import { Command } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { readFileSync } from "node:fs"
import * as Create from "./commands/create.js"
import * as Demo from "./commands/demo.js"
import * as Download from "./commands/download.js"
import * as Info from "./commands/info.js"
import * as Seed from "./commands/seed.js"
import * as Tracker from "./commands/tracker.js"
import * as ErrorMessage from "./ErrorMessage.js"

// src/ and dist/ are both one level below the package root.
const version: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

/** The root command; to add a command, write `commands/<name>.ts` exporting `command` and list it here. */
const bitfiber = Command.make("bitfiber").pipe(
  Command.withDescription("A BitTorrent client: inspect, create, download and seed torrents."),
  Command.withSubcommands([Info.command, Create.command, Download.command, Seed.command, Tracker.command, Demo.command])
)

const cli = Command.run(bitfiber, { name: "bitfiber", version })

// @effect/cli prints its own multi-line report of a bad command line through Console.error
// before failing; we report that failure ourselves in one line, so its copy is dropped here.
// Commands write their stderr output (progress, warnings) through ui/StatusLine, not Console.
const withoutCliErrorReport = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Console.consoleWith((console) => Effect.withConsole(effect, { ...console, error: () => Effect.void }))

cli(Download.normalizeArgs(process.argv)).pipe(
  withoutCliErrorReport,
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const report = ErrorMessage.fromExit(exit, { debug: process.env["BITFIBER_DEBUG"] === "1" })
      if (report.line !== undefined) process.stderr.write(`${report.line}\n`)
      onExit(report.exitCode)
    }
  })
)
