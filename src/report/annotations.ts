/** GitHub Actions annotations: one `::error` per leak, at the line of the user's code that allocated it. */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Frame, LeakKind } from '../model/types.js'
import { projectPath, testLabel, type RecordedRun } from './saved-runs.js'
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
  const leaks = new Map<string, { location: string; title: string; message: string; tests: Set<string>; runs: Set<number> }>()
  // leaks past the ones annotated are only counted
  const unannotated = new Set<string>()
  runs.forEach(({ run, tests }, r) => {
    const wholeRun = tests.filter((t) => t.leaks === null).map((t) => printable(testLabel(t)))
    const byRecord = new Map<number, string[]>()
    for (const t of tests) {
      for (const i of t.leaks ?? []) {
        const labels = byRecord.get(i) ?? []
        byRecord.set(i, labels)
        labels.push(printable(testLabel(t)))
      }
    }
    run.leaks.forEach((record, index) => {
      if (!options.kinds.includes(record.kind)) return
      const inProject = (f: Frame): boolean => {
        if (!f.file || f.line === null) return false
        const abs = resolve(options.root, f.file)
        return projectPath(abs, options.root) !== abs && exists(abs)
      }
      // The user's frames first: a libc frame's `string/strdup.c` may match a file of the project by chance.
      const user = record.stack.findIndex((f) => isUserFrame(f) && inProject(f))
      const at = user >= 0 ? user : record.stack.findIndex(inProject)
      const frame = at >= 0 ? record.stack[at] : undefined
      // names and paths come from saved runs: no control character of theirs reaches the log
      const location = frame ? `file=${escapeProperty(printable(projectPath(resolve(options.root, frame.file!), workspace)))},line=${escapeProperty(String(frame.line))},` : ''
      const head = `${formatAmount(record)} ${record.blocks === 1 ? 'is' : 'are'} ${KIND_WORDS[record.kind]}${record.test === null ? '' : ` in test case "${printable(record.test)}"`} of ${printable(run.program.command.join(' '))}`
      // From the annotated frame on, the user's frames: libc's start-up frames say nothing here.
      const from = record.stack.slice(Math.max(at, 0))
      const shown = [from[0], ...from.slice(1).filter(isUserFrame)].filter((f) => f !== undefined).slice(0, MAX_FRAMES)
      const message = [head, ...shown.map((f, i) => `  ${i === 0 ? 'at' : 'by'} ${printable(formatFrame(f))}`)].join('\n')
      const key = JSON.stringify([location, message])
      let leak = leaks.get(key)
      if (!leak) {
        if (leaks.size >= MAX_ANNOTATIONS) {
          unannotated.add(key)
          return
        }
        leak = { location, title: `heapspec: memory ${KIND_WORDS[record.kind]}`, message, tests: new Set<string>(), runs: new Set<number>() }
        leaks.set(key, leak)
      }
      // each run once per leak: the same leak many times over in one run is one run, and costs no more
      if (!leak.runs.has(r)) {
        leak.runs.add(r)
        for (const label of wholeRun) leak.tests.add(label)
      }
      for (const label of byRecord.get(index) ?? []) leak.tests.add(label)
    })
  })
  const lines = [...leaks.values()].map((leak) => {
    const runs = leak.runs.size > 1 ? [`(in ${leak.runs.size} runs)`] : []
    const listed = [...leak.tests].sort()
    const tests = listed.length > 0 ? [`Tests: ${listed.slice(0, MAX_FRAMES * 5).join('; ')}${listed.length > MAX_FRAMES * 5 ? `; and ${listed.length - MAX_FRAMES * 5} more` : ''}`] : []
    return `::error ${leak.location}title=${escapeProperty(leak.title)}::${escapeData([leak.message, ...runs, ...tests].join('\n'))}`
  })
  const more = unannotated.size
  if (more > 0) lines.push(`heapspec: ${more.toLocaleString('en-US')} more leak${more === 1 ? '' : 's'} not annotated (GitHub shows the first ${MAX_ANNOTATIONS}); the HTML report lists them all.`)
  return lines
}
