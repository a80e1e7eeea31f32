/** `bitfiber tracker`: runs the embedded HTTP + UDP tracker for private swarms and tests. */
import { NodeNetwork, TrackerServer } from "@bitfiber/core"
import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"

/** The `tracker` command. */
export const command = Command.make(
  "tracker",
  {
    host: Options.text("host").pipe(Options.withDescription("address to listen on"), Options.withDefault("0.0.0.0")),
    port: Options.integer("port").pipe(Options.withDescription("HTTP port (0 = any free port)"), Options.withDefault(6969)),
    udpPort: Options.integer("udp-port").pipe(
      Options.withDescription("UDP port (default: the HTTP port; -1 = no UDP)"),
      Options.optional
    ),
    interval: Options.integer("interval").pipe(
      Options.withDescription("re-announce interval told to clients, in seconds"),
      Options.withDefault(TrackerServer.DEFAULT_INTERVAL)
    )
  },
  ({ host, interval, port, udpPort }) =>
    Effect.scoped(
      Effect.gen(function*() {
        const udp = udpPort._tag === "Some" ? udpPort.value : port
        const server = yield* TrackerServer.make({
          http: { host, port },
          ...(udp < 0 ? {} : { udp: { host, port: udp === port && port === 0 ? 0 : udp } }),
          interval
        }).pipe(Effect.provide(NodeNetwork.layer))
        if (server.http !== undefined) yield* Console.log(`HTTP tracker: ${server.http.announceUrl}`)
        if (server.udp !== undefined) yield* Console.log(`UDP tracker:  ${server.udp.announceUrl}`)
        yield* Console.error("serving until Ctrl-C")
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Run a BitTorrent tracker (HTTP and UDP, BEP 3/7/15/23, scrape) until interrupted."))
