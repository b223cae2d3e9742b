#!/usr/bin/env node
// `heapspec`: the CLI (cli.ts, bundled as cli.cjs beside this file's build, dist/src/cli.js) run with V8's code cache (code-cache.ts).
import { fileURLToPath } from 'node:url'
import { runWithCodeCache } from './code-cache.js'

runWithCodeCache(fileURLToPath(new URL('./cli.cjs', import.meta.url)))
