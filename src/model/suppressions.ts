/**
 * memcheck's suppression files, read and matched the way memcheck does, so a user's existing file
 * (and heapspec's defaults) mean the same on every backend. Pure: text in, matches out.
 *
 *   {
 *      name
 *      Memcheck:Leak
 *      match-leak-kinds: definite,possible
 *      fun:malloc            the allocator itself: a Leak suppression's stack starts there
 *      ...                   any number of frames, none included
 *      fun:make_*            `*` any run of characters, `?` one
 *      obj:*\/libc.so.6
 *      src:file.c:42
 *   }
 */
import { BadOptionError } from '../errors.js'
import type { LossSite } from './heap.js'
import { LEAK_KINDS, type Amount, type Frame, type LeakKind, type LeakRecord } from './types.js'

/** One frame line of a suppression: `fun:`, `obj:`, `src:`, or `...` (any number of frames). */
export interface SuppressionFrame {
  type: 'fun' | 'obj' | 'src' | '...'
  /** The glob (`*`, `?`); for `src:`, the file's glob, its line after a colon when given. */
  pattern: string
  line?: number
  /** For a `fun:` naming one C++ function by its mangled name: that name demangled, as heapspec's frames name functions. */
  demangled?: string
}

/** One suppression of a memcheck suppression file. */
export interface Suppression {
  name: string
  /** `Memcheck:Leak` and the like: only `Leak` suppressions apply to leaks. */
  kind: string
  /** The kinds it matches (`match-leak-kinds:`); every kind when the line is absent. */
  leakKinds: readonly LeakKind[]
  frames: SuppressionFrame[]
  /** The file it came from, for messages. */
  source: string
}

/** One frame of an allocation stack as a suppression is matched against it. */
export interface MatchFrame {
  /** The names this frame may be called by (demangled, mangled); several for an allocator heapspec cannot tell apart. */
  names: string[]
  object: string | null
  file: string | null
  line: number | null
}

/**
 * The allocators memcheck replaces, under the names memcheck gives them: a Leak suppression's first
 * frame is one of these. heapspec's stacks start at the allocator's caller, and a plain block does
 * not say which of the malloc family made it, so it may be any of these but realloc (a realloc'd
 * block says so).
 */
export const MALLOC_FAMILY = ['malloc', 'calloc', 'realloc', 'memalign', 'posix_memalign', 'aligned_alloc', 'valloc', 'pvalloc', 'reallocarray'] as const

/** C++ allocation functions, demangled as symbolizers name them, to the mangled names memcheck's suppressions use. */
const MANGLED_NEW: Record<string, string> = {
  'operator new(unsigned long)': '_Znwm',
  'operator new[](unsigned long)': '_Znam',
  'operator new(unsigned long, std::nothrow_t const&)': '_ZnwmRKSt9nothrow_t',
  'operator new[](unsigned long, std::nothrow_t const&)': '_ZnamRKSt9nothrow_t',
  'operator new(unsigned long, std::align_val_t)': '_ZnwmSt11align_val_t',
  'operator new[](unsigned long, std::align_val_t)': '_ZnamSt11align_val_t',
  'operator new(unsigned long, std::align_val_t, std::nothrow_t const&)': '_ZnwmSt11align_val_tRKSt9nothrow_t',
  'operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)': '_ZnamSt11align_val_tRKSt9nothrow_t',
}

/**
 * The allocator frame of a block: `allocator` is the outermost allocator frame heapspec dropped
 * from its stack (`operator new(unsigned long)`), `realloc` for a realloc, or null for a block from
 * the malloc family, which may be any of it.
 */
export function allocatorFrame(allocator: string | null): MatchFrame {
  if (allocator === null) return MALLOC_FRAME
  const names = allocator in MANGLED_NEW ? [MANGLED_NEW[allocator]!, allocator] : [allocator]
  return { names, object: null, file: null, line: null }
}

