/** The C compilers tried for what heapspec builds (the interposer, the launcher), in order: $CC first when set. */
export function compilers(): string[] {
  const fromEnv = process.env.CC?.trim()
  return [...(fromEnv ? [fromEnv] : []), 'cc', 'gcc', 'clang']
}
