/**
 * Reading a file named by someone else without trusting it: only a regular file (a FIFO would
 * block the read forever, a device never end it), and only up to a size limit, checked on the
 * open descriptor so the file cannot be swapped between the check and the read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'

/** Why a file was not read: one phrase for an error message (`it is a FIFO, not a regular file`). */
export class UnreadableFile extends Error {
  override name = 'UnreadableFile'
}

/** What kind of file a non-regular file is, in words. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  if (st.isSymbolicLink()) return 'a symbolic link'
  return 'not a regular file'
}

/** `64 MiB` */
export function formatMiB(bytes: number): string {
  const mib = bytes / (1024 * 1024)
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`
}

/**
 * The file's bytes, when it is a regular file of at most `limit` bytes. `noFollow` refuses a
 * symbolic link in the last component. Throws UnreadableFile saying why not, or the system's error.
 */
export function readRegularFile(path: string, limit: number, options: { noFollow?: boolean } = {}): Buffer {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (options.noFollow ? constants.O_NOFOLLOW : 0)
  let fd: number
  try {
    fd = openSync(path, flags)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new UnreadableFile('it is a symbolic link')
    throw error
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new UnreadableFile(`it is ${kindOf(st)}, not a regular file`)
    if (st.size > limit) throw new UnreadableFile(`it is ${formatMiB(st.size)}, more than the ${formatMiB(limit)} heapspec reads`)
    // read to the end, never past the limit: the file may grow while it is read
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, limit + 1 - total))
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) break
      chunks.push(chunk.subarray(0, n))
      total += n
      if (total > limit) throw new UnreadableFile(`it is more than the ${formatMiB(limit)} heapspec reads`)
    }
    return Buffer.concat(chunks, total)
  } finally {
    closeSync(fd)
  }
}