// a realloc'd block says so on every backend (`allocator` is 'realloc'): a plain one is none
const MALLOC_FRAME: MatchFrame = Object.freeze({ names: Object.freeze(MALLOC_FAMILY.filter((name) => name !== 'realloc')) as string[], object: null, file: null, line: null })

/** The frames a Leak suppression is matched against: the allocator, then the stack (caller first). */
export function matchFrames(allocator: string | null, stack: Frame[]): MatchFrame[] {
  return [allocatorFrame(allocator), ...stack.map((f) => ({ names: f.fn === null ? [] : [f.fn], object: f.object, file: f.file, line: f.line }))]
}

/** memcheck's glob: `*` any run of characters (none included), `?` exactly one; nothing else is special. */
export function globMatches(pattern: string, text: string): boolean {
  let p = 0
  let t = 0
  let star = -1
  let mark = 0
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++
      t++
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++
      mark = t
    } else if (star >= 0) {
      p = star + 1
      t = ++mark
    } else {
      return false
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++
  return p === pattern.length
}

/**
 * Each frame line's answers, by the text it was matched against (a name, an object, a file): a
 * run's records share names and objects, so a glob is matched once per text, not once per record.
 */
const answers = new WeakMap<SuppressionFrame, Map<string, boolean>>()

function answersOf(want: SuppressionFrame): Map<string, boolean> {
  let known = answers.get(want)
  if (!known) answers.set(want, (known = new Map()))
  return known
}

function frameMatches(want: SuppressionFrame, frame: MatchFrame): boolean {
  switch (want.type) {
    case 'fun': {
      const known = answersOf(want)
      for (const name of frame.names) {
        let matched = known.get(name)
        if (matched === undefined) known.set(name, (matched = globMatches(want.pattern, name) || (want.demangled !== undefined && name === want.demangled)))
        if (matched) return true
      }
      return false
    }
    case 'obj': {
      if (frame.object === null) return false
      const known = answersOf(want)
      let matched = known.get(frame.object)
      if (matched === undefined) known.set(frame.object, (matched = globMatches(want.pattern, frame.object)))
      return matched
    }
    case 'src': {
      const file = frame.file
      if (file === null) return false
      const known = answersOf(want)
      let matched = known.get(file)
      // memcheck names a source by its file name alone (no directory)
      if (matched === undefined) known.set(file, (matched = globMatches(want.pattern, file.slice(file.lastIndexOf('/') + 1)) || globMatches(want.pattern, file)))
      return matched && (want.line === undefined || want.line === frame.line)
    }
    default:
      return false
  }
}

/** Whether the suppression's frames match the stack from its innermost frame on; `...` stands for any number of frames. */
function framesMatch(want: SuppressionFrame[], stack: MatchFrame[], i = 0, j = 0): boolean {
  if (i === want.length) return true // a suppression need not name every frame
  if (want[i]!.type === '...') {
    for (let k = j; k <= stack.length; k++) if (framesMatch(want, stack, i + 1, k)) return true
    return false
  }
  if (j === stack.length) return false
  return frameMatches(want[i]!, stack[j]!) && framesMatch(want, stack, i + 1, j + 1)
}

/** The first Leak suppression that matches a loss record of `kind` with these frames (allocator first), if any. */
export function findSuppression(suppressions: readonly Suppression[], kind: LeakKind, frames: MatchFrame[]): Suppression | undefined {
  return leakSuppressions(suppressions).find((s) => s.leakKinds.includes(kind) && framesMatch(s.frames, frames))
}

/** The Leak suppressions of a list, in its order, found once per list. */
const leakOnes = new WeakMap<readonly Suppression[], readonly Suppression[]>()

function leakSuppressions(suppressions: readonly Suppression[]): readonly Suppression[] {
  let found = leakOnes.get(suppressions)
  if (!found) leakOnes.set(suppressions, (found = suppressions.filter((s) => /(^|,)Memcheck(,[^:]*)?:Leak$/.test(s.kind))))
  return found
}

