/**
 * The `bitfiber` executable: runs the command line on Node and turns every outcome into one
 * line on stderr and a documented exit code (ExitCode.ts). Commands are listed in Cli.ts.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { EventLoopScheduler } from "@bitfiber/core"
import { Effect } from "effect"
import * as Cli from "./Cli.js"
import * as ErrorMessage from "./ErrorMessage.js"

Cli.run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  // Progress lines, timers and Ctrl-C get a turn even while many peers keep the runtime busy.
  EventLoopScheduler.run,
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const report = ErrorMessage.fromExit(exit, { debug: process.env["BITFIBER_DEBUG"] === "1" })
      if (report.line !== undefined) process.stderr.write(`${report.line}\n`)
      onExit(report.exitCode)
    }
  })
)
