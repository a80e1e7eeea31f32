// Bundles the CLI into one file: loading one module instead of hundreds cuts start-up from
// about 2 s to about 0.5 s, which every command pays.
import { build } from "esbuild"

await build({
  entryPoints: [new URL("./src/main.ts", import.meta.url).pathname],
  outfile: new URL("./dist/bitfiber.mjs", import.meta.url).pathname,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  conditions: ["@bitfiber/source"],
  sourcemap: true,
  // Whitespace and syntax only: 2.5 MiB less to parse (~2.4 MiB less RSS), names kept for stacks and profiles.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
  // Bundled CommonJS dependencies call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
})
