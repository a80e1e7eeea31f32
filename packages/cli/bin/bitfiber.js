#!/usr/bin/env -S node --max-semi-space-size=2
// A 2 MiB young generation (V8 grows it to 16 MiB under a download's allocation rate): ~30 MiB
// less peak RSS, and no CPU cost measured (bench/download).
import "../dist/bitfiber.mjs"
