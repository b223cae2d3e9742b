/** Colour on a terminal, none in a pipe or a CI log; NO_COLOR and FORCE_COLOR win. */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true
  if (env.NO_COLOR || env.CI || env.TERM === 'dumb') return false
  return Boolean(stream.isTTY)
}
