import { callerStack } from './heap.js'
import type { Frame, MemoryError } from './types.js'

/** memcheck's words for the errors an allocator sees. */
export const ERROR_WHAT: Record<string, string> = {
  'invalid-free': 'Invalid free() / delete / delete[] / realloc()',
  'mismatched-free': 'Mismatched free() / delete / delete []',
}

/** What a backend knows of the address a bad free was given: memcheck's "Address 0x... is ..." story. */
export type AddressStory =
  /** inside a block freed earlier: its free's stack and its allocation's */
  | { kind: 'freed'; base: number; size: number; freeStack: number; allocStack: number }
  /** inside a live block (its start, for a mismatched free) */
  | { kind: 'alloc'; base: number; size: number; allocStack: number }
  /**
   * on thread `thread`'s stack (1: the first), in the frame of the bad call's caller number `frame`
   * (0: the first), whose function's entry (one past it, as a return address) is `entryStack`'s frame
   */
  | { kind: 'stack'; thread: number; frame: number; entryStack: number }
  /** inside a loaded object's variable */
  | { kind: 'data'; symbol: string; offset: number }
  | { kind: 'none' }

/** A memory error as an observer reported it: stacks by id, the test case by index (-1: none). */
export interface ObservedError {
  kind: string
  test: number
  stack: number
  addr: number
  story: AddressStory
}

const hex = (n: number): string => `0x${n.toString(16)}`

/** `fn (file.c:12)`, as memcheck names a frame in its "created by" line: the function, and the line of its entry. */
function frameName(frame: Frame | undefined, entry: Frame | undefined): string {
  const fn = frame?.fn ?? entry?.fn ?? '???'
  const at = entry?.file ? entry : frame
  if (at?.file) return `${fn} (${at.file.slice(at.file.lastIndexOf('/') + 1)}:${at.line})`
  return frame?.object ? `${fn} (in ${frame.object})` : fn
}

/** The error as the run reports it, memcheck's words and stacks: `frames` resolves a stack id, innermost first. */
export function describeError(error: ObservedError, test: string | null, frames: (stack: number) => Frame[]): MemoryError {
  const stack = (id: number): Frame[] => callerStack(frames(id)).stack
  const { addr, story } = error
  const inside = (base: number, size: number, state: string): string => `Address ${hex(addr)} is ${addr - base} bytes inside a block of size ${size} ${state}`
  let auxStacks: MemoryError['auxStacks']
  switch (story.kind) {
    case 'freed':
      auxStacks = [
        { what: inside(story.base, story.size, "free'd"), stack: stack(story.freeStack) },
        { what: "Block was alloc'd at", stack: stack(story.allocStack) },
      ]
      break
    case 'alloc':
      auxStacks = [{ what: inside(story.base, story.size, "alloc'd"), stack: stack(story.allocStack) }]
      break
    case 'stack':
      auxStacks = [
        { what: `Address ${hex(addr)} is on thread ${story.thread}'s stack`, stack: [] },
        // memcheck counts the freeing function as frame #0
        { what: `in frame #${story.frame + 1}, created by ${frameName(frames(error.stack)[story.frame], frames(story.entryStack)[0])}`, stack: [] },
      ]
      break
    case 'data':
      auxStacks = [{ what: `Address ${hex(addr)} is ${story.offset} bytes inside data symbol "${story.symbol}"`, stack: [] }]
      break
    default:
      auxStacks = [{ what: `Address ${hex(addr)} is not stack'd, malloc'd or (recently) free'd`, stack: [] }]
  }
  return { kind: error.kind, ...(ERROR_WHAT[error.kind] ? { what: ERROR_WHAT[error.kind] } : {}), test, stack: stack(error.stack), auxStacks }
}