function leakKindsLine(value: string, fail: (what: string) => never): LeakKind[] {
  const words = value.split(',').map((w) => w.trim())
  if (words.length === 1 && words[0] === 'all') return [...LEAK_KINDS]
  if (words.length === 1 && words[0] === 'none') return []
  const kinds: LeakKind[] = []
  for (const w of words) {
    if (!(LEAK_KINDS as readonly string[]).includes(w)) fail(`an unknown leak kind \`${w}\` (kinds: definite, indirect, possible, reachable, all, none)`)
    kinds.push(w as LeakKind)
  }
  return kinds
}

/** The `fun:` patterns that name one C++ function by its mangled name (no wildcard): what `withDemangled` needs demangled. */
export function mangledPatterns(suppressions: readonly Suppression[]): string[] {
  return [...new Set(suppressions.flatMap((s) => s.frames.filter((f) => f.type === 'fun' && /^_Z[^*?]*$/.test(f.pattern)).map((f) => f.pattern)))]
}

/**
 * The suppressions with each mangled `fun:` name also matching its demangled form (`demangle`: mangled
 * to demangled, from c++filt): memcheck's suppressions name C++ functions mangled, heapspec's frames
 * demangled.
 */
export function withDemangled(suppressions: Suppression[], demangle: ReadonlyMap<string, string>): Suppression[] {
  return suppressions.map((s) => ({
    ...s,
    frames: s.frames.map((f) => (f.type === 'fun' && demangle.has(f.pattern) && demangle.get(f.pattern) !== f.pattern ? { ...f, demangled: demangle.get(f.pattern)! } : f)),
  }))
}

/** Reads a memcheck suppression file's text; a malformed one is a bad option, naming the file and line. */
export function parseSuppressions(text: string, source: string): Suppression[] {
  const lines = text.split('\n')
  const out: Suppression[] = []
  let at = 0
  const fail = (what: string): never => {
    throw new BadOptionError(`heapspec: the suppression file ${source} has ${what} at line ${at}. Fix it as memcheck's manual describes ("Suppressing errors"), or remove it.`)
  }
  let current: { lines: string[] } | undefined
  for (const raw of lines) {
    at++
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (!current) {
      if (line !== '{') fail(`\`${line}\` outside a suppression (each starts with \`{\`)`)
      current = { lines: [] }
      continue
    }
    if (line !== '}') {
      current.lines.push(line)
      continue
    }
    const [name, kind, ...rest] = current.lines
    current = undefined
    if (name === undefined || kind === undefined) fail('a suppression without a name and a kind (Memcheck:Leak)')
    let leakKinds: LeakKind[] = [...LEAK_KINDS]
    const frames: SuppressionFrame[] = []
    for (const entry of rest) {
      if (entry.startsWith('match-leak-kinds:')) {
        leakKinds = leakKindsLine(entry.slice('match-leak-kinds:'.length).trim(), fail)
      } else if (entry === '...') {
        frames.push({ type: '...', pattern: '' })
      } else if (/^(fun|obj):/.test(entry)) {
        frames.push({ type: entry.slice(0, 3) as 'fun' | 'obj', pattern: entry.slice(4) })
      } else if (entry.startsWith('src:')) {
        const m = /^(.*):(\d+)$/.exec(entry.slice(4))
        frames.push(m ? { type: 'src', pattern: m[1]!, line: Number(m[2]) } : { type: 'src', pattern: entry.slice(4) })
      } else if (frames.length === 0 && !/:Leak$/.test(kind!)) {
        // the extra line of other kinds (a Param's system call): not a leak's
      } else {
        fail(`\`${entry}\` where a frame (fun:, obj:, src:, ...) was expected`)
      }
    }
    if (frames.length === 0 && /:Leak$/.test(kind!)) fail(`a suppression (${name}) with no frames`)
    out.push({ name: name!, kind: kind!, leakKinds, frames, source })
  }
  if (current) fail('a suppression not closed with `}` by the end of the file')
  return out
}

