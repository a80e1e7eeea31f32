#!/usr/bin/env node
import "../dist/bitfiber.mjs"
