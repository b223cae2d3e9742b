/** The root of every error heapspec throws on purpose; `message` is one line a user can act on. */
export class HeapspecError extends Error {
  override name = 'HeapspecError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** The program or a capture backend could not be started (missing program, missing gdb, ...). */
export class CannotStartError extends HeapspecError {
  override name = 'CannotStartError'
}

/** The capture began but could not be completed (the debugger died, its output was malformed, ...). */
export class CaptureFailedError extends HeapspecError {
  override name = 'CaptureFailedError'
}

/** An option had a value heapspec cannot use. */
export class BadOptionError extends HeapspecError {
  override name = 'BadOptionError'
}

/** Describes a value for an error message: `-1 (number)`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\` (string)`
  if (value instanceof RegExp) return `\`${String(value)}\` (RegExp)`
  if (value === null) return '`null`'
  if (Array.isArray(value)) return `\`${JSON.stringify(value)}\` (array)`
  if (typeof value === 'object') return `\`${JSON.stringify(value)}\` (object)`
  return `\`${String(value)}\` (${typeof value})`
}