/**
 * A ready-to-paste suppression for a loss record, as memcheck's --gen-suppressions writes it: the
 * allocator first (`*alloc` for a block from the malloc family, which heapspec cannot tell apart;
 * memcheck reads it as any of them), then a `fun:` (else `obj:`) line per frame up to main.
 */
export function formatSuppression(kind: LeakKind, allocator: string | null, stack: Frame[]): string {
  const first = allocator === null ? '*alloc' : (MANGLED_NEW[allocator] ?? allocator)
  // memcheck's stacks end at main: a frame more would never match there
  const end = stack.findIndex((f) => f.fn === 'main' || f.fn === 'main()')
  const frames = (end >= 0 ? stack.slice(0, end + 1) : stack).map((f) => (f.fn !== null ? `fun:${f.fn}` : f.object !== null ? `obj:${f.object}` : '...'))
  return ['{', '   <insert_a_suppression_name_here>', '   Memcheck:Leak', `   match-leak-kinds: ${kind}`, `   fun:${first}`, ...frames.map((f) => `   ${f}`), '}'].join('\n')
}

/**
 * Whether a loss record (its kind, allocator and stack) is suppressed, remembered by what the
 * suppressions can see of it: its kind, allocator and each frame's function and object, and the
 * frames' files and lines only when a `src:` line reads them. Many records share that (sites
 * in one function), and the exit's records and each test case's are matched by one memo.
 */
function suppressor(suppressions: readonly Suppression[]): (kind: LeakKind, allocator: string | null, stack: Frame[]) => boolean {
  let memo = memos.get(suppressions)
  if (!memo) {
    const bySource = leakSuppressions(suppressions).some((s) => s.frames.some((f) => f.type === 'src'))
    memos.set(suppressions, (memo = { bySource, known: {}, names: new Map() }))
  }
  const { bySource, known, names } = memo
  // each kind, name, object and file by a number, and a record's numbers a path through a tree to
  // its answer: no key text is built for each of 100,000 records
  const step = (node: AnswerNode, text: string | number | null): AnswerNode => {
    let n = 0
    if (text !== null) {
      const known = names.get(text)
      if (known === undefined) names.set(text, (n = names.size + 1))
      else n = known
    }
    let next = node.next?.get(n)
    if (!next) (node.next ??= new Map()).set(n, (next = {}))
    return next
  }
  return (kind, allocator, stack) => {
    let node = step(step(known, kind), allocator)
    for (const f of stack) {
      node = step(step(node, f.fn), f.object)
      if (bySource) node = step(step(node, f.file), f.line)
    }
    return (node.found ??= findSuppression(suppressions, kind, matchFrames(allocator, stack)) !== undefined)
  }
}

/** A node of a suppressor's memo: the answer for the records whose numbers lead here, and the numbers after them. */
interface AnswerNode {
  found?: boolean
  next?: Map<number, AnswerNode>
}

const memos = new WeakMap<readonly Suppression[], { bySource: boolean; known: AnswerNode; names: Map<string | number, number> }>()

/** Loss records once suppressions have had their say: what is kept, and how much was suppressed. */
export interface SuppressedRecords {
  kept: LeakRecord[]
  suppressed: Amount
}

/**
 * Applies suppressions to loss sites (records with their allocator), as memcheck does to its loss
 * records; with `generate`, each kept record carries its ready-to-paste suppression.
 */
export function applySuppressions(sites: readonly LossSite[], suppressions: readonly Suppression[], generate: boolean): SuppressedRecords {
  const kept: LeakRecord[] = []
  const suppressed: Amount = { bytes: 0, blocks: 0 }
  const suppress = suppressions.length > 0 ? suppressor(suppressions) : undefined
  for (const { record, allocator } of sites) {
    if (suppress?.(record.kind, allocator, record.stack)) {
      suppressed.bytes += record.bytes
      suppressed.blocks += record.blocks
      continue
    }
    kept.push(generate ? { ...record, suppression: formatSuppression(record.kind, allocator, record.stack) } : record)
  }
  return { kept, suppressed }
}
