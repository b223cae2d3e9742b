"""Objects mode of heapspec's GDB-side observer: only what chosen objects allocate."""
import os
import re
import struct

import gdb

from elf import R_X86_64_JUMP_SLOT, Elf, load_bias, mappings
from frees import EXCEPTION_ALLOCATORS, NEW_CODES, THROWING_NEW
from observe import RDI, RSP, Allocator, Free, State, ThrowStart, address_of, current, emit, inject_mmap, open_gate


# --- Objects mode: only what chosen objects allocate (a Node addon, not Node) ----------------
# Node makes hundreds of thousands of allocations before a script runs; stopping at each costs
# minutes. With `objects`, libc's allocator entries are not broken on while Node runs its own
# code: instead each chosen object's GOT slots for the malloc family and C++ new/delete are
# pointed at stubs of ours that jump on to the real function, and the breakpoints sit on the
# stubs, so the object's own calls stop. Its other PLT calls (into Node, libstdc++, a library it
# links) go through gate stubs: a stop there opens the gate, libc's allocator breakpoints go live
# for as long as such a call may run, and they keep what is allocated with chosen code on the
# stack, the rule every backend follows (a std::vector growing through Node's exported copy of
# _M_realloc_insert, a library's own mallocs). Slots are patched once the dynamic linker has
# relocated the object (at main, and when each dlopen returns), or relocation would overwrite them.

GOT_ALLOCATORS = {
    "malloc": "M", "calloc": "C", "realloc": "R", "memalign": "A", "aligned_alloc": "A", "posix_memalign": "P",
    "valloc": "M", "pvalloc": "M", "_Znwm": "M", "_Znam": "M", "_ZnwmRKSt9nothrow_t": "M",
    "_ZnamRKSt9nothrow_t": "M", "_ZnwmSt11align_val_t": "M", "_ZnamSt11align_val_t": "M",
    "_ZnwmSt11align_val_tRKSt9nothrow_t": "M", "_ZnamSt11align_val_tRKSt9nothrow_t": "M",
}
LIBC_ALLOCATORS = [("malloc", "M"), ("calloc", "C"), ("realloc", "R"), ("memalign", "A"), ("aligned_alloc", "A"),
                   ("posix_memalign", "P"), ("valloc", "M"), ("pvalloc", "M")]
# Calls that never return to the caller, or that unwind the stack: no gate for them.
UNGATED = re.compile(r"^(exit|_exit|_Exit|abort|pthread_exit|longjmp|siglongjmp|_longjmp|__longjmp_chk|__stack_chk_fail"
                     r"|__assert_fail|__cxa_throw|__cxa_rethrow|_Unwind_.*|_ZSt\d+__throw_.*|_ZSt9terminatev|__cxa_finalize)$")
GOT_FREES = {"free", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
             "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t"}


def configure(patterns):
    Objects.patterns = [re.compile(p) for p in patterns]


