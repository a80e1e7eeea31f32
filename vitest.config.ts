import { defineConfig } from "vitest/config"

const conditions = ["@bitfiber/source", "import", "module", "node", "default"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@bitfiber/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Interop tests spawn real clients; keep file parallelism modest on a 2-core machine.
    maxWorkers: 2,
    minWorkers: 1
  }
})
