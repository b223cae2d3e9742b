import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { descendants } from '../../src/capture/process.js'
import { ROOT } from '../support/debugee.js'
import { alive } from '../support/processes.js'

// The program runs under heapspec exactly as without it: the same stdin, stdout, stderr, argv,
// environment and exit, on every backend, from the CLI and the API; heapspec's report goes to
// stderr; and no process of the run outlives it.

const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const PROGRAM = 'debugee/build/as-native' // relative, as a user types it: argv[0] must stay so
const BACKENDS = ['preload', 'gdb', 'valgrind'] as const
type Backend = (typeof BACKENDS)[number]

/** One environment for the native run and heapspec's: the program must see exactly this. */
const ENV: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', CI: 'true', AS_NATIVE: 'a value with spaces' }

const scratch = (): string => mkdtempSync(join(tmpdir(), 'heapspec-as-native-'))

function native(command: string[], input?: string) {
  return execa(command[0]!, command.slice(1), { cwd: ROOT, env: ENV, extendEnv: false, reject: false, input, stripFinalNewline: false })
}

function heapspec(backend: Backend, command: string[], input?: string, flags: string[] = []) {
  const json = join(scratch(), 'run.json')
  const result = execa('node', [CLI, 'run', '--backend', backend, '--json', json, ...flags, '--', ...command], {
    cwd: ROOT,
    env: ENV,
    extendEnv: false,
    reject: false,
    input,
    stripFinalNewline: false,
  })
  return { result, json: () => JSON.parse(readFileSync(json, 'utf8')) as { program: { exitCode: number | null; signal: string | null } } }
}


async function gone(pids: number[], withinMs = 5000): Promise<number[]> {
  const deadline = Date.now() + withinMs
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  return pids.filter(alive)
}

async function pidsFrom(file: string, withinMs = 60_000): Promise<number[]> {
  const deadline = Date.now() + withinMs
  for (;;) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8')
      if (text.endsWith('\n')) return text.trim().split(' ').map(Number)
    }
    if (Date.now() >= deadline) throw new Error(`the program never wrote ${file}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Runs `node` with `args` and counts, without keeping, the bytes of its stdout; stderr is kept. */
function countingRun(args: string[]): Promise<{ code: number | null; stdoutBytes: number; stderr: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', args, { cwd: ROOT, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdoutBytes = 0
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => (stdoutBytes += chunk.length))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdoutBytes, stderr: Buffer.concat(stderr) }))
  })
}

describe.each(BACKENDS)('under %s, the program runs as it does natively', (backend) => {
  it('from the CLI: stdin read, stdout byte for byte, stderr passed through, argv[0] and exit code its own, the report on stderr', async () => {
    const command = [PROGRAM, 'echo', 'an arg', '--out', 'x', '--json=y']
    const input = 'first line\nsecond line\n'
    const expected = await native(command, input)
    expect(expected.stdout).toContain(`argv[0]=${PROGRAM}\n`)
    const { result, json } = heapspec(backend, command, input)
    const got = await result
    expect(got.stdout).toBe(expected.stdout)
    expect(got.stderr).toContain('as-native: a line on stderr\n')
    expect(got.stderr).toContain(`(backend: ${backend})`)
    expect(got.stderr).toContain('100 bytes in 1 block is definitely lost')
    expect(json().program).toMatchObject({ exitCode: 3, signal: null })
    expect(got.exitCode).toBe(1)
    // the program's --out and --json are its own: heapspec made nothing
    expect(existsSync(join(ROOT, 'x'))).toBe(false)
  })

  // Under valgrind, what plain valgrind gives its client too: memcheck's LD_PRELOAD and, on
  // Debian, its wrapper script's LD_LIBRARY_PATH, GLIBCXX_FORCE_NEW and PWD; heapspec adds nothing.
  it('sees the environment it was given, nothing added or removed', async () => {
    const expected = await native(backend === 'valgrind' ? ['valgrind', '-q', '--leak-check=no', PROGRAM, 'env'] : [PROGRAM, 'env'])
    const got = await heapspec(backend, [PROGRAM, 'env']).result
    expect(got.stdout.split('\n').sort()).toEqual(expected.stdout.split('\n').sort())
  })

  it('from the API with stdio "pipe": output captured, stdin empty', async () => {
    const expected = await native([PROGRAM, 'echo', 'x'], '')
    const run = await runNative([PROGRAM, 'echo', 'x'], { backend, cwd: ROOT, env: ENV, stdio: 'pipe' })
    expect(run.stdout).toBe(expected.stdout)
    expect(run.stderr).toBe(expected.stderr)
    expect(run.json.program).toMatchObject({ exitCode: 3, signal: null })
  })

  it('from the API with stdio "inherit": the caller\'s stdin, stdout and stderr', async () => {
    const input = 'through the API\n'
    const expected = await native([PROGRAM, 'echo', 'y'], input)
    const script = `import { runNative } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'index.js'))}
