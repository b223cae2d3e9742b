"""The benchmark's floor: do-nothing breakpoints on the allocator entry points heapspec breaks on.

What GDB itself costs per stop, with no work done: the capture cannot be cheaper than this.
"""
import re

import gdb


class Nothing(gdb.Breakpoint):
    def stop(self):
        return False


gdb.execute("set pagination off")
gdb.execute("set stop-on-solib-events 1")
gdb.execute("run", to_string=True)
while not any(o.filename and re.search(r"/libc\.so", o.filename) for o in gdb.objfiles()):
    gdb.execute("continue", to_string=True)
gdb.execute("set stop-on-solib-events 0")
placed = set()
for name in ("malloc", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign", "valloc", "pvalloc", "free"):
    addr = int(gdb.parse_and_eval("(long)&%s" % name))
    if addr not in placed:
        placed.add(addr)
        Nothing("*%d" % addr, internal=True)
gdb.execute("continue", to_string=True)
