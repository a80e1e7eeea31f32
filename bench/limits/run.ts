/**
 * Benchmark: what this machine allows a Node.js BitTorrent client at best, measured in the same run
 * as the others so that their rates can be read as fractions of it:
 *
 * - sha1:  node:crypto SHA-1 over `--size` bytes fed in 1 MiB chunks (every downloaded piece is hashed);
 * - tcp:   one loopback TCP connection, node:net on both ends, the sender a separate node process
 *          writing 4 MiB buffers with back-pressure; timed at the receiver, first byte to last;
 * - write: sequential 1 MiB writes of `--size` bytes to a new file in the temp dir, then fsync.
 *
 * Each is measured `--rounds` times (default 3) and the best kept: a limit is what the machine can do.
 *
 *   pnpm bench limits [--size 1GiB] [--rounds 3]
 *
 * Writes bench/results/limits.json; the runner divides rates by the lowest limit that applies.
 */
import { spawn } from "node:child_process"
import { createHash, randomFillSync } from "node:crypto"
import * as fs from "node:fs"
import { createServer, type AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import * as Format from "../../packages/cli/src/ui/Format.js"
import * as Args from "../support/Args.js"
import * as Report from "../support/Report.js"
import type { Limit } from "../support/Report.js"

const chunk = 1024 * 1024

const sha1 = (bytes: number): number => {
  const buffer = randomFillSync(Buffer.alloc(chunk))
  const started = performance.now()
  const hash = createHash("sha1")
  for (let done = 0; done < bytes; done += chunk) hash.update(done + chunk <= bytes ? buffer : buffer.subarray(0, bytes - done))
  hash.digest()
  return Report.mib(bytes) / ((performance.now() - started) / 1000)
}

// The sender: connects, writes `size` bytes in 4 MiB buffers, waiting for 'drain' when the socket is full.
const sender = `
const net = require("node:net")
const [port, size] = process.argv.slice(1).map(Number)
const buffer = Buffer.alloc(4 * 1024 * 1024, 7)
const socket = net.connect({ host: "127.0.0.1", port }, () => {
  let sent = 0
  const pump = () => {
    while (sent < size) {
      const n = Math.min(buffer.length, size - sent)
      sent += n
      if (!socket.write(n === buffer.length ? buffer : buffer.subarray(0, n))) return socket.once("drain", pump)
    }
    socket.end()
  }
  pump()
})
`

const tcp = (bytes: number): Promise<number> =>
  new Promise((resolve, reject) => {
    let received = 0
    let first = 0
    const server = createServer((socket) => {
      socket.on("data", (data: Buffer) => {
        if (received === 0) first = performance.now()
        received += data.length
        if (received >= bytes) {
          const seconds = (performance.now() - first) / 1000
          socket.destroy()
          server.close()
          resolve(Report.mib(bytes) / seconds)
        }
      })
      socket.on("error", reject)
    })
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const port = (server.address() as AddressInfo).port
      const child = spawn(process.execPath, ["-e", sender, String(port), String(bytes)], { stdio: ["ignore", "inherit", "inherit"] })
      child.on("exit", (code) => {
        if (code !== 0) reject(new Error(`the TCP sender exited with ${code}`))
      })
    })
  })

const write = (bytes: number): number => {
  const buffer = randomFillSync(Buffer.alloc(chunk))
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bitfiber-bench-limits-")), "write.bin")
  try {
    const started = performance.now()
    const fd = fs.openSync(file, "w")
    for (let done = 0; done < bytes; done += chunk) fs.writeSync(fd, buffer, 0, Math.min(chunk, bytes - done))
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    return Report.mib(bytes) / ((performance.now() - started) / 1000)
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
}

const main = async () => {
  const bytes = Args.size("size", "1GiB")
  const rounds = Args.count("rounds", 3)
  console.error(`limits: ${Format.bytes(bytes)} each, best of ${rounds}; ${Report.load()}`)
  const runs: Record<Limit, Array<number>> = { sha1: [], tcp: [], write: [] }
  for (let round = 0; round < rounds; round++) {
    runs.sha1.push(sha1(bytes))
    runs.tcp.push(await tcp(bytes))
    runs.write.push(write(bytes))
  }
  // A limit is what the machine can do: the best round, the others having lost time to other work.
  const limits: Record<Limit, number> = { sha1: Math.max(...runs.sha1), tcp: Math.max(...runs.tcp), write: Math.max(...runs.write) }
  const what: Record<Limit, string> = {
    sha1: "SHA-1, node:crypto, 1 MiB updates",
    tcp: "loopback TCP, node:net, one connection",
    write: `sequential file write + fsync (${os.tmpdir()})`
  }
  console.log(`limits of this machine, ${Format.bytes(bytes)} each, best of ${rounds}; ${Report.load()}`)
  console.log(Report.table(
    ["limit", "MiB/s", "all rounds"],
    (Object.keys(limits) as Array<Limit>).map((key) => [`${key}: ${what[key]}`, Report.num(limits[key], 0), runs[key].map((v) => Report.num(v, 0)).join(" ")])
  ))
  const file = Report.write("limits", {
    sizeBytes: bytes,
    rounds,
    limits,
    runs,
    summary: (Object.keys(limits) as Array<Limit>).map((key) => ({ metric: `limit: ${what[key]}`, value: limits[key], unit: "MiB/s" }))
  })
  console.log(`results: ${file}`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