class Objects:
    patterns = []
    # objfile path -> (its load bias, a GOT slot we wrote, the stub written there): an object
    # unloaded and loaded again (a Node Worker's exit unloads the addon it loaded, and the main
    # thread loads it anew) has its GOT fresh, so it is patched again
    patched = {}
    wrapping = set()  # the libstdc++ objects whose operator new functions are in State.wrappers
    definitions = {}  # objfile path -> its defined dynamic symbols
    plain = {}  # objfile path -> its plain functions (Elf.plain_functions)

    @staticmethod
    def chosen(path):
        return bool(path) and not path.endswith(".debug") and any(p.search(path) for p in Objects.patterns)

    @classmethod
    def binding(cls, name, exclude):
        """(object path, address) where the dynamic linker binds `name`: the first loaded object
        that defines it; None when none does."""
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
                return path, bias + symbols[name]
        return None

    @classmethod
    def resolve(cls, name, exclude):
        """Where the dynamic linker binds `name`, or None."""
        found = cls.binding(name, exclude)
        return found[1] if found else None

    @classmethod
    def resolve_plain(cls, name, exclude):
        """Where the dynamic linker binds a PLT call to `name`, when that is plain code: None for
        an IFUNC (its symbol is the resolver), a versioned name or data."""
        found = cls.binding(name, exclude)
        if found is None:
            return None
        path, target = found
        if path not in cls.plain:
            cls.plain[path] = Elf(path).plain_functions()
        return target if name in cls.plain[path] else None

    @classmethod
    def patch_all(cls):
        if State.ring is None:
            return
        pid = gdb.selected_inferior().pid
        for objfile in gdb.objfiles():
            path = objfile.filename
            if path and path not in cls.wrapping and re.search(r"/libstdc\+\+\.so", path):
                cls.wrapping.add(path)
                bias = load_bias(pid, path) or 0
                elf = Elf(path)
                State.wrappers.extend((bias + value, bias + value + size) for value, size in elf.extents(NEW_CODES))
                defined = elf.defined()
                for name in EXCEPTION_ALLOCATORS:
                    if name in defined:
                        ThrowStart("*%d" % (bias + defined[name]), internal=True)
            if not cls.chosen(path):
                continue
            bias = load_bias(pid, path)
            if bias is None or cls.still_patched(path, bias):
                continue
            cls.patched[path] = (bias, 0, 0)
            emit("O %x %s" % (bias, path))
            State.chosen.extend((lo, hi) for lo, hi, _offset in mappings(pid, path))
            elf = Elf(path)
            calls = elf.got_slots((R_X86_64_JUMP_SLOT,))
            for name, slots in elf.got_slots().items():
                kind = GOT_ALLOCATORS.get(name) or ("F" if name in GOT_FREES else None)
                if kind == "F" and FreeFilter.base is not None:
                    continue  # the filter sees these frees, whoever makes them
                if kind:
                    target = cls.resolve(name, path)
                elif name in calls and not UNGATED.match(name):
                    kind, target, slots = "G", cls.resolve_plain(name, path), calls[name]
                else:
                    continue
                stub = State.ring.jump(target) if target else None
                if stub is None:
                    continue
                if kind == "F":
                    Free("*%d" % stub, internal=True)
                elif kind == "G":
                    Gate("*%d" % stub, internal=True)
                else:
                    Allocator(stub, kind, throws=name in THROWING_NEW)
                for slot in slots:
                    State.mem.write(bias + slot, struct.pack("<Q", stub))
                    cls.patched[path] = (bias, bias + slot, stub)
            cls.gate_libc()

    @classmethod
    def still_patched(cls, path, bias):
        """Whether the object at `path` is the copy patched before: loaded at the same place, with
        the stub still in the GOT slot we wrote."""
        mark = cls.patched.get(path)
        if mark is None or mark[0] != bias:
            return False
        return mark[1] == 0 or State.mem.read(mark[1], 8) == struct.pack("<Q", mark[2])

    @classmethod
    def gate_libc(cls):
        """libc's allocator entries, live only while a gate is open (once, at the first chosen object)."""
        if State.gated:
            return
        placed = set()
        for name, kind in LIBC_ALLOCATORS:
            addr = address_of(name)
            if addr is not None and addr not in placed:
                placed.add(addr)
                Allocator(addr, kind, gated=True)
        if FreeFilter.base is None:
            Free("*%d" % address_of("free"), gated=True, internal=True)


