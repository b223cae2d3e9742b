import { readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { packageRoot } from '../../package-root.js'
import { execa } from 'execa'
import { CannotStartError, CaptureFailedError } from '../../errors.js'
import type { CaptureBackend, CaptureResult, CaptureSpec } from '../backend.js'
import { EventStream } from '../event-stream.js'
import { unexecedForks, unfollowedForksWarning } from '../forks.js'
import { launcherPath } from '../launcher.js'
import { makeRunDir } from '../run-dir.js'
import { supervise } from '../process.js'
import { testFunctionNames } from '../test-functions.js'

/** How long a timed-out program's gdb gets to scan and report before the whole tree is killed. */
const STOP_GRACE_MS = 15_000

/** The GDB-side script ships under src/ (a build under dist/ has no copy). */
function scriptPath(): string {
  return join(packageRoot(), 'src', 'capture', 'gdb', 'heapspec_gdb.py')
}

/** Quotes a word for /bin/sh: gdb starts the program through the shell so it can redirect. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
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
    const imageDir = await makeRunDir('heapspec-')
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
      // the names matched in JavaScript (test-functions.ts): gdb's own regexes are POSIX ones
      tests: spec.tests ? (spec.testFunctions ?? (await testFunctionNames(program, spec.tests))) : undefined,
      objects: spec.objects.map((o) => o.source),
      // fds 4, 5 and 6 are the program's stdin, stdout and stderr; gdb keeps 0, 1 and 2 for itself.
      redirect: [...args.map(shellQuote), spec.stdio === 'inherit' ? '0<&4' : '0</dev/null', '1>&5', '2>&6', '3>&-', '4>&-', '5>&-', '6>&-'].join(' '),
    }
    // gdb's shell would exec the program by its resolved path; the launcher gives it the argv[0] typed.
    const launcher = await launcherPath()
    // The shell also sets PWD (dash exports its own): the wrapper puts back the value given, or none.
    const pwd = spec.env.PWD === undefined ? '-u PWD' : `-e ${shellQuote(`PWD=${spec.env.PWD}`)}`
    const wrapper = launcher ? ['-ex', `set exec-wrapper ${shellQuote(launcher)} -x -a ${shellQuote(spec.displayCommand[0]!)} ${pwd} --`] : []
    const gdbArgs = [
      '-nx',
      '-q',
      '-batch',
      ...wrapper,
      ...unset.flatMap((name) => ['-ex', `unset environment ${name}`]),
      ...(spec.env.SHELL === undefined ? ['-ex', 'unset environment SHELL'] : ['-ex', `set environment SHELL=${spec.env.SHELL}`]),
      '-ex',
      `python import json, base64; HEAPSPEC = json.loads(base64.b64decode('${Buffer.from(JSON.stringify(config)).toString('base64')}'))`,
      '-x',
      scriptPath(),
      program,
    ]
    const stream = new EventStream(spec.cwd, spec.memdumpFile ? join(imageDir, 'events.raw') : undefined)
    let reading: Promise<void> = Promise.resolve()
    let retry: NodeJS.Timeout | undefined

    const outcome = await supervise('gdb', gdbArgs, {
      cwd: spec.cwd,
      env: { ...spec.env, SHELL: '/bin/sh' },
      // Extra descriptors given as numbers: execa's 'inherit' beyond fd 2 hands over Node's own fd of
      // that number (an internal pipe), not heapspec's stdin, stdout and stderr.
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...(spec.stdio === 'inherit' ? [0, 1, 2] : ['ignore', 'pipe', 'pipe'])] as never,
      blockingFds: spec.stdio === 'inherit' ? [4, 5, 6] : [],
      buffer: { stdout: true, stderr: true, fd3: false, fd4: false, fd5: spec.stdio === 'pipe', fd6: spec.stdio === 'pipe' } as never,
      timeoutMs: spec.timeoutMs,
      signal: spec.signal,
      stop: spec.stop,
      // SIGINT to the program itself (gdb ignores SIGINT: one landing in its Python would end the
      // script); gdb stops it, and the script sees the request file, scans and kills it. Until the
      // script has written the program's pid (it may still be starting), the request waits.
      interrupt: {
        request: () => {
          writeFileSync(join(imageDir, 'stop-requested'), '')
          if (!interruptProgram(imageDir)) {
            retry = setInterval(() => {
              if (interruptProgram(imageDir)) clearInterval(retry)
            }, 50)
          }
        },
        graceMs: STOP_GRACE_MS,
      },
      onSpawn: (child) => {
        reading = stream.consume((child.stdio as unknown as NodeJS.ReadableStream[])[3]!)
        if (spec.debug) {
          child.stdout?.pipe(process.stderr)
          child.stderr?.pipe(process.stderr)
        }
      },
    })
    clearInterval(retry)
    await reading

    const display = spec.displayCommand.join(' ')
    if (outcome.aborted) throw new CaptureFailedError(`heapspec: the gdb capture of ${display} was interrupted.`)
    if (!stream.ending && !outcome.timedOut) {
      const reason = stream.failures[0] ?? lastLine(outcome.stderr) ?? `gdb exit ${outcome.exitCode ?? outcome.signal}`
      throw new CaptureFailedError(
        `heapspec: the gdb capture of ${display} stopped before the program exited (${reason}). Run with HEAPSPEC_DEBUG=1 to see gdb's transcript.`,
      )
    }
    const forks = await unexecedForks(imageDir)
    if (forks > 0) await stream.line(`! ${unfollowedForksWarning(forks)}`)
    if (stream.finalImages === 0 && !outcome.timedOut && stream.ending) {
      await stream.line(`I the program ended (${stream.ending.signal ? `killed by ${stream.ending.signal}` : `exit ${stream.ending.exitCode}`}) without heapspec taking its image: its leaks were not classified`)
    }
    const run = stream.run('gdb', spec.displayCommand, outcome.timedOut ? { afterMs: outcome.stoppedAfterMs ?? 0, signal: 'SIGKILL' } : undefined, {
      suppressions: spec.suppressionRules,
      genSuppressions: spec.genSuppressions,
    })
    if (spec.memdumpFile) stream.writeMemdump(spec.memdumpFile)
    return { run, stdout: outcome.output[5] ?? '', stderr: outcome.output[6] ?? '' }
  }
}

/** SIGINTs the program under gdb, by the pid the script wrote once it ran it; false while there is none yet. */
function interruptProgram(imageDir: string): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(join(imageDir, 'inferior-pid'), 'utf8'))
  } catch {
    return false
  }
  try {
    process.kill(pid, 'SIGINT')
  } catch {
    // ended meanwhile: gdb reports its end
  }
  return true
}

function lastLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return lines.at(-1)
}
