/**
 * The results directory: how test workers hand runs and capture progress to a reporter in
 * another process. The reporter creates it and names it in HEAPSPEC_RESULTS_DIR before the
 * workers start (they inherit the variable, as pytest-memray's xdist workers do); each worker
 * writes one file per claim and one per capture under way. Jest's only channel for runs;
 * both reporters' channel for progress.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CaptureStart } from '../run-events.js'
import type { RunRef } from './saved-runs.js'

/** The environment variable naming the results directory. */
export const RESULTS_DIR_ENV = 'HEAPSPEC_RESULTS_DIR'

/** A capture under way, with the test that started it. */
export interface RunningCapture extends CaptureStart {
  test: string | null
}

/** Writes a file whole or not at all, so a reader polling the directory never sees half of one. */
function writeAtomically(file: string, text: string): void {
  const partial = `${file}.${randomUUID()}.partial`
  writeFileSync(partial, text)
  renameSync(partial, file)
}

/** A fresh results directory. */
export function createResultsDir(): string {
  return mkdtempSync(join(tmpdir(), 'heapspec-results-'))
}

/** Files a test's claim on a run. */
export function writeRunRef(dir: string, ref: RunRef): void {
  // Named at random: Jest loads this module afresh for each test file a worker runs, so no counter survives.
  writeAtomically(join(dir, `ref-${randomUUID()}.json`), JSON.stringify(ref))
}

/** Every claim filed so far. */
export function readRunRefs(dir: string): RunRef[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith('ref-') && name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as RunRef)
}

/** Files a capture that started. */
export function writeCaptureStart(dir: string, capture: RunningCapture): void {
  writeAtomically(join(dir, `capture-${capture.capture}.json`), JSON.stringify(capture))
}

/** Removes a capture that ended. */
export function removeCaptureStart(dir: string, capture: string): void {
  rmSync(join(dir, `capture-${capture}.json`), { force: true })
}

/** The captures under way. */
export function readCaptures(dir: string): RunningCapture[] {
  const found: RunningCapture[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return found
  }
  for (const name of names) {
    if (!name.startsWith('capture-') || !name.endsWith('.json')) continue
    try {
      found.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as RunningCapture)
    } catch {
      // ended (removed) between the listing and the read
    }
  }
  return found
}
