import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { readdir, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { CannotStartError, CaptureFailedError } from '../../errors.js'
import { packageRoot } from '../../package-root.js'
import type { CaptureBackend, CaptureResult, CaptureSpec } from '../backend.js'
import { compilers, hostLibc, libcIdentity } from '../build-cache.js'
import { EventStream } from '../event-stream.js'
import { unexecedForks, unfollowedForksWarning } from '../forks.js'
import { makeRunDir } from '../run-dir.js'
import { programStdio, supervise } from '../process.js'
import { SymbolCache } from '../symbol-cache.js'
import { EarlySymbolizer, symbolize } from '../symbolize.js'
import { testFunctionNames, testFunctionSymbols } from '../test-functions.js'
import { buildDirectory, cacheCandidates, cachedLibrary, chooseCacheDir, installLibrary, readKept, verify, writeKept, type VerifiedLibrary } from './interposer-cache.js'

/** The signal interposer.c takes as the host's timeout request (with a request file in place). */
const STOP_SIGNAL = 62

/** How long a timed-out program gets to write its image before the whole tree is killed. */
const STOP_GRACE_MS = 15_000

/** The interposer's source ships under src/ (a build under dist/ has no copy). */
/**
 * Every part of the interposer's source: interposer.c includes the other .c files beside it, so
 * the cache key covers them all (in name order).
 */
async function interposerSource(): Promise<Buffer> {
  const dir = dirname(sourcePath())
  const parts = (await readdir(dir)).filter((f) => f.endsWith('.c')).sort()
  return Buffer.concat(await Promise.all(parts.map((f) => readFile(join(dir, f)))))
}

function sourcePath(): string {
  return join(packageRoot(), 'src', 'capture', 'preload', 'interposer.c')
}

/** How the interposer is built: part of the cache key, so a change of flags rebuilds it. */
const CFLAGS = ['-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-fno-strict-aliasing', '-w']
const LIBS = ['-ldl', '-pthread']

let building: Promise<VerifiedLibrary> | undefined

/** Cache directories already refused, so each is named once per process. */
const refused = new Set<string>()

/**
 * The interposer library, compiled on first use into a private cache keyed by a hash of its source
 * and flags, and checked before every use: it is what heapspec built (its recorded content hash),
 * in a directory only the user can write (see interposer-cache.ts). One that changed since is built
 * again. Concurrent first uses (several test workers) each compile in a private directory and
 * rename into place, which is atomic: no one ever loads a half-written library.
 */
export async function interposerLibrary(): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt++) {
    // a library built or found just now was checked then; one kept from an earlier run is checked again
    const fresh = building === undefined
    building ??= build().catch((error: unknown) => {
      building = undefined
      throw error
    })
    const library = await building
    if (fresh || (await verify(library))) return library.path
    building = undefined
  }
  throw new CannotStartError(`heapspec: the preload backend's interposer changed after heapspec built it (something else writes to its cache directory). Set XDG_CACHE_HOME to a directory of your own, or use --backend gdb.`)
}

