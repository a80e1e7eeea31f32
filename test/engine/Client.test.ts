import { Client } from "@bitfiber/core"
import { TestTorrent } from "@bitfiber/core/testing"
import { describe, expect, it } from "vitest"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { mkdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"

describe("the Promise facade", () => {
  it("downloads from a seeding client and reports progress through an async iterator", async () => {
    const test = TestTorrent.make({ files: [{ path: "payload.bin", length: 1_000_000 }], pieceLength: 64 * 1024 })
    const seedDir = await mkdtemp(Path.join(tmpdir(), "bitfiber-client-"))
    const leechDir = await mkdtemp(Path.join(tmpdir(), "bitfiber-client-"))
    mkdirSync(seedDir, { recursive: true })
    writeFileSync(Path.join(seedDir, "payload.bin"), test.content)
    const seeder = await Client.createClient({ listenHost: "127.0.0.1", port: 0 })
    const leecher = await Client.createClient({ listenHost: "127.0.0.1", port: 0 })
    try {
      const seeding = await seeder.add(test.torrent, { directory: seedDir })
      await seeding.done()
      const download = await leecher.add(test.torrent, { directory: leechDir, peers: [{ host: "127.0.0.1", port: seeder.port }] })
      let last = 0
      for await (const progress of download.updates()) {
        expect(progress.verifiedBytes).toBeGreaterThanOrEqual(last)
        last = progress.verifiedBytes
        if (progress.state === "seeding") break
      }
      await download.done()
      expect(last).toBe(test.content.length)
      expect(Buffer.compare(await readFile(Path.join(leechDir, "payload.bin")), Buffer.from(test.content))).toBe(0)
    } finally {
      await leecher.close()
      await seeder.close()
      await rm(seedDir, { recursive: true, force: true })
      await rm(leechDir, { recursive: true, force: true })
    }
  })
})
