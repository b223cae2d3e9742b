import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { packageRoot } from '../../package-root.js'
import { constants as osConstants } from 'node:os'
import { execa } from 'execa'
import { CannotStartError, CaptureFailedError } from '../../errors.js'
import { HeapModel, summarize } from '../../model/heap.js'
import type { LeakKind, Frame, RunJson } from '../../model/types.js'
import type { LiveBlock } from '../../model/heap.js'
import type { CaptureBackend, CaptureResult, CaptureSpec } from '../backend.js'
import { sourcePath } from '../frames.js'
import { supervise } from '../process.js'
import { memoryImage, type DumpedMapping, type DumpedThread } from './image.js'

/** The GDB-side script ships under src/ (a build under dist/ has no copy). */
function scriptPath(): string {
  return join(packageRoot(), 'src', 'capture', 'gdb', 'heapspec_gdb.py')
}

/** Quotes a word for /bin/sh: gdb starts the program through the shell so it can redirect. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}

function signalName(n: number): string {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === n) return name
  return `signal ${n}`
}

interface Dump {
  point: string
  file: string
  mappings: { start: number; end: number; offset: number; name: string; guarded: boolean }[]
  threads: DumpedThread[]
}

/** The GDB backend: breakpoints on libc's malloc family, a memory scan at exit. */
export class GdbBackend implements CaptureBackend {
  readonly name = 'gdb'

  async probe(): Promise<void> {
    const result = await execa('gdb', ['-nx', '-q', '-batch', '-ex', 'python print("heapspec-python-ok")'], { reject: false, timeout: 30_000 })
    if (result.code === 'ENOENT') {
      throw new CannotStartError('heapspec: gdb is not installed (looked on PATH). Install it (apt-get install gdb) or use --backend valgrind.')
    }
    if (!String(result.stdout).includes('heapspec-python-ok')) {
      throw new CannotStartError(
        `heapspec: this gdb cannot run Python (${lastLine(String(result.stderr)) ?? `exit ${result.exitCode}`}). Install a gdb built with Python (apt-get install gdb) or use --backend valgrind.`,
      )
    }
  }

  async capture(spec: CaptureSpec): Promise<CaptureResult> {
    const imageDir = await mkdtemp(join(tmpdir(), 'heapspec-'))
    try {
      return await this.captureIn(spec, imageDir)
    } finally {
      await rm(imageDir, { recursive: true, force: true })
    }
  }

