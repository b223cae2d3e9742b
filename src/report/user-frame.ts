import { isAbsolute } from 'node:path'
import type { Frame } from '../model/types.js'

/** Objects of the system (libc, libstdc++, ld.so): frames there are never the user's code. */
const SYSTEM_OBJECT = /^\/(usr\/)?(local\/)?lib(32|64|x32)?\//

/** System sources compiled into the user's program: libstdc++'s templates, inline functions of system headers. */
const SYSTEM_SOURCE = /^\/usr\/(local\/)?(include|lib(32|64)?|share|src)\//

/**
 * A frame in the user's own code: source-level debug info, in an object that is not a system
 * library (libc, libstdc++, ld.so, whose debug info names their own build tree), from a source
 * that is not a system header.
 */
export function isUserFrame(frame: Frame): boolean {
  if (!frame.file || frame.line === null) return false
  if (frame.object && SYSTEM_OBJECT.test(frame.object)) return false
  return !(isAbsolute(frame.file) && SYSTEM_SOURCE.test(frame.file))
}

/** The frame a leak is reported at: the first in the user's code, else the first frame, else none. */
export function siteFrame(stack: Frame[]): Frame | undefined {
  return stack.find(isUserFrame) ?? stack[0]
}
