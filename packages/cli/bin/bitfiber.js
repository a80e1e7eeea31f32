#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=1048576 node --max-semi-space-size=2 --heap-growing-percent=20
// A 2 MiB young generation (V8 grows it to 16 MiB under a download's allocation rate): ~30 MiB
// less peak RSS. An old generation that grows by 20% between major GCs, not by V8's default
// factor (up to 4, picked from the GC's speed): 116 -> 92 MiB peak for a 512 MiB download.
// Neither costs CPU measurably (bench/download; alternating runs of a 512 MiB download).
// A fixed malloc trim threshold (glibc): by default, freeing one large block raises it to twice
// that block's size, and then freed memory at the top of the heap stays in the process. Fixed
// at 1 MiB, a 1 GiB download's peak RSS was 107 MiB instead of 118 (n=4, no CPU cost seen).
//
// The bundle is compiled through V8's code cache (Node 22 has module.enableCompileCache; 20 does
// not): from source, its 1.7 MB take ~140 ms and ~22 MiB of compiler memory that malloc keeps
// for the life of the process; from the cache, ~30 ms and next to none. The build writes the
// cache; a run that finds it missing, or made by another node or under other flags (V8 rejects
// it then), compiles from source and writes a new one as it exits, if it can.
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { constants, Script } from "node:vm"

const bundle = fileURLToPath(new URL("../dist/bitfiber.cjs", import.meta.url))
const cacheFile = `${bundle}.cache`

let source
try {
  source = readFileSync(bundle, "utf8")
} catch (error) {
  process.stderr.write(`bitfiber: cannot read ${bundle} (${error.code}): build it with \`pnpm build\`\n`)
  process.exit(1)
}
let cachedData
try {
  cachedData = readFileSync(cacheFile)
} catch {
  // No cache yet: compile from source, and write one at exit.
}

// The CommonJS wrapper goes on a line of its own, taken back by lineOffset: stack traces and the
// source map keep the bundle's own line and column numbers.
const script = new Script(`(function (exports, require, module, __filename, __dirname) {\n${source}\n})`, {
  filename: bundle,
  lineOffset: -1,
  cachedData,
  importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
})
if (cachedData === undefined || script.cachedDataRejected === true) {
  process.once("exit", () => {
    // After the run, so the cache also holds the functions compiled lazily while it ran.
    const partial = `${cacheFile}.${process.pid}`
    try {
      writeFileSync(partial, script.createCachedData())
      renameSync(partial, cacheFile)
    } catch {
      // A read-only install: every run compiles from source, which is only slower.
      rmSync(partial, { force: true })
    }
  })
}
const module = { exports: {} }
script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle))
