import { SaxesParser } from 'saxes'
import { CaptureFailedError } from '../../errors.js'
import type { Frame, LeakKind, LeakRecord, MemoryError } from '../../model/types.js'
import { sourcePath } from '../frames.js'

/** What memcheck's `--xml=yes` output says about one run, in the model's types. */
export interface MemcheckXml {
  /** The pid memcheck ran the program as: it names the run's other output files (`%p`). */
  pid: number | null
  /** Memcheck reported the end of the run (status FINISHED): its leak check ran. */
  finished: boolean
  /** The document was read to its closing tag; `false` only for truncated output read with `allowTruncated`. */
  complete: boolean
  /** Loss records in memcheck's order (smallest first). */
  leaks: LeakRecord[]
  /** Memory errors in the order memcheck found them, one per distinct error (memcheck's `unique`). */
  errors: MemoryError[]
  /** The signal that killed the program, when memcheck saw one (`<fatal_signal>`). */
  fatalSignal: { number: number; name: string } | null
  /**
   * The errors of `errors` that are a free or realloc of a pointer that was no live block, each
   * with whether realloc made it (its innermost frame, valgrind's replacement, is realloc's): memcheck
   * counts every such call in its totals, which its xtree report leaves out (see `badReleases`).
   */
  badReleases: Map<MemoryError, { realloc: boolean }>
}

/** How to read one XML output. */
export interface MemcheckXmlOptions {
  /** The run's working directory: source paths inside it are shown relative to it. */
  cwd: string
  /** What the XML is (a file name), for error messages. */
  source: string
  /**
   * Return what was complete when the output stops early, instead of failing. For a run heapspec
   * killed itself: the errors memcheck had already written are real, the rest never happened.
   * @default false
   */
  allowTruncated?: boolean
}

/** One element of the document, kept only while its top-level ancestor is open. */
interface XmlNode {
  name: string
  text: string
  children: XmlNode[]
  line: number
  column: number
}

const LEAK_KINDS: Record<string, LeakKind> = {
  Leak_DefinitelyLost: 'definite',
  Leak_IndirectlyLost: 'indirect',
  Leak_PossiblyLost: 'possible',
  Leak_StillReachable: 'reachable',
}

const ERROR_KINDS: Record<string, string> = {
  InvalidFree: 'invalid-free',
  MismatchedFree: 'mismatched-free',
  InvalidRead: 'invalid-read',
  InvalidWrite: 'invalid-write',
  UninitCondition: 'uninitialised-value',
  UninitValue: 'uninitialised-value',
  Overlap: 'overlap',
}

/**
 * A loss record's text. Its direct bytes are only here: `<leakedbytes>` adds the indirect bytes
 * the block holds, which have loss records of their own. The optional `(+N)`-style groups are
 * the deltas of an incremental leak search.
 */
const LEAK_TEXT =
  /^([\d,]+)(?: \([+-][\d,]+\))?(?: \(([\d,]+)(?: \([+-][\d,]+\))? direct, ([\d,]+)(?: \([+-][\d,]+\))? indirect\))? bytes in ([\d,]+)(?: \([+-][\d,]+\))? blocks are /

/** memcheck's error kind as a kebab-case name: `InvalidJump` -> `invalid-jump`. */
export function errorKindName(kind: string): string {
  return ERROR_KINDS[kind] ?? kind.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/_/g, '-').toLowerCase()
}

/**
 * A frame in valgrind's own replacement code (malloc, free, operator new, memcpy, ...). Stacks
 * start at the caller of these, like the GDB backend's, so both name the user's line first.
 */
function isReplacementFrame(frame: XmlNode): boolean {
  return /vgpreload_/.test(childText(frame, 'obj') ?? '') || childText(frame, 'file') === 'vg_replace_malloc.c'
}

function child(node: XmlNode, name: string): XmlNode | undefined {
  return node.children.find((c) => c.name === name)
}

function childText(node: XmlNode, name: string): string | undefined {
  return child(node, name)?.text.trim()
}

/** Reads memcheck's `--xml=yes` output as a stream, one top-level element at a time. */
class MemcheckXmlReader {
  private readonly parser = new SaxesParser({ position: true })
  private readonly open: XmlNode[] = []
  private sawRoot = false
  private rootClosed = false
  private readonly result: MemcheckXml = { pid: null, finished: false, complete: false, leaks: [], errors: [], fatalSignal: null, badReleases: new Map() }
  /** Each error's `<unique>` id, for `<errorcounts>`, which closes the document. */
  private readonly uniques = new Map<string, MemoryError>()

  constructor(private readonly options: MemcheckXmlOptions) {
    this.parser.on('opentag', (tag) => this.onOpen(tag.name))
    this.parser.on('closetag', () => this.onClose())
    this.parser.on('text', (text) => this.onText(text))
    this.parser.on('cdata', (text) => this.onText(text))
  }

