/**
 * GitHub Actions annotations: one per memory error, an `::error` at the bad call's line in the
 * user's code; then one per leak, at the line of the user's code that allocated it: an `::error`
 * for a leak a test's matcher failed on, a `::warning` for one the tests allowed or none checked
 * (answers.ts).
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Frame, LeakKind } from '../model/types.js'
import { answerRecords, type LeakStatus } from './answers.js'
import { errorHeadline, errorStory, memoryErrorRows } from './memory-errors.js'
import { projectPath, type RecordedRun } from './saved-runs.js'
import { formatAmount, formatFrame, KIND_WORDS } from './text.js'
import { printable } from './printable.js'
import { isUserFrame } from './user-frame.js'

/** Frames an annotation's message lists. */
const MAX_FRAMES = 6

/** Annotations given at most: GitHub shows only the first 50 error annotations of a job. */
export const MAX_ANNOTATIONS = 50

/** Where and how to annotate. */
export interface AnnotationOptions {
  /** The project root: frames' relative paths are relative to it. */
  root: string
  /** The repository checkout (GITHUB_WORKSPACE): annotation paths are relative to it. @default root */
  workspace?: string
  /** The kinds annotated (the failing ones). */
  kinds: readonly LeakKind[]
  /** Whether a file exists. @default fs.existsSync */
  exists?: (path: string) => boolean
}

/** A workflow command's message, escaped as the runner reads it. */
function escapeData(text: string): string {
  return text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A')
}

/** A workflow command's property value, escaped. */
function escapeProperty(text: string): string {
  return escapeData(text).replaceAll(':', '%3A').replaceAll(',', '%2C')
}

/**
 * The annotations of the runs' leaks of the given kinds. Each points at the first frame whose
 * source file exists in the project (libc's frames name sources like `libio/iogetdelim.c` that
 * are not in it), the user's frames first; a leak with no such frame is annotated without a
 * location, never dropped.
 * The same leak in several runs of one program (a program run by two test files, say) is one
 * annotation naming all their tests: GitHub shows only the first few annotations of a step.
 */