class FreeFilter:
    """libc's free, filtered inside the program: every free of an observed block stops, no other.

    A block Node allocates with the addon's code on the stack is often freed by Node alone (N-API's
    bookkeeping, at exit); a breakpoint on free would stop at each of Node's hundreds of thousands
    of frees. Instead free's first instruction jumps to a filter of ours that looks the pointer up
    in an open-addressing table of the observed blocks, kept by this script at each allocation
    stop, and only a hit reaches a breakpoint. Operator delete ends in free, so it is filtered
    too. Installed only over the free entry it was written for (`test rdi, rdi; je rel32`);
    elsewhere the chosen objects' own frees and those during a gate are what is seen.
    """

    BITS = 20
    SLOTS = 1 << BITS
    EMPTY, TOMBSTONE = 0, 1
    base = None  # the table; the filter's code follows it
    live = 0
    full = False  # said once: the table holds no more blocks

    @classmethod
    def install(cls):
        free = address_of("free")
        if free is None:
            return False
        head = State.mem.read(free, 9)
        if head[:5] != b"\x48\x85\xff\x0f\x84":  # test rdi, rdi; je rel32
            return False
        null_target = free + 9 + struct.unpack_from("<i", head, 5)[0]
        base = inject_mmap(cls.SLOTS * 8 + 4096)
        if base is None:
            return False
        code = base + cls.SLOTS * 8
        if abs(code - (free + 5)) >= 1 << 31:
            return False  # out of a rel32 jump's reach
        seen = base + cls.SLOTS * 8 + 4096 - 8  # the ring's drained count, as this script last left it
        c = bytearray()
        c += b"\x48\x85\xff"  # test rdi, rdi
        null_jump = len(c)
        c += b"\x0f\x84\x00\x00\x00\x00"  # jz null (patched below)
        # An allocation the script has not taken from the ring yet is in no table: stop until it is.
        c += b"\x48\xb8" + struct.pack("<Q", State.ring.index)  # movabs rax, &ring.index
        c += b"\x48\x8b\x00"  # mov rax, [rax]
        c += b"\x48\xb9" + struct.pack("<Q", seen)  # movabs rcx, &seen
        c += b"\x48\x3b\x01"  # cmp rax, [rcx]
        pending_jump = len(c)
        c += b"\x0f\x85\x00\x00\x00\x00"  # jne hit (patched below)
        c += b"\x48\x89\xf8"  # mov rax, rdi
        c += b"\x48\xc1\xe8\x04"  # shr rax, 4
        c += b"\x48\xb9" + struct.pack("<Q", 0x9E3779B97F4A7C15)  # movabs rcx, golden
        c += b"\x48\x0f\xaf\xc1"  # imul rax, rcx
        c += b"\x48\xc1\xe8" + bytes([64 - cls.BITS])  # shr rax, 64 - BITS
        c += b"\x48\xba" + struct.pack("<Q", base)  # movabs rdx, table
        loop = len(c)
        c += b"\x48\x8b\x0c\xc2"  # mov rcx, [rdx + rax*8]
        c += b"\x48\x85\xc9"  # test rcx, rcx
        miss_jump = len(c)
        c += b"\x74\x00"  # jz miss (patched below)
        c += b"\x48\x39\xf9"  # cmp rcx, rdi
        hit_jump = len(c)
        c += b"\x74\x00"  # je hit (patched below)
        c += b"\xff\xc0"  # inc eax
        c += b"\x25" + struct.pack("<I", cls.SLOTS - 1)  # and eax, SLOTS - 1
        c += b"\xeb" + struct.pack("<b", loop - (len(c) + 2))  # jmp loop
        hit = len(c)
        c += b"\x90"  # nop: the breakpoint's place
        miss = len(c)
        c += b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", free + 9)  # jmp free's rest
        null = len(c)
        c += b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", null_target)  # free(NULL): as free does
        struct.pack_into("<i", c, null_jump + 2, null - (null_jump + 6))
        struct.pack_into("<i", c, pending_jump + 2, hit - (pending_jump + 6))
        c[miss_jump + 1] = miss - (miss_jump + 2)
        c[hit_jump + 1] = hit - (hit_jump + 2)
        State.mem.write(code, bytes(c))
        FreeHit("*%d" % (code + hit), internal=True)
        State.mem.write(free, b"\xe9" + struct.pack("<i", code - (free + 5)))  # jmp filter
        cls.base, cls.seen = base, seen
        State.mem.write(seen, struct.pack("<Q", State.ring.seen))
        State.on_block = cls.add
        State.on_free = cls.remove
        State.on_drained = cls.drained
        return True

    @classmethod
    def drained(cls, seen):
        State.mem.write(cls.seen, struct.pack("<Q", seen))

    @classmethod
    def probe(cls, addr):
        """The table's slots from `addr`'s own on, as (address of the slot, word in it), up to an empty one."""
        i = ((((addr >> 4) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - cls.BITS))
        while True:
            at = cls.base + i * 8
            word = State.mem.word(at)
            yield at, word
            if word == cls.EMPTY:
                return
            i = (i + 1) & (cls.SLOTS - 1)

    @classmethod
    def holds(cls, addr):
        return any(word == addr for _at, word in cls.probe(addr))

    @classmethod
    def add(cls, addr):
        if cls.live >= cls.SLOTS // 2:
            if not cls.full:
                cls.full = True
                emit("! more than %d blocks of the chosen objects live at once: the free filter is full, so frees "
                     "of the rest would go unseen" % (cls.SLOTS // 2))
            return
        for at, word in cls.probe(addr):
            if word == addr:
                return
            if word in (cls.EMPTY, cls.TOMBSTONE):
                State.mem.write(at, struct.pack("<Q", addr))
                cls.live += 1
                return

    @classmethod
    def remove(cls, addr):
        for at, word in cls.probe(addr):
            if word == addr:
                State.mem.write(at, struct.pack("<Q", cls.TOMBSTONE))
                cls.live -= 1
                return


class FreeHit(gdb.Breakpoint):
    """The filter found the pointer, or allocations wait in the ring: once they are taken, a free
    of an observed block is an event, whoever frees it."""

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        if tid not in State.busy and FreeFilter.holds(regs[RDI]):
            emit("F %d %x" % (tid, regs[RDI]))
            FreeFilter.remove(regs[RDI])
        return False


class Gate(gdb.Breakpoint):
    """A chosen object's call out of its own code, through its PLT: opens the gate for its thread."""

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        open_gate(tid, regs[RSP])
        return False


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
