/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): the share of garbage collection, self time by
 * package (effect, bitfiber core, node internals), the functions with the most self time, and the
 * time under each bitfiber function nearest to the sampled frame (so Effect's runtime and GC-free
 * library time are billed to the bitfiber code that ran them).
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof packages/cli/bin/bitfiber.js download ...
 *   pnpm exec tsx bench/profile.ts /tmp/prof/CPU.*.cpuprofile [--top 25]
 */
import * as fs from "node:fs"
import { SourceMap, type SourceMapPayload } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Args from "./support/Args.js"
import * as Report from "./support/Report.js"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

type CallFrame = ProfileNode["callFrame"]

const sourceMaps = new Map<string, SourceMap | undefined>()

/** The frame's position in its original source, through the script's source map (the CLI is one bundle). */
const original = (frame: CallFrame): CallFrame => {
  if (!frame.url.startsWith("file://")) return frame
  const script = fileURLToPath(frame.url)
  if (!sourceMaps.has(script)) {
    const file = `${script}.map`
    sourceMaps.set(script, fs.existsSync(file) ? new SourceMap(JSON.parse(fs.readFileSync(file, "utf8")) as SourceMapPayload) : undefined)
  }
  const entry = sourceMaps.get(script)?.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry === undefined || !("originalSource" in entry)) return frame
  return {
    functionName: frame.functionName,
    url: `file://${path.resolve(path.dirname(script), entry.originalSource)}`,
    lineNumber: entry.originalLine,
    columnNumber: entry.originalColumn
  }
}

/** Where a function comes from, by its script's URL. */
const origin = (url: string): string => {
  if (url === "") return "(vm)"
  if (url.startsWith("node:")) return "node internals"
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  const own = /packages\/([^/]+)\//.exec(url)
  return own === null ? url : `@bitfiber/${own[1]}`
}

const summarize = (file: string, top: number) => {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, { ...node, callFrame: original(node.callFrame) }]))
  const selfMicros = new Map<number, number>()
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0)
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const label = ({ columnNumber, functionName, lineNumber, url }: CallFrame) =>
    url === "" ? functionName : `${functionName || "(anonymous)"}  ${url.replace(/^file:\/\/.*?(node_modules|packages)\//, "$1/")}:${lineNumber + 1}:${columnNumber + 1}`
  const functions = new Map<string, number>()
  const origins = new Map<string, number>()
  const nearestOwn = new Map<string, number>()
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame
    functions.set(label(frame), (functions.get(label(frame)) ?? 0) + micros)
    const where = frame.url === "" ? frame.functionName : origin(frame.url)
    origins.set(where, (origins.get(where) ?? 0) + micros)
    let own: number | undefined = id
    while (own !== undefined && !origin(byId.get(own)!.callFrame.url).startsWith("@bitfiber/")) own = parent.get(own)
    const owner = own === undefined ? `(no bitfiber frame: ${where})` : label(byId.get(own)!.callFrame)
    nearestOwn.set(owner, (nearestOwn.get(owner) ?? 0) + micros)
  }
  const percent = (micros: number) => Report.num((100 * micros) / total, 1)
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  const idle = selfMicros.size === 0 ? 0 : (origins.get("(idle)") ?? 0)
  console.log(`${file}: ${Report.num(total / 1e6)} s sampled, ${percent(idle)}% idle, ${percent(origins.get("(garbage collector)") ?? 0)}% GC`)
  console.log(Report.table(["origin", "self %"], sorted(origins).slice(0, 12).map(([name, micros]) => [name, percent(micros)])))
  console.log(Report.table(["function", "self %"], sorted(functions).slice(0, top).map(([name, micros]) => [name, percent(micros)])))
  console.log(Report.table(["nearest bitfiber function on the stack", "%"], sorted(nearestOwn).slice(0, top).map(([name, micros]) => [name, percent(micros)])))
}

for (const file of Args.positional()) summarize(file, Args.count("top", 25))