export function githubAnnotations(runs: RecordedRun[], options: AnnotationOptions): string[] {
  const existing = new Map<string, boolean>()
  const exists = (path: string): boolean => {
    let found = existing.get(path)
    if (found === undefined) existing.set(path, (found = (options.exists ?? existsSync)(path)))
    return found
  }
  const workspace = options.workspace ?? options.root
  const inProject = (f: Frame): boolean => {
    if (!f.file || f.line === null) return false
    const abs = resolve(options.root, f.file)
    return projectPath(abs, options.root) !== abs && exists(abs)
  }
  /** The frame to annotate (its index, -1: none) and its `file=..,line=..,` property. */
  const locate = (stack: Frame[]): { at: number; location: string } => {
    // The user's frames first: a libc frame's `string/strdup.c` may match a file of the project by chance.
    const user = stack.findIndex((f) => isUserFrame(f) && inProject(f))
    const at = user >= 0 ? user : stack.findIndex(inProject)
    const frame = at >= 0 ? stack[at] : undefined
    // names and paths come from saved runs: no control character of theirs reaches the log
    return { at, location: frame ? `file=${escapeProperty(printable(projectPath(resolve(options.root, frame.file!), workspace)))},line=${escapeProperty(String(frame.line))},` : '' }
  }
  /** From the annotated frame on, the user's frames: libc's start-up frames say nothing here. */
  const frameLines = (stack: Frame[], at: number): string[] => {
    const from = stack.slice(Math.max(at, 0))
    const shown = [from[0], ...from.slice(1).filter(isUserFrame)].filter((f) => f !== undefined).slice(0, MAX_FRAMES)
    return shown.map((f, i) => `  ${i === 0 ? 'at' : 'by'} ${printable(formatFrame(f))}`)
  }
  // Memory errors first: each fails its run, and GitHub shows only the first annotations.
  const errors = new Map<string, { location: string; title: string; message: string; files: Set<string> }>()
  for (const { testCase, files, error } of memoryErrorRows(runs)) {
    const { at, location } = locate(error.stack)
    const message = [`${printable(errorHeadline(error))} in ${printable(testCase)}`, ...frameLines(error.stack, at), ...errorStory(error).map((line) => `  ${printable(line)}`)].join('\n')
    const key = JSON.stringify([location, message])
    let annotation = errors.get(key)
    if (!annotation) {
      if (errors.size >= MAX_ANNOTATIONS) continue
      errors.set(key, (annotation = { location, title: `heapspec: memory error (${printable(error.kind)})`, message, files: new Set() }))
    }
    for (const f of files) annotation.files.add(printable(f))
  }
  const errorLines = [...errors.values()].map(({ location, title, message, files }) => {
    const named = [...files].sort()
    return `::error ${location}title=${escapeProperty(title)}::${escapeData([message, ...(named.length > 0 ? [`Run in: ${named.join(', ')}`] : [])].join('\n'))}`
  })
  const leaks = new Map<string, { location: string; title: string; message: string; tests: Record<LeakStatus, Set<string>>; runs: Set<number>; lists: Set<string[]> }>()
  // leaks past the ones annotated are only counted
  const unannotated = new Set<string>()
  runs.forEach((recorded, r) => {
    const { run } = recorded
    for (const { record, status, tests } of answerRecords(recorded)) {
      if (!options.kinds.includes(record.kind)) continue
      const { at, location } = locate(record.stack)
      const head = `${formatAmount(record)} ${record.blocks === 1 ? 'is' : 'are'} ${KIND_WORDS[record.kind]}${record.test === null ? '' : ` in test case "${printable(record.test)}"`} of ${printable(run.program.command.join(' '))}`
      const message = [head, ...frameLines(record.stack, at)].join('\n')
      const key = JSON.stringify([location, message])
      let leak = leaks.get(key)
      if (!leak) {
        if (leaks.size + errors.size >= MAX_ANNOTATIONS) {
          unannotated.add(key)
          continue
        }
        leak = { location, title: `heapspec: memory ${KIND_WORDS[record.kind]}`, message, tests: { failed: new Set(), tolerated: new Set(), unchecked: new Set() }, runs: new Set<number>(), lists: new Set() }
        leaks.set(key, leak)
      }
      // each run once per leak: the same leak many times over in one run is one run
      leak.runs.add(r)
      // a run made outside a test framework answers for its leaks itself, naming no framework test
      if (recorded.tests.length === 0) leak.tests[status].add('')
      else if (!leak.lists.has(tests)) {
        // a list shared by every record of a run (its whole-run claims) is read once per leak
        leak.lists.add(tests)
        for (const t of tests) leak.tests[status].add(printable(t))
      }
    }
  })
  const said: Record<LeakStatus, string> = { failed: 'Tests', tolerated: 'Allowed by', unchecked: 'Checked by no test; made in' }
  const lines = [...leaks.values()].map((leak) => {
    const runs = leak.runs.size > 1 ? [`(in ${leak.runs.size} runs)`] : []
    const tests = (['failed', 'tolerated', 'unchecked'] as const).flatMap((status) => {
      const named = [...leak.tests[status]].filter(Boolean).sort()
      const shown = named.slice(0, MAX_FRAMES * 5).join('; ')
      return named.length > 0 ? [`${said[status]}: ${shown}${named.length > MAX_FRAMES * 5 ? `; and ${named.length - MAX_FRAMES * 5} more` : ''}`] : []
    })
    // an error only where a test failed on the leak (or a run outside any framework has it); else a warning
    const command = leak.tests.failed.size > 0 ? 'error' : 'warning'
    return `::${command} ${leak.location}title=${escapeProperty(leak.title)}::${escapeData([leak.message, ...runs, ...tests].join('\n'))}`
  })
  lines.unshift(...errorLines)
  const more = unannotated.size
  if (more > 0) lines.push(`heapspec: ${more.toLocaleString('en-US')} more leak${more === 1 ? '' : 's'} not annotated (GitHub shows the first ${MAX_ANNOTATIONS}); the HTML report lists them all.`)
  return lines
}
