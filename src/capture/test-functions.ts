import { execa } from 'execa'
import { BadOptionError } from '../errors.js'
import { elfFunctionNames } from './valgrind/elf-symbols.js'

/** What the C runtime and the compiler put into every program: never a test case, nor worth listing. */
const RUNTIME = /^(_start|_init|_fini|frame_dummy|register_tm_clones|deregister_tm_clones|__do_global_dtors_aux|__libc_csu_(init|fini)|_dl_relocate_static_pie|__x86\.get_pc_thunk.*|_GLOBAL__sub_I_.*)$/

/** How many of the program's function names a "matches nothing" error lists. */
const SHOWN = 8

/**
 * A demangled name without its parameter list and qualifiers, as gdb lists functions and as the
 * test case is named: `Heap_Clean_Test::TestBody()` -> `Heap_Clean_Test::TestBody`. A function
 * template's name comes with its return type (`void test_t<int>()`), which is left out too:
 * `test_t<int>`, as gdb names it.
 */
export function functionName(demangled: string): string {
  let text = demangled.replace(/(\s+(const|volatile|&&|&|noexcept))+$/, '')
  if (!text.endsWith(')')) return text
  let depth = 0
  for (let i = text.length - 1; i >= 0; i--) {
    if (text[i] === ')') depth++
    else if (text[i] === '(' && --depth === 0) {
      text = text.slice(0, i)
      break
    }
  }
  return withoutReturnType(text)
}

/** `void test_t<int>` -> `test_t<int>`: the name after the last space outside <> and (), unless it is an operator's. */
function withoutReturnType(name: string): string {
  if (/\boperator\b/.test(name)) return name
  let depth = 0
  let last = -1
  for (let i = 0; i < name.length; i++) {
    const c = name[i]
    if (c === '<' || c === '(') depth++
    else if (c === '>' || c === ')') depth--
    else if (c === ' ' && depth === 0) last = i
  }
  return last >= 0 ? name.slice(last + 1) : name
}

/** Demangles C++ names with c++filt, one call for all; names it cannot read stay as they are. */
async function demangle(names: string[]): Promise<string[]> {
  if (!names.some((n) => n.startsWith('_Z'))) return names
  const result = await execa('c++filt', [], { input: names.join('\n') + '\n', reject: false, timeout: 60_000, maxBuffer: 256 * 1024 * 1024 })
  const out = String(result.stdout).split('\n')
  return result.exitCode === 0 && out.length >= names.length ? names.map((n, i) => out[i] || n) : names
}

/** A copy of `pattern` that keeps no state between matches (`g` and `y` make test() resume at lastIndex). */
function stateless(pattern: RegExp): RegExp {
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
}

/**
 * The functions of `program` that the `tests` option makes test cases: every function the program
 * defines whose name (demangled, without parameters) the user's RegExp matches, flags included, on
 * every backend alike. A pattern that matches none is a bad option, listing some of the names.
 */
export async function testFunctionNames(program: string, pattern: RegExp, shown = program): Promise<string[]> {
  const names = [...new Set((await demangle(elfFunctionNames(program))).map(functionName))].filter((n) => !RUNTIME.test(n)).sort()
  const re = stateless(pattern)
  const found = names.filter((n) => re.test(n))
  if (found.length > 0) return found
  const some = names.slice(0, SHOWN).join(', ')
  throw new BadOptionError(
    `heapspec: the \`tests\` pattern ${String(pattern)} matches no function of ${shown} (${names.length === 0 ? 'it lists no function names: is it stripped?' : `its functions include ${some}${names.length > SHOWN ? ', ...' : ''}`}). Use a JavaScript regular expression that matches function names (C++: with namespace and class, without parameters).`,
  )
}

/**
 * The symbols behind test function names (as testFunctionNames gives them): `[symbol, name]` for
 * every function of `program` so named, overloads included, for an observer that hooks symbols.
 */
export async function testFunctionSymbols(program: string, names: readonly string[]): Promise<[string, string][]> {
  const wanted = new Set(names)
  const symbols = elfFunctionNames(program)
  const demangled = await demangle(symbols)
  return symbols.flatMap((symbol, i): [string, string][] => {
    const name = functionName(demangled[i]!)
    return wanted.has(name) ? [[symbol, name]] : []
  })
}
