import { readFileSync } from 'node:fs'

/** One file mapping of a chosen object in the process: [start, end). */
interface Mapping {
  start: number
  end: number
}

/**
 * Which code belongs to the chosen objects (the `objects` option: a Node addon inside Node). memcheck
 * names a frame's object in its XML (`<obj>`), but its text output (the monitor commands' listings,
 * the xtree reports written during the run) gives an object only for frames without line info; so a
 * return address is placed by the object mappings of the process, read from /proc at a stop.
 */
export class ObjectCode {
  private constructor(
    private readonly patterns: RegExp[],
    private readonly mappings: Mapping[],
  ) {}

  private readonly verdicts = new Map<string, boolean>()

  /** No mapping known yet: only objects named by path (memcheck's XML) can be told apart. */
  static none(patterns: RegExp[]): ObjectCode {
    return new ObjectCode(patterns, [])
  }

  /** The chosen objects' mappings in process `pid` (valgrind maps its program's objects in its own process). */
  static read(pid: number, patterns: RegExp[]): ObjectCode {
    return ObjectCode.fromMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'), patterns)
  }

  /** The chosen objects' mappings in a /proc/PID/maps text. */
  static fromMaps(maps: string, patterns: RegExp[]): ObjectCode {
    const mappings: Mapping[] = []
    for (const line of maps.split('\n')) {
      // start-end perms offset dev inode path (the path may hold spaces)
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+(\/.*?)(?: \(deleted\))?$/.exec(line)
      if (m && patterns.some((p) => p.test(m[3]!))) mappings.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16) })
    }
    return new ObjectCode(patterns, mappings)
  }

  /**
   * These mappings and `later`'s: a report may still name blocks of an object that is gone from
   * the process (at the stop after a fatal signal, /proc may show no mapping at all).
   */
  with(later: ObjectCode): ObjectCode {
    const known = new Set(this.mappings.map((m) => `${m.start}-${m.end}`))
    return new ObjectCode(this.patterns, [...this.mappings, ...later.mappings.filter((m) => !known.has(`${m.start}-${m.end}`))])
  }

  /** Whether the object at `path` (memcheck's `<obj>`) is a chosen one (asked for every frame of Node's reports: kept by path). */
  holdsObject(path: string): boolean {
    let held = this.verdicts.get(path)
    if (held === undefined) this.verdicts.set(path, (held = this.patterns.some((p) => p.test(path))))
    return held
  }

  /** Whether a frame's address is in a chosen object. A return address may sit just past the object's last instruction. */
  holdsPc(pc: number): boolean {
    return this.mappings.some((m) => pc >= m.start && pc <= m.end)
  }

  /** A frame as memcheck describes it: by object when it names one, else by address. */
  holdsFrame(frame: { pc?: number | undefined; object?: string | null | undefined }): boolean {
    if (frame.object) return this.holdsObject(frame.object)
    return frame.pc !== undefined && this.holdsPc(frame.pc)
  }
}
