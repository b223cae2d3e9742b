"""Objects mode of heapspec's GDB-side observer: only what chosen objects allocate."""
import os
import re
import struct

import gdb

from elf import Elf, load_bias
from observe import Allocator, Free, State, emit


# --- Objects mode: only what chosen objects allocate (a Node addon, not Node) ----------------
# Node makes hundreds of thousands of allocations before a script runs; stopping at each costs
# minutes. With `objects`, the allocator entries are not broken on in libc: instead each chosen
# object's GOT slots for the malloc family and C++ new/delete are pointed at stubs of ours that
# jump on to the real function, and the breakpoints sit on the stubs. Only the object's own
# calls stop. Slots are patched once the dynamic linker has relocated the object (at main, and
# when each dlopen returns), or relocation would overwrite them.

GOT_ALLOCATORS = {
    "malloc": "M", "calloc": "C", "realloc": "R", "memalign": "A", "aligned_alloc": "A", "posix_memalign": "P",
    "valloc": "M", "pvalloc": "M", "_Znwm": "M", "_Znam": "M", "_ZnwmRKSt9nothrow_t": "M",
    "_ZnamRKSt9nothrow_t": "M", "_ZnwmSt11align_val_t": "M", "_ZnamSt11align_val_t": "M",
    "_ZnwmSt11align_val_tRKSt9nothrow_t": "M", "_ZnamSt11align_val_tRKSt9nothrow_t": "M",
}
GOT_FREES = {"free", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
             "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t"}


def configure(patterns):
    Objects.patterns = [re.compile(p) for p in patterns]


class Objects:
    patterns = []
    patched = set()
    definitions = {}  # objfile path -> its defined dynamic symbols

    @staticmethod
    def chosen(path):
        return bool(path) and not path.endswith(".debug") and any(p.search(path) for p in Objects.patterns)

    @classmethod
    def resolve(cls, name, exclude):
        """Where the dynamic linker binds `name`: the first loaded object that defines it."""
        pid = gdb.selected_inferior().pid
        for objfile in gdb.objfiles():
            path = objfile.filename
            if not path or path == exclude or path.endswith(".debug") or not os.path.exists(path):
                continue
            if path not in cls.definitions:
                try:
                    cls.definitions[path] = (Elf(path).defined(), load_bias(pid, path))
                except (OSError, ValueError, struct.error):
                    cls.definitions[path] = ({}, None)
            symbols, bias = cls.definitions[path]
            if name in symbols and bias is not None:
                return bias + symbols[name]
        return None

    @classmethod
    def patch_all(cls):
        if State.ring is None:
            return
        pid = gdb.selected_inferior().pid
        for objfile in gdb.objfiles():
            path = objfile.filename
            if path in cls.patched or not cls.chosen(path):
                continue
            bias = load_bias(pid, path)
            if bias is None:
                continue
            cls.patched.add(path)
            emit("O %x %s" % (bias, path))
            for name, slots in Elf(path).got_slots().items():
                kind = GOT_ALLOCATORS.get(name) or ("F" if name in GOT_FREES else None)
                target = cls.resolve(name, path) if kind else None
                stub = State.ring.jump(target) if target else None
                if stub is None:
                    continue
                if kind == "F":
                    Free("*%d" % stub, internal=True)
                else:
                    Allocator(stub, kind)
                for slot in slots:
                    State.mem.write(bias + slot, struct.pack("<Q", stub))


class PatchAt(gdb.Breakpoint):
    """At main: objects linked at start-up are relocated by now."""

    def stop(self):
        Objects.patch_all()
        return False


class DlopenReturn(gdb.FinishBreakpoint):
    def stop(self):
        Objects.patch_all()
        return False


class Dlopen(gdb.Breakpoint):
    def stop(self):
        DlopenReturn(gdb.newest_frame(), internal=True)
        return False