async function build(): Promise<VerifiedLibrary> {
  let source: Buffer
  try {
    source = await interposerSource()
  } catch (error) {
    throw new CannotStartError(`heapspec: the preload backend's interposer source is missing (${sourcePath()}): a damaged install? Reinstall heapspec, or use --backend gdb or --backend valgrind.`, { cause: error })
  }
  const key = createHash('sha256').update(source).update(JSON.stringify([CFLAGS, LIBS, process.arch, libcIdentity()])).digest('hex').slice(0, 16)
  const cache = await chooseCacheDir(cacheCandidates())
  for (const line of cache.refusals) {
    if (refused.has(line)) continue
    refused.add(line)
    process.stderr.write(`${line} ${cache.temporary ? 'heapspec built its interposer in a private directory instead' : `heapspec used ${cache.dir} instead`}.\n`)
  }
  const cached = await cachedLibrary(cache.dir, key)
  if (cached) return cached
  const work = await buildDirectory(cache.dir)
  try {
    const built = join(work, 'heapspec-preload.so')
    const tried: string[] = []
    for (const cc of compilers()) {
      const result = await execa(cc, [...CFLAGS, '-o', built, sourcePath(), ...LIBS], { reject: false, timeout: 120_000 })
      if (result.failed && result.code === 'ENOENT') {
        tried.push(cc)
        continue
      }
      if (result.exitCode !== 0) {
        const reason = String(result.stderr).split('\n').find((l) => /error/.test(l)) ?? `exit ${result.exitCode}`
        throw new CannotStartError(`heapspec: the preload backend's interposer does not compile with ${cc} (${reason.trim()}). Use --backend gdb or --backend valgrind.`)
      }
      return await installLibrary(cache.dir, key, work, built)
    }
    throw new CannotStartError(
      `heapspec: the preload backend needs a C compiler to build its interposer once (looked for ${tried.join(', ')} on PATH). Install one (apt-get install gcc) or use --backend gdb or --backend valgrind.`,
    )
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}


/**
 * Why LD_PRELOAD cannot reach `program`, or undefined when it can. The dynamic linker ignores
 * LD_PRELOAD paths for a program that gains privileges (setuid, setgid); a static program has
 * no dynamic linker at all (runNative's inspectProgram says so for every backend first).
 */
export function preloadObstacle(program: string): string | undefined {
  const stat = statSync(program)
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  if (stat.mode & 0o4000 /* S_ISUID */ && stat.uid !== uid) return 'it is setuid, so the dynamic linker ignores LD_PRELOAD for it'
  if (stat.mode & 0o2000 /* S_ISGID */ && stat.gid !== gid) return 'it is setgid, so the dynamic linker ignores LD_PRELOAD for it'
  return undefined
}

/**
 * A GoogleTest suite without heapspec's markers: each of its tests is a test case, from the return
 * of GoogleTest's TestEventRepeater::OnTestStart to the entry of its OnTestEnd (the GDB backend
 * breaks there, the interposer hooks the same two entries).
 */
export function recognisesGoogleTest(program: string, cacheDir: string): boolean {
  return programFact(program, cacheDir, 'gtest') ?? false
}

/**
 * Whether a string table of `program` holds a marker's name: when none does, no symbol of it can be
 * a marker, and the interposer is told not to read its symbol tables for them (Node's are 185,000
 * symbols and 13 MB of names, read at every runNode's start). Markers in the libraries it loads are
 * looked for as ever.
 */
export function namesMarkers(program: string, cacheDir: string): boolean {
  return programFact(program, cacheDir, 'markers') ?? true
}

/** What the preload backend reads off a program's string tables, each answer kept as `yes` or `no`. */
const PROGRAM_FACTS = {
  gtest: (has: (text: string) => boolean) => (has('TestEventRepeater') || has('libgtest.so')) && !has('heapspec_test_begin'),
  markers: (has: (text: string) => boolean) => has('heapspec_test_begin') || has('heapspec_test_end'),
}
type ProgramFact = keyof typeof PROGRAM_FACTS

/**
 * One fact about `program`, undefined when it cannot be read. Every fact is found in one read of
 * its string tables and kept, by file (its real path, device, inode, size and time of change), in
 * this process and, in `cacheDir`, for the next: Node's string tables are megabytes (25 ms), read
 * again at every runNode of a test file otherwise. Only a kept file of the user's own (readKept)
 * is believed.
 */
function programFact(program: string, cacheDir: string, fact: ProgramFact): boolean | undefined {
  let identity: string
  try {
    const st = statSync(program)
    identity = `${resolvedPath(program)}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`
  } catch {
    return undefined
  }
  const known = programFacts.get(`${fact}\0${identity}`)
  if (known !== undefined) return known
  const file = (kind: ProgramFact): string => join(cacheDir, `heapspec-${kind}-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}`)
  const kept = readKept(file(fact))
  if (kept === 'yes' || kept === 'no') {
    programFacts.set(`${fact}\0${identity}`, kept === 'yes')
    return kept === 'yes'
  }
  let tables: Buffer[]
  try {
    tables = stringTables(program)
  } catch {
    return undefined
  }
  const has = (text: string): boolean => tables.some((table) => table.includes(text))
  for (const kind of Object.keys(PROGRAM_FACTS) as ProgramFact[]) {
    const answer = PROGRAM_FACTS[kind](has)
    writeKept(file(kind), answer ? 'yes' : 'no') // an answer that cannot be kept is only read again next time
    programFacts.set(`${kind}\0${identity}`, answer)
  }
  return programFacts.get(`${fact}\0${identity}`)
}

/** programFact's answers in this process, by fact and file. */
const programFacts = new Map<string, boolean>()

/**
 * The string tables of an ELF file (symbol names, the libraries it needs), read alone: a program
 * such as Node is 100 MB, nearly all code and data that name no symbol.
 */
function stringTables(path: string): Buffer[] {
  const fd = openSync(path, 'r')
  try {
    const read = (at: number, length: number): Buffer => {
      const buffer = Buffer.alloc(length)
      const got = readSync(fd, buffer, 0, length, at)
      return buffer.subarray(0, got)
    }
    const header = read(0, 64)
    if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46) return []
    const sections = Number(header.readBigUInt64LE(0x28))
    const entrySize = header.readUInt16LE(0x3a)
    const count = header.readUInt16LE(0x3c)
    const table = read(sections, entrySize * count)
    const tables: Buffer[] = []
    for (let i = 0; i + 1 <= count && (i + 1) * entrySize <= table.length; i++) {
      const at = i * entrySize
      if (table.readUInt32LE(at + 4) !== 3 /* SHT_STRTAB */) continue
      tables.push(read(Number(table.readBigUInt64LE(at + 24)), Number(table.readBigUInt64LE(at + 32))))
    }
    return tables
  } finally {
    closeSync(fd)
  }
}

