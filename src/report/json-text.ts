/** Texts up to this size are indented for reading; bigger ones are written compact (indenting nearly triples them). */
const INDENTED_UP_TO = 1024 * 1024

/**
 * A JSON file's text: indented while small, compact when big. A run of 100,000 loss records was a
 * 57 MB indented text whose stringify and write were a third of the CLI's time.
 */
export function jsonText(value: unknown): string {
  const compact = JSON.stringify(value)
  return compact.length <= INDENTED_UP_TO ? JSON.stringify(value, null, 2) : compact
}
