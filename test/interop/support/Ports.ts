/** Loopback ports for interop tests: free on both TCP and UDP, unlikely to collide across test files. */
import { createSocket } from "node:dgram"
import { connect, createServer } from "node:net"
import { Effect } from "effect"

/** A peer's listening address, e.g. `{ host: "127.0.0.1", port: 6881 }`. */
export interface PeerAddress {
  readonly host: string
  readonly port: number
}

// Below Linux's ephemeral range (32768-60999), so outgoing connections never take a port we handed out.
const low = 20000
const high = 32000
const issued = new Set<number>()

const tcpFree = (port: number) =>
  Effect.async<boolean>((resume) => {
    const server = createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

const udpFree = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = createSocket("udp4")
    socket.once("error", () => {
      socket.close()
      resume(Effect.succeed(false))
    })
    socket.bind({ address: "127.0.0.1", port, exclusive: true }, () => socket.close(() => resume(Effect.succeed(true))))
  })

/**
 * A port on 127.0.0.1 that is free for TCP and UDP right now. Ports are drawn at random from
 * 20000-31999 and never handed out twice by one test worker, so parallel test files rarely collide.
 */
export const freePort: Effect.Effect<number> = Effect.gen(function*() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low))
    if (issued.has(port)) continue
    issued.add(port)
    if ((yield* tcpFree(port)) && (yield* udpFree(port))) return port
  }
  return yield* Effect.dieMessage("no free loopback port after 200 attempts")
})

/** Whether 127.0.0.1:`port` accepts a TCP connection right now. */
export const canConnect = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = connect({ host: "127.0.0.1", port })
    let settled = false
    const done = (ok: boolean) => {
      if (settled) return
      settled = true
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.setTimeout(1000, () => done(false))
    return Effect.sync(() => socket.destroy())
  })