  write(chunk: string): void {
    try {
      this.parser.write(chunk)
    } catch (error) {
      throw this.wrap(error)
    }
  }

  end(): MemcheckXml {
    if (!this.rootClosed) {
      const where = `line ${this.parser.line}, column ${this.parser.column + 1}`
      if (this.options.allowTruncated) return this.result
      const inside = this.open.at(-1)
      throw new CaptureFailedError(
        this.sawRoot
          ? `heapspec: memcheck's XML output (${this.options.source}) is truncated: it ends at ${where} inside <${inside?.name ?? 'valgrindoutput'}>, without </valgrindoutput>. ` +
              `valgrind stopped before it finished writing; run with HEAPSPEC_DEBUG=1 to see its log.`
          : `heapspec: memcheck's XML output (${this.options.source}) is empty or has no <valgrindoutput> element (it ends at ${where}). ` +
              `valgrind did not get to run memcheck; run with HEAPSPEC_DEBUG=1 to see its log.`,
      )
    }
    try {
      this.parser.close()
    } catch (error) {
      throw this.wrap(error)
    }
    this.result.complete = true
    return this.result
  }

  private wrap(error: unknown): Error {
    if (error instanceof CaptureFailedError) return error
    const message = error instanceof Error ? error.message : String(error)
    // saxes prefixes "line:column: " with a 0-based column; editors count from 1.
    const m = /^(\d+):(\d+): ([\s\S]*)$/.exec(message)
    const where = m ? `line ${m[1]}, column ${Number(m[2]) + 1}` : `line ${this.parser.line}, column ${this.parser.column + 1}`
    const reason = (m ? m[3]! : message).replace(/\.$/, '')
    return new CaptureFailedError(
      `heapspec: memcheck's XML output (${this.options.source}) is malformed at ${where}: ${reason}. ` +
        `Something other than memcheck wrote into it, or the file is damaged; run with HEAPSPEC_DEBUG=1 to see valgrind's log.`,
      { cause: error },
    )
  }

  private onOpen(name: string): void {
    const node: XmlNode = { name, text: '', children: [], line: this.parser.line, column: this.parser.column + 1 }
    if (this.open.length === 0) {
      if (this.sawRoot || name !== 'valgrindoutput') throw this.unexpected(node, `<${name}> where <valgrindoutput> should be the only root element`)
      this.sawRoot = true
    } else if (this.open.length >= 2) {
      // Only the top-level element being read is kept: memory stays bounded by one record.
      this.open.at(-1)!.children.push(node)
    }
    this.open.push(node)
  }

  private onText(text: string): void {
    if (this.open.length >= 2) this.open.at(-1)!.text += text
  }

  private onClose(): void {
    const node = this.open.pop()!
    if (this.open.length === 0) this.rootClosed = true
    else if (this.open.length === 1) this.topLevel(node)
  }

  private unexpected(node: XmlNode, what: string): CaptureFailedError {
    return new CaptureFailedError(
      `heapspec: memcheck's XML output (${this.options.source}) has ${what} at line ${node.line}, column ${node.column}. ` +
        `heapspec reads memcheck's XML protocol 4 (valgrind 3.13 or later): check valgrind's version, and that nothing else writes into the file.`,
    )
  }

  private number(node: XmlNode | undefined, parent: XmlNode, name: string): number {
    const text = node?.text.trim()
    if (text === undefined) throw this.unexpected(parent, `a <${parent.name}> without <${name}>`)
    if (!/^\d+$/.test(text)) throw this.unexpected(node!, `<${name}> \`${text}\`, not a whole number,`)
    return Number(text)
  }

  private topLevel(node: XmlNode): void {
    switch (node.name) {
      case 'protocolversion': {
        const version = this.number(node, node, 'protocolversion')
        // Versions after 4 only add elements (5: --track-fds); what heapspec reads is unchanged.
        if (version < 4) throw this.unexpected(node, `protocol version ${version}`)
        break
      }
      case 'protocoltool':
        if (node.text.trim() !== 'memcheck') throw this.unexpected(node, `output of the tool \`${node.text.trim()}\` where memcheck's was expected`)
        break
      case 'pid':
        this.result.pid = this.number(node, node, 'pid')
        break
      case 'status':
        if (childText(node, 'state') === 'FINISHED') this.result.finished = true
        break
      case 'fatal_signal':
        this.result.fatalSignal = {
          number: this.number(child(node, 'signo'), node, 'signo'),
          name: childText(node, 'signame') ?? `signal ${childText(node, 'signo')}`,
        }
        break
      case 'error':
        this.error(node)
        break
      case 'errorcounts':
        // How often each error happened: memcheck shows an error once and counts its repeats.
        for (const pair of node.children.filter((c) => c.name === 'pair')) {
          const error = this.uniques.get(childText(pair, 'unique') ?? '')
          if (error) error.count = this.number(child(pair, 'count'), pair, 'count')
        }
        break
      default:
        // The preamble, args, error counts, the top-level copy of each suppression: nothing the run needs.
        break
    }
  }