  private async captureIn(spec: CaptureSpec, imageDir: string): Promise<CaptureResult> {
    const [program, ...args] = spec.command as [string, ...string[]]
    const unset = ['LINES', 'COLUMNS'].filter((name) => spec.env[name] === undefined)
    const config = {
      fd: 3,
      depth: 16,
      imageDir,
      tests: spec.tests?.source,
      // fd 4 and 5 are the program's stdout and stderr; gdb keeps 1 and 2 for its own chatter.
      redirect: [...args.map(shellQuote), '1>&4', '2>&5', '3>&-', '4>&-', '5>&-'].join(' '),
    }
    const gdbArgs = [
      '-nx',
      '-q',
      '-batch',
      ...unset.flatMap((name) => ['-ex', `unset environment ${name}`]),
      ...(spec.env.SHELL === undefined ? ['-ex', 'unset environment SHELL'] : ['-ex', `set environment SHELL=${spec.env.SHELL}`]),
      '-ex',
      `python import json, base64; HEAPSPEC = json.loads(base64.b64decode('${Buffer.from(JSON.stringify(config)).toString('base64')}'))`,
      '-x',
      scriptPath(),
      program,
    ]
    const model = new HeapModel()
    const symbols = new Map<number, Frame>()
    const failures: string[] = []
    let ending: { exitCode: number | null; signal: string | null } | undefined
    let atExit: { block: LiveBlock; kind: LeakKind }[] | undefined
    let dump: Dump | undefined
    let pendingEnd: string | undefined
    const memdump: WriteStream | undefined = spec.memdumpFile ? createWriteStream(join(imageDir, 'events.raw')) : undefined
    let reading: Promise<void> = Promise.resolve()

    const finishDump = async (d: Dump): Promise<void> => {
      const data = await readFile(d.file)
      await unlink(d.file)
      const mappings: DumpedMapping[] = d.mappings.map((m) => ({
        start: m.start,
        end: m.end,
        name: m.name,
        guarded: m.guarded,
        bytes: data.subarray(m.offset, m.offset + (m.end - m.start)),
      }))
      const final = d.point === 'exit' || d.point === 'crash'
      const image = memoryImage(mappings, d.threads, [...model.live.values()], !final)
      if (final) atExit = model.classify(image)
      if (d.point === 'test' && pendingEnd !== undefined) {
        model.endTest(pendingEnd, image)
        pendingEnd = undefined
      }
    }

    const onLine = async (line: string): Promise<void> => {
      const tag = line[0]
      const f = line.slice(2).split(' ')
      switch (tag) {
        case 'A':
          model.allocate(parseInt(f[1]!, 16), Number(f[2]), Number(f[3]))
          memdump?.write(line + '\n')
          break
        case 'F':
          model.free(parseInt(f[1]!, 16))
          memdump?.write(line + '\n')
          break
        case 'R':
          model.reallocate(parseInt(f[1]!, 16), parseInt(f[2]!, 16), Number(f[3]), Number(f[4]))
          memdump?.write(line + '\n')
          break
        case 'S':
          model.defineStack(Number(f[0]), f.slice(1).map((pc) => parseInt(pc, 16)))
          break
        case 'B':
          model.beginTest(f.slice(1).join(' '))
          memdump?.write(line + '\n')
          break
        case 'E':
          pendingEnd = f.slice(1).join(' ') // the memory image at the test's end follows
          memdump?.write(line + '\n')
          break
        case 'e':
          model.endTest(f.slice(1).join(' '), undefined) // left by longjmp or an exception: no image
          memdump?.write(line + '\n')
          break
        case 'D':
          dump = { point: f[0]!, file: f.slice(1).join(' '), mappings: [], threads: [] }
          break
        case 'W':
          dump?.mappings.push({ start: parseInt(f[0]!, 16), end: parseInt(f[1]!, 16), guarded: f[2]!.endsWith('g'), offset: Number(f[3]), name: f.slice(4).join(' ') })
          break
        case 'T':
          dump?.threads.push({ tid: Number(f[0]), sp: parseInt(f[1]!, 16), registers: f.slice(2).map((r) => parseInt(r, 16)) })
          break
        case 'C': {
          const thread = dump?.threads.find((t) => t.tid === Number(f[0]))
          if (thread) thread.atCall = true
          break
        }
        case 'd':
          if (dump) await finishDump(dump)
          dump = undefined
          break
        case 'Y': {
          const [pc, rest] = [parseInt(f[0]!, 16), f.slice(1).join(' ')]
          const [fn, file, lineNo, object] = rest.split('|')
          symbols.set(pc, {
            fn: fn || null,
            file: file ? sourcePath(null, file, spec.cwd) : null,
            line: lineNo ? Number(lineNo) : null,
            object: object || null,
            pc: `0x${pc.toString(16)}`,
          })
          break
        }
        case 'X':
          ending = f[0] === 'exit' ? { exitCode: Number(f[1]), signal: null } : { exitCode: null, signal: /^\d+$/.test(f[1]!) ? signalName(Number(f[1])) : f[1]! }
          break
        case '!':
          failures.push(line.slice(2))
          break
        default:
          break
      }
    }

    const outcome = await supervise('gdb', gdbArgs, {
      cwd: spec.cwd,
      env: { ...spec.env, SHELL: '/bin/sh' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', spec.stdio, spec.stdio],
      buffer: { stdout: true, stderr: true, fd3: false, fd4: true, fd5: true } as never,
      timeoutMs: spec.timeoutMs,
      signal: spec.signal,
      onSpawn: (child) => {
        const events = (child.stdio as unknown as NodeJS.ReadableStream[])[3]!
        const lines = createInterface({ input: events, crlfDelay: Infinity })
        reading = (async () => {
          for await (const line of lines) await onLine(line)
        })()
        if (spec.debug) {
          child.stdout?.pipe(process.stderr)
          child.stderr?.pipe(process.stderr)
        }
      },
    })
    await reading
    if (memdump) await new Promise<void>((resolve) => memdump.end(() => resolve()))

    const display = spec.displayCommand.join(' ')
    if (outcome.aborted) throw new CaptureFailedError(`heapspec: the gdb capture of ${display} was interrupted.`)
    if (!ending && !outcome.timedOut) {
      const reason = failures[0] ?? lastLine(outcome.stderr) ?? `gdb exit ${outcome.exitCode ?? outcome.signal}`
      throw new CaptureFailedError(
        `heapspec: the gdb capture of ${display} stopped before the program exited (${reason}). Run with HEAPSPEC_DEBUG=1 to see gdb's transcript.`,
      )
    }
    const warnings = [...model.warnings, ...failures]
    if (outcome.timedOut) warnings.push(`the program was stopped after ${(spec.timeoutMs ?? 0) / 1000} s; its leaks were not classified`)

    const unknown = (pc: number): Frame => symbols.get(pc) ?? { fn: null, file: null, line: null, object: null, pc: `0x${pc.toString(16)}` }
    const leaks = atExit ? model.lossRecords(atExit, unknown) : []
    if (spec.memdumpFile) await writeMemdump(join(imageDir, 'events.raw'), spec.memdumpFile, model, unknown)
    const inUse = [...model.live.values()]
    const run = {
      schema: 1,
      backend: 'gdb',
      program: {
        command: spec.displayCommand,
        exitCode: ending?.exitCode ?? null,
        signal: ending?.signal ?? (outcome.timedOut ? 'SIGKILL' : null),
        ...(outcome.timedOut ? { timedOut: true } : {}),
      },
      totals: { ...model.totals },
      inUseAtExit: { bytes: inUse.reduce((sum, b) => sum + b.size, 0), blocks: inUse.length },
      leakSummary: summarize(leaks),
      leaks,
      tests: model.testSummaries(),
      errors: [],
      ...(warnings.length > 0 ? { warnings } : {}),
    } satisfies RunJson
    return { run, stdout: outcome.output[4] ?? '', stderr: outcome.output[5] ?? '' }
  }
}

function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return lines.at(-1)
}