/** GoogleTest's event repeater, whose two entries bracket every test (see recognisesGoogleTest). */
const GTEST_HOOKS = [
  ['_ZN7testing8internal17TestEventRepeater11OnTestStartERKNS_8TestInfoE', '@gtest-start'],
  ['_ZN7testing8internal17TestEventRepeater9OnTestEndERKNS_8TestInfoE', '@gtest-end'],
] as const

/**
 * The functions the interposer hooks for test cases, one `symbol<TAB>name` a line, or undefined
 * for none: the `tests` functions when given, else GoogleTest's event repeater for an unmarked suite.
 */
async function testHooks(spec: CaptureSpec, program: string, cacheDir: string): Promise<string | undefined> {
  const lines = (pairs: readonly (readonly [string, string])[]): string => pairs.map(([symbol, name]) => `${symbol}\t${name}\n`).join('')
  if (spec.tests) return lines(await testFunctionSymbols(program, spec.testFunctions ?? (await testFunctionNames(program, spec.tests))))
  if (recognisesGoogleTest(program, cacheDir)) return lines(GTEST_HOOKS)
  return undefined
}

/**
 * The preload backend: an allocation interposer loaded into the program with LD_PRELOAD. It runs
 * the program at close to native speed and speaks the same capture protocol as the GDB script,
 * so the model, the leak scan and per-test attribution are the same.
 */
export class PreloadBackend implements CaptureBackend {
  readonly name = 'preload'

  async probe(): Promise<void> {
    await interposerLibrary()
  }

  async capture(spec: CaptureSpec): Promise<CaptureResult> {
    const display = spec.displayCommand.join(' ')
    const obstacle = preloadObstacle(spec.command[0]!)
    if (obstacle) throw new CannotStartError(`heapspec: the preload backend cannot observe ${spec.displayCommand[0]}: ${obstacle}. Use --backend gdb or --backend valgrind.`)
    // Started at the program's first stack, it is ready (LLVM, the program's and libc's debug
    // info loaded) when the program ends. With only some objects observed (Node's addons) most runs name no frame of
    // the program's own: reading Node's symbols ahead would only take the CPU the run needs.
    const ahead = spec.objects.length > 0 ? [hostLibc() ?? ''] : [spec.command[0]!, hostLibc() ?? '']
    // A program symbolized in an earlier run most likely needs no symbolizer now: its answers are
    // kept, and one is started at the end only for an address they lack.
    const symbols = await SymbolCache.open().catch(() => undefined)
    const symbolizer = symbols?.knows(ahead[0]!) ? undefined : new EarlySymbolizer(ahead)
    let library: string
    let imageDir: string
    try {
      library = await interposerLibrary()
      imageDir = await makeRunDir('heapspec-')
    } catch (error) {
      await symbolizer?.close()
      throw error
    }
    try {
      return await this.captureIn(spec, library, imageDir, display, symbolizer, symbols)
    } finally {
      await symbolizer?.close()
      await rm(imageDir, { recursive: true, force: true })
    }
  }

