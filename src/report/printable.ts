/**
 * Text from a saved run made safe for a terminal or a CI log. Saved runs come from other machines
 * (shards, artifacts): a name in one must not move the cursor, colour the terminal, end a line or
 * begin one with a GitHub Actions workflow command (`::stop-commands::`, `::add-mask::`).
 */

/** Longest run text printed whole; the rest is elided with a count. */
export const MAX_PRINTED_CHARS = 2000

// C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and the bidirectional
// overrides and isolates (they reorder what the terminal shows: "Trojan Source").
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escape(char: string): string {
  const code = char.charCodeAt(0)
  return NAMED[char] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
}

/** The text with every control character shown as an escape (`\n`, `\x1b`), and cut at `max` characters. */
export function printable(text: string, max = MAX_PRINTED_CHARS): string {
  const cut = text.length > max ? `${text.slice(0, max)}… (${(text.length - max).toLocaleString('en-US')} more characters)` : text
  return cut.replace(UNPRINTABLE, escape)
}

/**
 * As printable, for text that begins a line: the Actions runner reads a line whose first
 * non-blank characters are `::` (or the older `##[`) as a workflow command, so those are
 * escaped with a backslash.
 */
export function printableLineStart(text: string, max = MAX_PRINTED_CHARS): string {
  return printable(text, max).replace(/^(\s*)(::|##\[)/, '$1\\$2')
}