/** memdump.txt: every event with its stack, resolved, in the order the program made them. */
async function writeMemdump(rawFile: string, target: string, model: HeapModel, symbol: (pc: number) => Frame): Promise<void> {
  const out = createWriteStream(target)
  const lines = createInterface({ input: (await import('node:fs')).createReadStream(rawFile), crlfDelay: Infinity })
  const where = (id: string): string =>
    model
      .stack(Number(id))
      .map(symbol)
      .map((f) => `    ${f.fn ?? '???'}${f.file ? ` (${f.file}:${f.line})` : f.object ? ` (${f.object})` : ''}`)
      .join('\n')
  for await (const line of lines) {
    const f = line.slice(2).split(' ')
    let text: string
    switch (line[0]) {
      case 'A':
        text = `malloc  thread ${f[0]} size ${f[2]} -> 0x${f[1]}\n${where(f[3]!)}`
        break
      case 'R':
        text = `realloc thread ${f[0]} 0x${f[1]} size ${f[3]} -> 0x${f[2]}\n${where(f[4]!)}`
        break
      case 'F':
        text = `free    thread ${f[0]} 0x${f[1]}`
        break
      default:
        text = `${line[0] === 'B' ? 'test begin' : 'test end'} thread ${f[0]} ${f.slice(1).join(' ')}`
    }
    if (!out.write(text + '\n')) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
  }
  await new Promise<void>((resolve) => out.end(() => resolve()))
}
