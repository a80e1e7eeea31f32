/** Command-line flags shared by the benchmarks: `--name value` pairs and sizes such as `64MiB`. */
import { Either } from "effect"
import * as Format from "../../packages/cli/src/ui/Format.js"

/** The value after `--name`, or `fallback`. */
export const flag = (name: string, fallback: string, argv: ReadonlyArray<string> = process.argv): string => {
  const index = argv.indexOf(`--${name}`)
  return index >= 0 && argv[index + 1] !== undefined ? argv[index + 1]! : fallback
}

/** A size flag (`--size 1GiB`) in bytes; exits with status 2 on a malformed value. */
export const size = (name: string, fallback: string, argv: ReadonlyArray<string> = process.argv): number =>
  Either.getOrElse(Format.parseSize(flag(name, fallback, argv)), (reason) => {
    console.error(`--${name}: ${reason}`)
    return process.exit(2)
  })

/** A whole-number flag (`--rounds 3`); exits with status 2 on a malformed value. */
export const count = (name: string, fallback: number, argv: ReadonlyArray<string> = process.argv): number => {
  const value = Number(flag(name, String(fallback), argv))
  if (Number.isInteger(value) && value > 0) return value
  console.error(`--${name}: expected a positive whole number`)
  return process.exit(2)
}

/** The arguments that are neither flags nor flag values (benchmark names for the runner). */
export const positional = (argv: ReadonlyArray<string> = process.argv.slice(2)): ReadonlyArray<string> =>
  argv.filter((arg, i) => !arg.startsWith("--") && (i === 0 || !argv[i - 1]!.startsWith("--")))