  private async captureIn(
    spec: CaptureSpec,
    library: string,
    imageDir: string,
    display: string,
    symbolizer: EarlySymbolizer | undefined,
    symbols: SymbolCache | undefined,
  ): Promise<CaptureResult> {
    const [program, ...args] = spec.command as [string, ...string[]]
    const hooks = await testHooks(spec, program, dirname(library))
    const testsFile = join(imageDir, 'tests.list')
    if (hooks) writeFileSync(testsFile, hooks)
    // The program's only: the interposer removes them (restoring the user's LD_PRELOAD) at start-up.
    const childEnv = {
      LD_PRELOAD: [library, spec.env.LD_PRELOAD].filter(Boolean).join(' '),
      HEAPSPEC_PRELOAD_FD: '3',
      HEAPSPEC_PRELOAD_DIR: imageDir,
      HEAPSPEC_PRELOAD_LIB: library,
      ...(hooks ? { HEAPSPEC_PRELOAD_TESTS: testsFile } : {}),
      ...(namesMarkers(program, dirname(library)) ? {} : { HEAPSPEC_PRELOAD_UNMARKED: '1' }),
      ...(spec.objects.length > 0 ? { HEAPSPEC_PRELOAD_BY_STACK: '1' } : {}),
      ...observedEnds(spec.objects, program),
      // memdump.txt lists every event: the interposer then sends each one instead of counts
      ...(spec.memdumpFile ? { HEAPSPEC_PRELOAD_EVENTS: 'all' } : {}),
      // the interposer scans the heap itself; HEAPSPEC_SCAN=image has it send images for the host's
      // scan, and HEAPSPEC_SCAN=whole scans the whole heap at every test end (the tests' reference)
      ...(spec.env.HEAPSPEC_SCAN === 'image' || spec.env.HEAPSPEC_SCAN === 'whole' ? { HEAPSPEC_PRELOAD_SCAN: spec.env.HEAPSPEC_SCAN } : {}),
    }
    const stream = new EventStream(spec.cwd, spec.memdumpFile ? join(imageDir, 'events.raw') : undefined)
    if (spec.objects.length > 0) stream.observeOnly(spec.objects)
    // it loads the program's debug info while the program runs, from the first stack it sends on
    if (symbolizer) stream.onFirstStack = () => symbolizer.start()
    let reading: Promise<void> = Promise.resolve()
    let retry: NodeJS.Timeout | undefined
    const outcome = await supervise(program, args, {
      cwd: spec.cwd,
      env: spec.env,
      childEnv,
      argv0: spec.displayCommand[0],
      stdio: [...programStdio(spec.stdio), 'pipe'],
      blockingFds: spec.stdio === 'inherit' ? [0, 1, 2] : [],
      buffer: { stdout: spec.stdio === 'pipe', stderr: spec.stdio === 'pipe', fd3: false } as never,
      timeoutMs: spec.timeoutMs,
      signal: spec.signal,
      stop: spec.stop,
      // the interposer takes the image of that moment and ends the program with SIGKILL; until it
      // has said hello the signal would only kill the program (its default action), so it waits
      interrupt: {
        request: (pid) => {
          writeFileSync(join(imageDir, 'stop-requested'), '')
          const send = (): boolean => {
            if (!stream.started) return false
            try {
              process.kill(pid, STOP_SIGNAL)
            } catch {
              // ended meanwhile
            }
            return true
          }
          if (!send()) {
            retry = setInterval(() => {
              if (send()) clearInterval(retry)
            }, 20)
          }
        },
        graceMs: STOP_GRACE_MS,
      },
      onSpawn: (child) => {
        reading = stream.consume((child.stdio as unknown as NodeJS.ReadableStream[])[3]!)
      },
    })
    clearInterval(retry)
    await reading
    if (outcome.aborted) throw new CaptureFailedError(`heapspec: the preload capture of ${display} was interrupted.`)
    if (!stream.started) {
      if (outcome.exitCode === 127 || outcome.exitCode === 126) {
        throw new CannotStartError(`heapspec: cannot run ${spec.displayCommand[0]} (exit ${outcome.exitCode}: ${lastLine(outcome.stderr) ?? 'not executable here'}).`)
      }
      throw new CaptureFailedError(
        `heapspec: the preload backend's interposer was not loaded into ${display} (does it clear LD_PRELOAD, or gain privileges?). Use --backend gdb or --backend valgrind.`,
      )
    }
    await stream.line(outcome.signal ? `X signal ${outcome.signal}` : `X exit ${outcome.exitCode ?? 0}`)
    if (stream.finalImages === 0 && !outcome.timedOut) {
      await stream.line(
        `I ${
          outcome.signal
            ? `the program was killed by ${outcome.signal} before heapspec could take its image`
            : 'the program ended without exit(): by a raw exit_group or execve system call, or with heapspec\'s descriptor closed by a raw system call'
        }: its leaks were not classified. Run it with --backend gdb or --backend valgrind, which see system calls`,
      )
    }
    if (spec.debug) {
      const { all, own, scanned, ownScanned } = stream.testImages
      process.stderr.write(
        `heapspec: preload capture of ${display} used ${library}; its lines in ${stream.reads} reads; ${stream.model.stackCount} stacks; ${scanned} test ends${stream.finalScanned ? ' and the end' : ''} scanned in the process (${ownScanned} of them by the test case's own blocks alone), ${all} test-end images, ${own} of them the test case's own blocks alone; ${stream.batchedBlocks} blocks in batches\n`,
      )
    }
    const forks = await unexecedForks(imageDir)
    if (forks > 0) await stream.line(`! ${unfollowedForksWarning(forks)}`)
    // memdump.txt shows every event's stack, the run's figures only those it can name
    const pcs = spec.memdumpFile ? stream.model.allPcs() : stream.shownPcs()
    if (pcs.size > 0) {
      const { frames, missingTool } = await symbolize(pcs, stream.objects, program, symbolizer, symbols)
      for (const f of frames) stream.resolved(f)
      if (missingTool) await stream.line('! no symbolizer found (llvm-symbolizer or addr2line): stacks show addresses. Install binutils (apt-get install binutils).')
    }
    const run = stream.run('preload', spec.displayCommand, outcome.timedOut ? { afterMs: outcome.stoppedAfterMs ?? 0, signal: 'SIGKILL' } : undefined, {
      suppressions: spec.suppressionRules,
      genSuppressions: spec.genSuppressions,
    })
    if (spec.memdumpFile) stream.writeMemdump(spec.memdumpFile)
    return { run, stdout: outcome.stdout, stderr: outcome.stderr }
  }
}

/**
 * The observed objects as the ends of their paths, for the interposer to take no stacks until one
 * of them is loaded (a Node script's own start-up allocates hundreds of thousands of times before
 * its addon is there): only when every pattern is a literal path end (a string, or /\.node$/) and
 * the program itself is none of them (the dynamic linker lists it unnamed).
 */
function observedEnds(objects: RegExp[], program: string): { HEAPSPEC_PRELOAD_OBSERVE?: string } {
  const ends: string[] = []
  for (const pattern of objects) {
    // each character a literal one or an escaped one, then the end of the path
    const literal = /^((?:\\.|[^.*+?^${}()|[\]\\])+)\$$/.exec(pattern.source)
    if (pattern.flags !== '' || !literal) return {}
    const end = literal[1]!.replace(/\\(.)/g, '$1')
    if (end.includes('\n') || /\\[a-zA-Z0-9]/.test(literal[1]!)) return {} // \d, \n and the like are classes, not characters
    ends.push(end)
  }
  if (ends.length === 0 || objects.some((pattern) => pattern.test(program) || pattern.test(resolvedPath(program)))) return {}
  return { HEAPSPEC_PRELOAD_OBSERVE: ends.join('\n') }
}

function resolvedPath(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

function lastLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1)
}
