"""The blocks heapspec's GDB-side observer has seen, for the frees it must judge at the stop.

A free of a pointer that is no live block is kept from glibc (the observer skips the call), as
memcheck ignores it, so it must be known at the free's stop: the host learns of it afterwards.
Here are only the facts the observer needs for that and for the address's story memcheck tells
(which block, freed by which stack); the host words and counts the errors.
"""
import collections

# The allocator a block came from, as the A lines name it: 0 the malloc family, 1.. an operator new
# in the host's NEW_OPERATORS order (odd: new, even: new[]).
NEW_CODES = {
    "_Znwm": 1, "_Znam": 2, "_ZnwmRKSt9nothrow_t": 3, "_ZnamRKSt9nothrow_t": 4, "_ZnwmSt11align_val_t": 5,
    "_ZnamSt11align_val_t": 6, "_ZnwmSt11align_val_tRKSt9nothrow_t": 7, "_ZnamSt11align_val_tRKSt9nothrow_t": 8,
}
# The operator new functions that throw std::bad_alloc when they fail (the others return NULL).
THROWING_NEW = {"_Znwm", "_Znam", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t"}
# Where a C++ throw begins: every throw allocates its exception through one of them first.
EXCEPTION_ALLOCATORS = ("__cxa_allocate_exception", "__cxa_allocate_dependent_exception")
# What each delete releases: its family (1 new, 2 new[]).
DELETE_FAMILIES = {
    "_ZdlPv": 1, "_ZdlPvm": 1, "_ZdlPvRKSt9nothrow_t": 1, "_ZdlPvSt11align_val_t": 1, "_ZdlPvmSt11align_val_t": 1,
    "_ZdlPvSt11align_val_tRKSt9nothrow_t": 1,
    "_ZdaPv": 2, "_ZdaPvm": 2, "_ZdaPvRKSt9nothrow_t": 2, "_ZdaPvSt11align_val_t": 2, "_ZdaPvmSt11align_val_t": 2,
    "_ZdaPvSt11align_val_tRKSt9nothrow_t": 2,
}
FREED_MAX = 1 << 16  # recently freed blocks remembered (memcheck's queue holds 20 MB of them)
# Freed blocks held from glibc, as the preload interposer holds them (see its errors.c): glibc would
# hand a freed address out again at once, and a stale pointer to it would keep the new block
# reachable where memcheck, which queues freed blocks, calls it lost. Blocks this big are not held.
QUARANTINE_BYTES = 1 << 18
QUARANTINE_BIG = 1000000


def family(code):
    """memcheck's family of an allocator code: 0 malloc, 1 new, 2 new[]."""
    return 0 if code == 0 else (1 if code & 1 else 2)


class Blocks:
    live = {}  # addr -> (size, alloc sid, allocator code)
    freed = collections.deque(maxlen=FREED_MAX)  # (addr, size, free sid, alloc sid), newest last

    @classmethod
    def allocated(cls, addr, size, sid, code):
        cls.live[addr] = (size, sid, code)

    @classmethod
    def released(cls, addr, free_sid):
        """The block at `addr` is freed by the call at `free_sid`; returns it, or None when no live block is there."""
        block = cls.live.pop(addr, None)
        if block is not None:
            cls.freed.append((addr, block[0], free_sid, block[1]))
        return block

    held = collections.deque()  # (addr, size) of the blocks kept from glibc, oldest first
    held_bytes = 0

    @classmethod
    def hold(cls, addr, size):
        """The program frees the live block at `addr`: what its free call gives glibc instead, the
        block itself (a big one), the oldest held block when the quarantine is full, or 0 (nothing)."""
        if size >= QUARANTINE_BIG:
            return addr
        cls.held.append((addr, size))
        cls.held_bytes += size
        if cls.held_bytes <= QUARANTINE_BYTES:
            return 0
        oldest, oldest_size = cls.held.popleft()
        cls.held_bytes -= oldest_size
        return oldest

    @classmethod
    def story(cls, addr):
        """Where `addr` lies: ("freed", base, size, free sid, alloc sid), ("alloc", base, size, alloc sid), or None."""
        for base, size, free_sid, alloc_sid in reversed(cls.freed):
            if addr == base or base < addr < base + size:
                return ("freed", base, size, free_sid, alloc_sid)
        for base, (size, sid, _code) in cls.live.items():
            if base < addr < base + size:
                return ("alloc", base, size, sid)
        return None