  private error(node: XmlNode): void {
    const kind = childText(node, 'kind')
    if (kind === undefined) throw this.unexpected(node, 'an <error> without <kind>')
    const stacks = node.children.filter((c) => c.name === 'stack')
    const stack = stacks[0] ? this.stack(stacks[0]) : []
    if (kind.startsWith('Leak_')) {
      const leakKind = LEAK_KINDS[kind]
      if (leakKind === undefined) throw this.unexpected(node, `the unknown leak kind \`${kind}\``)
      const xwhat = child(node, 'xwhat')
      if (xwhat === undefined) throw this.unexpected(node, `a ${kind} error without <xwhat>`)
      const blocks = this.number(child(xwhat, 'leakedblocks'), xwhat, 'leakedblocks')
      const total = this.number(child(xwhat, 'leakedbytes'), xwhat, 'leakedbytes')
      const text = childText(xwhat, 'text') ?? ''
      const m = LEAK_TEXT.exec(text)
      if (!m) throw this.unexpected(xwhat, `a loss record text heapspec cannot read (\`${text}\`)`)
      const count = (s: string): number => Number(s.replaceAll(',', ''))
      const bytes = m[2] === undefined ? count(m[1]!) : count(m[2])
      const indirect = m[3] === undefined ? 0 : count(m[3])
      if (bytes + indirect !== total || count(m[4]!) !== blocks) {
        throw this.unexpected(xwhat, `a loss record whose text (\`${text}\`) disagrees with <leakedbytes> ${total} / <leakedblocks> ${blocks}`)
      }
      const raw = child(child(node, 'suppression') ?? node, 'rawtext')?.text.trim()
      this.result.leaks.push({ kind: leakKind, bytes, blocks, test: null, stack, ...(raw ? { suppression: raw } : {}) })
      return
    }
    const what = childText(node, 'what') ?? childText(child(node, 'xwhat') ?? node, 'text')
    // Each <auxwhat> (or <xauxwhat>) is followed by the stack it describes, when it has one.
    const auxStacks: { what: string; stack: Frame[] }[] = []
    const children = node.children
    for (let i = 0; i < children.length; i++) {
      const c = children[i]!
      if (c.name !== 'auxwhat' && c.name !== 'xauxwhat') continue
      const text = c.name === 'auxwhat' ? c.text.trim() : (childText(c, 'text') ?? '')
      const next = children[i + 1]
      auxStacks.push({ what: text, stack: next?.name === 'stack' ? this.stack(next) : [] })
    }
    const error: MemoryError = {
      kind: errorKindName(kind),
      ...(what !== undefined ? { what } : {}),
      test: null,
      stack,
      ...(auxStacks.length > 0 ? { auxStacks } : {}),
    }
    const unique = childText(node, 'unique')
    if (unique !== undefined) this.uniques.set(unique, error)
    this.result.errors.push(error)
    if (kind === 'InvalidFree') {
      const innermost = stacks[0]?.children.find((c) => c.name === 'frame')
      const realloc = innermost !== undefined && isReplacementFrame(innermost) && /^(realloc|reallocarray)$/.test(childText(innermost, 'fn') ?? '')
      this.result.badReleases.set(error, { realloc })
    }
  }

  private stack(node: XmlNode): Frame[] {
    const frames = node.children.filter((c) => c.name === 'frame')
    let first = 0
    while (first < frames.length && isReplacementFrame(frames[first]!)) first++
    return frames.slice(first).map((frame) => {
      const file = childText(frame, 'file')
      const line = child(frame, 'line')
      const ip = childText(frame, 'ip')
      return {
        fn: childText(frame, 'fn') ?? null,
        file: file ? sourcePath(childText(frame, 'dir') ?? null, file, this.options.cwd) : null,
        line: line ? this.number(line, frame, 'line') : null,
        object: childText(frame, 'obj') ?? null,
        ...(ip ? { pc: ip.toLowerCase() } : {}),
      }
    })
  }
}

/**
 * Parses memcheck's `--xml=yes` output, given whole or as a stream of chunks. Malformed or
 * truncated output is a `CaptureFailedError` naming the line and column, never a partial result
 * (unless `allowTruncated` asks for what was complete).
 */
export async function parseMemcheckXml(input: string | AsyncIterable<string | Uint8Array>, options: MemcheckXmlOptions): Promise<MemcheckXml> {
  const reader = new MemcheckXmlReader(options)
  if (typeof input === 'string') {
    reader.write(input)
  } else {
    // A multi-byte character may straddle two chunks: the decoder carries it over.
    const decoder = new TextDecoder('utf-8')
    for await (const chunk of input) reader.write(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))
    const rest = decoder.decode()
    if (rest) reader.write(rest)
  }
  return reader.end()
}
