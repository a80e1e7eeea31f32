import { defineConfig } from "vitest/config"
import base from "../../../vitest.config.js"

/** Runs work-in-progress suite files (`*.wip.ts`), which the default run does not pick up. */
export default defineConfig({ ...base, test: { ...base.test, include: ["test/reliability/**/*.wip.ts"] } })