const run = await runNative(${JSON.stringify([PROGRAM, 'echo', 'y'])}, { backend: ${JSON.stringify(backend)}, stdio: 'inherit' })
process.stderr.write('exit ' + run.json.program.exitCode + '\\n')`
    const got = await execa('node', ['--input-type=module', '-e', script], { cwd: ROOT, env: ENV, extendEnv: false, reject: false, input, stripFinalNewline: false })
    expect(got.stdout).toBe(expected.stdout)
    expect(got.stderr).toBe(`${expected.stderr}exit 3\n`)
  })

  it('an assert: its message appears, and it ends by SIGABRT', async () => {
    const expected = await native([PROGRAM, 'assert'])
    expect(expected.signal).toBe('SIGABRT')
    const { result, json } = heapspec(backend, [PROGRAM, 'assert'])
    const got = await result
    expect(got.stderr).toContain("Assertion `argc == 0 && \"as-native asserts\"' failed.")
    expect(got.stdout).toBe('')
    expect(json().program).toMatchObject({ exitCode: null, signal: 'SIGABRT' })
  })

  // 100 MB under valgrind alone takes a minute (memcheck runs write() ~30x slower): 8 MB there.
  const floodBytes = backend === 'valgrind' ? 8 << 20 : 100 << 20
  it(`${floodBytes >> 20} MB on stdout and 1 MB on stderr, neither blocked nor lost`, async () => {
    const got = await countingRun([CLI, 'run', '--backend', backend, '--', PROGRAM, 'flood', String(floodBytes), String(1 << 20)])
    expect(got.stdoutBytes).toBe(floodBytes)
    const stderr = got.stderr.toString('latin1')
    expect(stderr.slice(0, 1 << 20)).toBe('x'.repeat(1 << 20))
    expect(stderr.slice(1 << 20)).toMatch(/^heapspec: .* exited with code 0/)
    expect(got.code).toBe(1) // the leak
  })

  it.each(['fork', 'setsid'])('a child it %ss is gone with it when it exits', async (mode) => {
    const pidfile = join(scratch(), 'pids')
    const got = await heapspec(backend, [PROGRAM, mode, pidfile]).result
    expect(got.stderr).toContain(`(backend: ${backend})`)
    expect(await gone(await pidsFrom(pidfile))).toEqual([])
  })

  it('on SIGTERM: the report of what ran so far, and nothing left', async () => {
    const pidfile = join(scratch(), 'pids')
    const { result } = heapspec(backend, [PROGRAM, 'hang', pidfile])
    const pids = await pidsFrom(pidfile)
    result.kill('SIGTERM')
    const got = await result
    expect(got.exitCode).toBe(143)
    expect(got.stderr).toMatch(/warning: the program was stopped after [\d.]+ s/)
    expect(got.stderr).toContain(`was stopped when heapspec got SIGTERM (backend: ${backend})`)
    expect(await gone(pids)).toEqual([])
  })

  it('at --timeout: the report of what ran so far, and nothing left', async () => {
    const pidfile = join(scratch(), 'pids')
    const { result, json } = heapspec(backend, [PROGRAM, 'hang', pidfile], undefined, ['--timeout', backend === 'valgrind' ? '4' : '2'])
    const got = await result
    const pids = await pidsFrom(pidfile, 0)
    expect(got.stderr).toContain('was stopped by the timeout')
    expect(json().program).toMatchObject({ timedOut: true })
    expect(await gone(pids)).toEqual([])
  })

  it('heapspec SIGKILLed mid-run: the debugger, the program and its child go too', async () => {
    const pidfile = join(scratch(), 'pids')
    const { result } = heapspec(backend, [PROGRAM, 'hang', pidfile])
    const pids = await pidsFrom(pidfile)
    const tree = descendants(result.pid!)
    expect(tree).toEqual(expect.arrayContaining(pids))
    result.kill('SIGKILL')
    await result
    expect(await gone([...tree, ...pids])).toEqual([])
  })
})

describe('temporary directories', () => {
  it('a dead run\'s are removed by the next run; a live one\'s and unrelated ones are kept', async () => {
    const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8')
    const myStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    const dead = mkdtempSync(join(tmpdir(), `heapspec-${process.pid}-1-`)) // this pid, another start time: a dead run's
    const deadValgrind = mkdtempSync(join(tmpdir(), 'heapspec-valgrind-4194304-1-'))
    const live = mkdtempSync(join(tmpdir(), `heapspec-${process.pid}-${myStart}-`))
    const unrelated = mkdtempSync(join(tmpdir(), 'heapspec-results-'))
    await runNative([PROGRAM, 'echo'], { backend: 'preload', cwd: ROOT, env: ENV })
    expect([existsSync(dead), existsSync(deadValgrind), existsSync(live), existsSync(unrelated)]).toEqual([false, false, true, true])
  })
})

describe.each(BACKENDS)('Debian programs under %s, beside their native run', (backend) => {
  const dir = scratch()
  writeFileSync(join(dir, 'in.json'), JSON.stringify({ items: [3, 1, 2], name: 'heapspec' }))
  const lines = Array.from({ length: 2000 }, (_, i) => `line ${(i * 7919) % 2000} of ${i}`).join('\n') + '\n'
  const cases: [string, string[], string | undefined][] = [
    ['jq', ['jq', '-c', '{n: .name, s: (.items | sort)}', join(dir, 'in.json')], undefined],
    ['jq reading stdin', ['jq', '.items | add'], JSON.stringify({ items: [1, 2, 3] })],
    ['sort', ['sort', '-t', ' ', '-k2,2n'], lines],
    ['sed', ['sed', '-n', 's/^line \\([0-9]*5\\) .*/\\1/p'], lines],
    ['wc', ['wc', '-l'], 'a\nb\n'],
    ['jq failing', ['jq', '.x.y'], '[1]'],
  ]
  it.each(cases)('%s', async (_name, command, input) => {
    const expected = await native(command, input)
    const { result, json } = heapspec(backend, command, input)
    const got = await result
    expect(got.stdout).toBe(expected.stdout)
    expect(got.stderr.startsWith(expected.stderr)).toBe(true)
    expect(json().program.exitCode).toBe(expected.exitCode)
  })
})
