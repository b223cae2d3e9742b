"""The core of heapspec's GDB-side observer: registers, memory, the allocator breakpoints.

Every record goes out as one text line on the host's file descriptor, in the capture protocol
that src/capture/event-stream.ts documents and turns into the heap model; nothing here judges.

Speed: GDB stops the program at every breakpoint; the floor is that stop. Return values come
from per-call-site trampolines (the return address is pointed at a stub that stores rax in a
ring and jumps back), so a malloc costs one stop, not two. Registers come from ptrace directly
and stacks from our own CFI unwinder (unwind.py): GDB's frame API costs ~90 us a stop.
"""
import ctypes
import os
import re
import struct

import gdb

from discovery import read_c_string
from elf import Elf, load_bias
import forks
from frees import Blocks, family


class Config:
    """What the host asked for (set once by heapspec_gdb.py)."""

    out = None
    depth = 16
    image_dir = "/tmp"


def configure(cfg):
    Config.out = os.fdopen(cfg.get("fd", 3), "w", buffering=1 << 16)
    os.set_inheritable(Config.out.fileno(), False)
    Config.depth = int(cfg.get("depth", 16))
    Config.image_dir = cfg.get("imageDir", "/tmp")


libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
_regbuf = ctypes.create_string_buffer(27 * 8)
# struct user_regs_struct indexes
R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8, RAX, RCX, RDX, RSI, RDI = range(15)
RIP, RSP = 16, 19


def getregs(tid):
    if libc.ptrace(12, tid, None, _regbuf) != 0:  # PTRACE_GETREGS
        raise OSError(ctypes.get_errno(), "PTRACE_GETREGS failed for thread %d" % tid)
    return struct.unpack("<27Q", _regbuf.raw)


def emit(line):
    Config.out.write(line + "\n")


class Memory:
    """The inferior's memory through /proc/PID/mem: one pread per access, no GDB caches involved."""

    def __init__(self, pid):
        self.fd = os.open("/proc/%d/mem" % pid, os.O_RDWR | os.O_CLOEXEC)

    def read(self, addr, size):
        data = os.pread(self.fd, size, addr)
        if len(data) != size:
            raise OSError("short read at 0x%x" % addr)
        return data

    def word(self, addr):
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def write(self, addr, data):
        os.pwrite(self.fd, data, addr)


class State:
    pid = None
    single_thread = False  # set by watch_threads()
    ending_floor = None  # where the ending thread's stack scan starts, when not at its sp
    ending = None  # (tid, name) of a test case whose end awaits its memory image
    libc_symbols = None
    libc_names = {}  # address -> exported names of libc functions there
    mem = None
    unwinder = None
    ring = None
    stacks = {}
    pending = {}  # return-time sp -> (tid, kind, arg, size, sid, allocator code, real return address of a throwing call, outer)
    busy = {}  # tid -> return-time sp of its innermost outstanding allocator call (`outer` in pending: the one it runs inside)
    failing = set()  # return-time sps of operator new calls whose malloc failed: the program's new-handler runs inside them
    handler_throws = set()  # tids whose new-handler throws inside a nothrow operator new: the exception is the program's
    runtime = []  # [(lo, hi)] of libstdc++'s operator new functions and exception allocators: a failing call's own calls
    judge = False  # frees are checked against the blocks seen (every allocation is observed)
    # Objects mode (objects.py): the chosen objects' code, and the calls they make out of it.
    chosen = []  # [(lo, hi)] of the chosen objects' mappings
    gates = {}  # tid -> stack pointers at the entries of its calls out of chosen code, still running
    gated = []  # libc's allocator breakpoints, enabled while a call out of chosen code may be running
    wrappers = []  # [(lo, hi)] of libstdc++'s operator new functions, which call malloc for their callers
    on_block = None  # called with each new block's address (objects mode's free filter)
    on_free = None  # called with each freed block's address
    on_drained = None  # called with the ring's count of taken results after each drain
    freeing = {}  # tid -> (sp, addr, size) of a delete on its way to free (its nested stops are the same call)


def stack_id(pcs):
    sid = State.stacks.get(pcs)
    if sid is None:
        sid = State.stacks[pcs] = len(State.stacks)
        emit("S %d %s" % (sid, " ".join("%x" % pc for pc in pcs)))
    return sid


class Ring:
    """Executable stubs in a page we map into the inferior, and the ring they write results to."""

    SLOTS = 4096

    def __init__(self, base, size):
        self.index = base
        self.slots = base + 64
        self.next_code = self.slots + self.SLOTS * 32
        self.end = base + size
        self.stubs = {}
        self.seen = 0  # every slot below this one is taken
        self.taken = set()  # slots at or above `seen` already taken

    def stub(self, ret, scrub=False):
        """The stub for return address `ret`: slot = ring[i++ % SLOTS]; slot = (rax, rsp, i+1); jmp ret.

        The sequence number goes last: another thread may be between its increment and its
        stores while we drain, and x86 keeps stores in order, so a slot is complete once it shows.

        `scrub`: before returning, the new block's bytes are zeroed (its whole usable size, read
        from glibc's chunk header; an mmapped chunk is fresh pages and left alone). A reused
        chunk keeps a freed block's old pointers, which memcheck never scans (a new block is
        undefined until written); zero is a word no scan reads as a pointer.
        """
        key = (ret, scrub)
        addr = self.stubs.get(key)
        if addr is not None:
            return addr
        a = self.next_code
        if a + 128 > self.end:
            return None
        c = bytearray(b"\x48\xc7\xc1\x01\x00\x00\x00")  # mov rcx, 1
        c += b"\xf0\x48\x0f\xc1\x0d" + struct.pack("<i", self.index - (a + len(c) + 9))  # lock xadd [index], rcx
        c += b"\x48\x89\xca"  # mov rdx, rcx
        c += b"\x81\xe2" + struct.pack("<I", self.SLOTS - 1)  # and edx, SLOTS-1
        c += b"\x48\xc1\xe2\x05"  # shl rdx, 5
        c += b"\x48\x8d\x35" + struct.pack("<i", self.slots - (a + len(c) + 7))  # lea rsi, [slots]
        c += b"\x48\x01\xf2"  # add rdx, rsi
        c += b"\x48\x89\x02"  # mov [rdx], rax
        c += b"\x48\x89\x62\x08"  # mov [rdx+8], rsp
        c += b"\x48\xff\xc1"  # inc rcx
        c += b"\x48\x89\x4a\x10"  # mov [rdx+16], rcx
        if scrub:
            body = b"\x48\x8b\x48\xf8"  # mov rcx, [rax-8]: the chunk's size word
            body += b"\xf6\xc1\x02"  # test cl, 2 (IS_MMAPPED)
            body += b"\x75\x15"  # jnz done
            body += b"\x48\x83\xe1\xf8"  # and rcx, -8
            body += b"\x48\x83\xe9\x08"  # sub rcx, 8: the usable size of a chunk in use
            body += b"\x48\x89\xc7"  # mov rdi, rax
            body += b"\x48\x89\xc2"  # mov rdx, rax
            body += b"\x31\xc0"  # xor eax, eax
            body += b"\xf3\xaa"  # rep stosb
            body += b"\x48\x89\xd0"  # mov rax, rdx
            c += b"\x48\x85\xc0"  # test rax, rax
            c += b"\x74" + bytes([len(body)])  # jz done (a failed call)
            c += body
        c += b"\x49\xbb" + struct.pack("<Q", ret)  # mov r11, ret
        c += b"\x41\xff\xe3"  # jmp r11
        State.mem.write(a, bytes(c))
        self.next_code += (len(c) + 15) & ~15
        self.stubs[key] = a
        if hasattr(State.unwinder, "returns"):
            State.unwinder.returns[a] = ret
        return a

    def holds(self, addr):
        """Whether `addr` is code in this page (a stub standing in for a return address)."""
        return self.index <= addr < self.end

    def jump(self, target):
        """A stub that only jumps to `target`: a breakpoint of our own in front of a function."""
        a = self.next_code
        if a + 16 > self.end:
            return None
        State.mem.write(a, b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target))  # jmp [rip+0]
        self.next_code += 16
        return a

    def drain(self):
        """Completes every allocator call that returned since the last stop.

        Other threads keep running while one is stopped: one may hold a slot it has claimed but
        not yet filled. Its slot waits for a later drain; the filled slots after it are taken
        now, or the threads that filled them would look as if still inside the allocator.
        """
        n = State.mem.word(self.index)
        if n == self.seen:
            return
        if n - self.seen > self.SLOTS:
            emit("! the result ring overflowed (%d calls returned between two stops)" % (n - self.seen))
            self.seen = n - self.SLOTS
        first = self.seen & (self.SLOTS - 1)
        count = n - self.seen
        data = State.mem.read(self.slots + first * 32, min(count, self.SLOTS - first) * 32)
        if first + count > self.SLOTS:  # wrapped around
            data += State.mem.read(self.slots, (first + count - self.SLOTS) * 32)
        for k, i in enumerate(range(self.seen, n)):
            if i in self.taken:
                continue
            rax, sp, seq = struct.unpack_from("<QQQ", data, k * 32)
            if seq != i + 1:
                continue  # still being written by a running thread: a later drain takes it
            self.taken.add(i)
            complete(sp, rax)
        while self.seen in self.taken:
            self.taken.discard(self.seen)
            self.seen += 1
        if State.on_drained:
            State.on_drained(self.seen)


def leave(tid, sp, outer):
    """Thread `tid`'s allocator call returning at `sp` is over: the call it ran inside (`outer`: an
    operator new whose new-handler made it), if any, is the thread's outstanding one again."""
    State.failing.discard(sp)
    if State.busy.get(tid) == sp:  # not a later call of the thread's
        if outer is None:
            del State.busy[tid]
        else:
            State.busy[tid] = outer


def nested(tid, regs, freed=None):
    """Whether a stop of thread `tid` is part of the allocator call it is inside (realloc's malloc,
    operator new's, the new[] that jumps to new), not a call of its own; `freed`: a free's pointer.

    Once an operator new's malloc has failed (NewHandler) the call runs the program's new-handler,
    which frees a reserve or allocates as it does when the program calls it itself: those calls are
    the program's. The call's own come from libstdc++'s operator new functions (its retry, a
    nothrow form's throwing one) and exception allocator (a nothrow form's bad_alloc, which
    memcheck's nothrow new never makes; not one the handler throws, ThrowStart), and the free of a
    block nobody counted is that bad_alloc's.
    """
    sp = State.busy.get(tid)
    if sp is None:
        return False
    if sp not in State.failing:
        return True
    if freed is not None:
        return freed not in Blocks.live
    if tid in State.handler_throws:  # the exception's allocation, the first stop of its throw
        State.handler_throws.discard(tid)
        return False
    ret = State.mem.word(regs[RSP])
    return any(lo <= ret < hi for lo, hi in State.runtime)


def complete(sp, rax):
    call = State.pending.pop(sp, None)
    if call is None:
        return
    tid, kind, arg, size, sid, code, _ret, outer = call
    leave(tid, sp, outer)
    block = 0
    if kind == "R":
        emit("R %d %x %x %d %d" % (tid, arg, rax, size, sid))
        if arg and (rax != 0 or size == 0):
            Blocks.released(arg, sid)
            if State.on_free:
                State.on_free(arg)
        if rax != 0:
            Blocks.allocated(rax, size, sid, 0)
            block = rax
    elif kind == "P":
        if rax == 0:  # posix_memalign returns 0 on success and stores the block at *arg
            block = State.mem.word(arg)
            emit("A %d %x %d %d" % (tid, block, size, sid))
            Blocks.allocated(block, size, sid, 0)
    elif rax != 0:
        emit(("A %d %x %d %d %d" % (tid, rax, size, sid, code)) if code else ("A %d %x %d %d" % (tid, rax, size, sid)))
        Blocks.allocated(rax, size, sid, code)
        block = rax
    if State.on_block and block != 0:
        State.on_block(block)


class AllocatorFinish(gdb.FinishBreakpoint):
    """The slow path for a return value: one temporary breakpoint per call."""

    def __init__(self, frame, tid, sp):
        super().__init__(frame, internal=True)
        self.tid, self.sp = tid, sp

    def stop(self):
        complete(self.sp, getregs(self.tid)[RAX])
        return False

    def out_of_scope(self):
        call = State.pending.pop(self.sp, None)
        leave(self.tid, self.sp, call[7] if call is not None else None)


def current():
    # Until the program starts a second thread the stopped one is the process itself: skip
    # asking GDB, which costs a few microseconds on every stop.
    tid = State.pid if State.single_thread else gdb.selected_thread().ptid[1]
    return tid, getregs(tid)


def watch_threads():
    State.pid = gdb.selected_inferior().pid
    State.single_thread = len(gdb.selected_inferior().threads()) == 1

    def new_thread(event):
        if forks.is_program(event.inferior_thread.inferior):  # not a followed fork's (forks.py)
            State.single_thread = False

    gdb.events.new_thread.connect(new_thread)


def walk(regs, depth=None):
    sp = regs[RSP]
    return tuple(State.unwinder.walk(regs[RIP], sp, {6: regs[RBP], 3: regs[RBX], 12: regs[R12], 13: regs[R13], 14: regs[R14], 15: regs[R15], 7: sp}, depth or Config.depth))


def gated_walk(regs):
    """The stack of a libc allocator stop in objects mode. When libstdc++'s operator new is the
    caller, its frame is the allocator's, not one of the depth the addon is looked for in (the
    preload backend replaces operator new, and memcheck names it frame 0 beside --num-callers
    callers), so the walk goes one frame deeper there."""
    pcs = walk(regs, Config.depth + 1)
    if pcs and any(lo <= pcs[0] < hi for lo, hi in State.wrappers):
        return pcs
    return pcs[:Config.depth]


def open_gate(tid, sp):
    """Thread `tid` calls out of chosen code (a Node addon into Node, libstdc++, a library): until
    it returns, what it allocates is the addon's, so libc's allocator breakpoints go live."""
    State.gates.setdefault(tid, []).append(sp)
    for bp in State.gated:
        if not bp.enabled:
            bp.enabled = True


def close_gates():
    """Drops the calls out of chosen code that have returned (or were left by an exception or a
    longjmp): a thread is inside a call while its stack pointer is at or below the call's entry.
    When none is left, libc's allocator breakpoints go quiet again."""
    for tid in list(State.gates):
        try:
            sp = getregs(tid)[RSP]
        except OSError:
            del State.gates[tid]  # the thread is gone
            continue
        inside = [entry for entry in State.gates[tid] if sp <= entry]
        if inside:
            State.gates[tid] = inside
        else:
            del State.gates[tid]
    if not State.gates:
        for bp in State.gated:
            bp.enabled = False


def chosen_on_stack(pcs):
    return any(lo <= pc < hi for pc in pcs for lo, hi in State.chosen)


class Allocator(gdb.Breakpoint):
    """A malloc-family entry point. `kind`: M (size in arg0), C (calloc), A (align, size), P (posix_memalign), R (realloc).

    `code`: an operator new's (frees.NEW_CODES), whose malloc inside is then the same call.
    `throws`: an operator new that throws std::bad_alloc when it fails: its stub must give way to
    the real return address if it does (ThrowStart).
    `gated`: libc's own entry in objects mode, live only while a call out of chosen code runs; it
    keeps the calls with chosen code on the stack (the addon's templates that resolve to Node's
    copy, the libraries it calls), as the preload backend does.
    """

    def __init__(self, addr, kind, code=0, gated=False, throws=False):
        super().__init__("*%d" % addr, internal=True)
        self.kind = kind
        self.code = code
        self.gated = gated
        self.throws = throws
        if gated:
            self.enabled = False
            State.gated.append(self)

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        if nested(tid, regs):
            return False  # realloc calling malloc, operator new calling malloc: the outer call is the event
        pcs = gated_walk(regs) if self.gated else None
        if self.gated and not chosen_on_stack(pcs):
            close_gates()
            return False  # Node's or V8's own, with no chosen code on the stack
        kind = self.kind
        if kind == "M":
            arg, size = 0, regs[RDI]
        elif kind == "C":
            arg, size = 0, (regs[RDI] * regs[RSI]) & 0xFFFFFFFFFFFFFFFF
        elif kind == "A":
            arg, size = 0, regs[RSI]
        elif kind == "P":
            arg, size = regs[RDI], regs[RDX]
        else:
            arg, size = regs[RDI], regs[RSI]
        sp = regs[RSP]
        sid = stack_id(pcs if pcs is not None else walk(regs))
        if kind == "R" and arg and State.judge:
            block = Blocks.live.get(arg)
            if block is None:
                # memcheck counts it as an allocation and a free, and returns NULL (realloc(p, 0)
                # is its free(p): a free only)
                invalid_free(tid, arg, sid, regs)
                emit("N 1 1 %d" % size if size else "N 0 1 0")
                skip_call(regs, 0)
                return False
            if family(block[2]) != 0:
                mismatched_free(tid, arg, sid, block)
        ret = State.mem.word(sp)
        State.pending[sp + 8] = (tid, kind, arg, size, sid, self.code, ret if self.throws else None, State.busy.get(tid))
        State.busy[tid] = sp + 8
        # calloc's block is zero already; realloc's keeps the program's old contents
        stub = State.ring.stub(ret, scrub=kind in ("M", "A")) if State.ring and kind != "P" else None
        if stub is not None:
            State.mem.write(sp, struct.pack("<Q", stub))
        else:
            AllocatorFinish(gdb.newest_frame(), tid, sp + 8)
        return False


class ThrowStart(gdb.Breakpoint):
    """libstdc++'s __cxa_allocate_exception (and its dependent-exception twin): a C++ throw begins.

    A failing operator new throws std::bad_alloc, and the unwinder reads the return address the
    call pushed to find its caller's frame: pointed at a stub, which has no unwind information, it
    finds none, and the program dies in std::terminate where natively it catches. So before a throw
    inside such a call the real return address goes back, and the call, which will not return, is
    over: the exception's own block is the program's, as preload counts it. Here and not at every
    operator new, a throw costs one stop more and an operator new none. (A new-handler that throws
    and catches inside the call: the block the call then returns is counted as its malloc's.) A
    nothrow operator new catches its bad_alloc inside: its stub stays, as memcheck counts nothing;
    but what its new-handler throws is the program's exception, as when the program calls it.
    """

    def stop(self):
        if State.ring:
            State.ring.drain()  # a call already returned through its stub is complete, not unwinding
        tid, regs = current()
        sp = State.busy.get(tid)
        call = State.pending.get(sp) if sp is not None else None
        if call is None or regs[RSP] >= sp:
            return False
        if call[6] is None:
            if sp in State.failing and not inside_libstdcxx(State.mem.word(regs[RSP])):
                State.handler_throws.add(tid)
            return False
        if State.ring and State.ring.holds(State.mem.word(sp - 8)):
            State.mem.write(sp - 8, struct.pack("<Q", call[6]))
        del State.pending[sp]
        leave(tid, sp, call[7])
        if State.gated:  # objects mode: the exception is the chosen code's, as its own throw's is
            open_gate(tid, regs[RSP])
        return False


class NewHandler(gdb.Breakpoint):
    """libstdc++'s std::get_new_handler, which an operator new calls when its malloc failed, to call
    the program's new-handler before it tries again: from here the thread's stops inside that call
    are sorted into the call's own and the handler's (nested). Only a failure costs this stop."""

    def stop(self):
        if State.ring:
            State.ring.drain()  # a call already returned through its stub is not the one failing
        tid, _regs = current()
        sp = State.busy.get(tid)
        call = State.pending.get(sp) if sp is not None else None
        if call is not None and call[5]:
            State.failing.add(sp)
        return False


class Free(gdb.Breakpoint):
    """free, or (`family` 1 or 2) a C++ delete, which libstdc++ makes a jump to free. `gated`:
    libc's own in objects mode, live while a call out of chosen code runs; a free of a block
    nobody observed is ignored by the host. `swap`: libc's free, stopped in FreeSwap's code, where
    the freed block goes to the quarantine."""

    def __init__(self, spec, family=0, gated=False, swap=False, **kwargs):
        super().__init__(spec, **kwargs)
        self.family = family
        self.swap = swap
        if gated:
            self.enabled = False
            State.gated.append(self)

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        addr = regs[RDI]
        if addr == 0:
            return False
        sp = regs[RSP]
        pending = State.freeing.get(tid)
        if pending is not None and pending[:2] == (sp, addr):  # delete[] -> delete -> free: one call
            if self.family == 0:
                del State.freeing[tid]
                if self.swap:
                    FreeSwap.hold(sp, addr, pending[2])
            return False
        if nested(tid, regs, addr):
            return False
        if not State.judge:
            emit("F %d %x" % (tid, addr))
            return False
        sid = stack_id(walk(regs))
        block = Blocks.released(addr, sid)
        if block is None and inside_libc(State.mem.word(sp)):
            # libc's own free of memory it never got through malloc (a thread's tcache at its
            # exit): memcheck, whose malloc has no tcache, never sees it
            emit("F %d %x" % (tid, addr))
            return False
        if block is None:
            invalid_free(tid, addr, sid, regs)
            emit("N 0 1 0")  # memcheck counts every free call
            if self.swap:
                FreeSwap.give(sp, addr, 0)
            else:
                skip_call(regs)
            return False
        if family(block[2]) != self.family:
            mismatched_free(tid, addr, sid, block)
        emit("F %d %x" % (tid, addr))
        if self.family != 0:
            State.freeing[tid] = (sp, addr, block[0])
        elif self.swap:
            FreeSwap.hold(sp, addr, block[0])
        return False


class FreeSwap:
    """libc's free, entered through code of ours that lets this script choose the pointer glibc
    frees: the quarantine (frees.Blocks.hold) keeps a freed block from glibc for a while and gives
    it an older one instead, or none. Writing a register at a stop costs gdb about a millisecond;
    a word of memory costs nothing: at the stop the script leaves (MAGIC, the pointer, the one to
    free instead) in the red zone below the thread's stack pointer, free's own, and the code takes
    the swap when it finds them there, consuming them. Installed over the free entry it was written
    for (`test rdi, rdi; je rel32`), else free runs as it is and nothing is held.
    """

    MAGIC = 0x6865617073706563  # "heapspec"

    @classmethod
    def install(cls):
        """The address for free's breakpoint: inside the code, or free itself when it cannot go in."""
        free = address_of("free")
        head = State.mem.read(free, 9)
        if head[:5] != b"\x48\x85\xff\x0f\x84":  # test rdi, rdi; je rel32
            return free
        null_target = free + 9 + struct.unpack_from("<i", head, 5)[0]
        code = inject_mmap(4096)
        if code is None or abs(code - (free + 5)) >= 1 << 31:
            return free
        c = bytearray()
        c += b"\x48\x85\xff"  # test rdi, rdi
        null_jump = len(c)
        c += b"\x74\x00"  # jz null (patched below)
        stop = len(c)
        c += b"\x90"  # nop: the breakpoint's place
        c += b"\x48\xb8" + struct.pack("<Q", cls.MAGIC)  # movabs rax, MAGIC
        c += b"\x48\x39\x44\x24\xe8"  # cmp [rsp-24], rax
        plain_jump = len(c)
        c += b"\x75\x00"  # jne plain (patched below)
        c += b"\x48\x3b\x7c\x24\xf0"  # cmp rdi, [rsp-16]
        other_jump = len(c)
        c += b"\x75\x00"  # jne plain (patched below)
        c += b"\x48\xc7\x44\x24\xe8\x00\x00\x00\x00"  # mov qword [rsp-24], 0: consumed
        c += b"\x48\x8b\x7c\x24\xf8"  # mov rdi, [rsp-8]
        c += b"\x48\x85\xff"  # test rdi, rdi
        none_jump = len(c)
        c += b"\x74\x00"  # jz none (patched below)
        plain = len(c)
        c += b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", free + 9)  # jmp free's rest
        none = len(c)
        c += b"\xc3"  # ret: nothing to free now
        null = len(c)
        c += b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", null_target)  # free(NULL): as free does
        for at, to in ((null_jump, null), (plain_jump, plain), (other_jump, plain), (none_jump, none)):
            c[at + 1] = to - (at + 2)
        State.mem.write(code, bytes(c))
        State.mem.write(free, b"\xe9" + struct.pack("<i", code - (free + 5)))  # jmp code
        return code + stop

    @classmethod
    def hold(cls, sp, addr, size):
        cls.give(sp, addr, Blocks.hold(addr, size))

    @classmethod
    def give(cls, sp, addr, target):
        """The free stopped at `sp` releases `target` (0: nothing) instead of `addr`."""
        if target != addr:
            State.mem.write(sp - 24, struct.pack("<QQQ", cls.MAGIC, addr, target))


def inside_libc(pc):
    return re.search(r"/libc\.so", gdb.current_progspace().solib_name(pc) or "") is not None


def inside_libstdcxx(pc):
    return re.search(r"/libstdc\+\+\.so", gdb.current_progspace().solib_name(pc) or "") is not None


def skip_call(regs, result=None):
    """Returns from the function the thread stopped at the entry of, without running it (`result` in rax)."""
    sp = regs[RSP]
    if result is not None:
        gdb.execute("set $rax = %d" % result, to_string=True)
    gdb.execute("set $rsp = %d" % (sp + 8), to_string=True)
    gdb.execute("set $pc = %d" % State.mem.word(sp), to_string=True)


def mismatched_free(tid, addr, sid, block):
    size, alloc_sid, _code = block
    emit("Z mismatched-free %d %d %x alloc %x %d %d" % (tid, sid, addr, addr, size, alloc_sid))


def invalid_free(tid, addr, sid, regs):
    """A free or realloc of `addr`, no live block: the error, with memcheck's story of the address."""
    story = Blocks.story(addr)
    if story is not None and story[0] == "freed":
        text = "freed %x %d %d %d" % story[1:]
    elif story is not None:
        text = "alloc %x %d %d" % story[1:]
    else:
        text = stack_story(addr, regs) or data_story(addr) or "none"
    emit("Z invalid-free %d %d %x %s" % (tid, sid, addr, text))


def stack_story(addr, regs):
    """`addr` on this thread's stack: its number, the caller whose frame holds it, that function's entry."""
    top = stack_top(regs[RSP])
    if top is None or not regs[RSP] <= addr <= top:
        return None
    frame = gdb.newest_frame().older()  # the bad call's caller: frame 0
    k = 0
    while frame is not None:
        older = frame.older()
        if older is None or int(older.read_register("rsp")) > addr:
            break
        frame, k = older, k + 1
    entry = ()
    if frame is not None:
        block = gdb.block_for_pc(frame.pc() - 1)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            entry = (block.start + 1,)  # as a return address: the host resolves it to the entry's line
    return "stack %d %d %d" % (gdb.selected_thread().num, k, stack_id(entry))


def data_story(addr):
    """`addr` inside a loaded object's mapping: the object and its load bias, for the host to name the variable."""
    pid = gdb.selected_inferior().pid
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if start <= addr < end:
                path = parts[5].strip() if len(parts) > 5 else ""
                if not path.startswith("/"):
                    return None
                bias = load_bias(pid, path)
                return None if bias is None else "data %x %s" % (bias, path)
    return None


def read_string(addr, limit=512):
    """A C string from the inferior (a test case's name)."""
    return read_c_string(State.mem.read, addr, limit)


def stack_top(sp):
    """The highest address of the mapping holding `sp` (the stack's top), less one word."""
    with open("/proc/%d/maps" % gdb.selected_inferior().pid) as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
            if start <= sp < end:
                return end - 8
    return None


class Stopper(gdb.Breakpoint):
    """A breakpoint that hands control back to the script (program exit)."""

    def stop(self):
        return True


def find_libc():
    for objfile in gdb.objfiles():
        if objfile.filename and re.search(r"/libc\.so", objfile.filename):
            return objfile
    return None


def address_of(name):
    """The address of libc's own `name`, from its dynamic symbol table.

    GDB's symbol lookup can answer with the program's PLT stub for the name (a stripped program
    has no better symbol for it), which is not where libc's own calls go; so read libc's .dynsym.
    """
    if State.libc_symbols is None:
        State.libc_symbols = libc_dynamic_symbols()
    return State.libc_symbols.get(name)


def gdb_address_of(name):
    try:
        return int(gdb.parse_and_eval("(long)&'%s'" % name))
    except gdb.error:
        return None


def libc_dynamic_symbols():
    path = find_libc().filename
    base = load_bias(gdb.selected_inferior().pid, path)
    symbols = {}
    for name, value in Elf(path).defined().items():
        symbols[name] = base + value
        State.libc_names.setdefault(base + value, []).append(name)
    return symbols


def inject_mmap(size):
    """Maps an RWX region in the inferior by executing one mmap syscall in it; returns its address or None."""
    sc = address_of("syscall")
    if sc is None:
        return None
    at = State.mem.read(sc, 128).find(b"\x0f\x05")
    if at < 0:
        return None
    names = ["rax", "rdi", "rsi", "rdx", "r10", "r8", "r9", "rcx", "r11", "rip", "eflags"]
    frame = gdb.newest_frame()
    saved = [(n, int(frame.read_register(n))) for n in names]
    for n, v in [("rax", 9), ("rdi", 0), ("rsi", size), ("rdx", 7), ("r10", 0x22), ("r8", -1), ("r9", 0), ("rip", sc + at)]:
        gdb.execute("set $%s = %d" % (n, v), to_string=True)
    gdb.execute("stepi", to_string=True)
    result = int(gdb.newest_frame().read_register("rax")) & 0xFFFFFFFFFFFFFFFF
    for n, v in saved:
        gdb.execute("set $%s = %d" % (n, v), to_string=True)
    return None if result >= 0xFFFFFFFFFFFFF000 else result


GENERAL_REGISTERS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
                     "r14", "r15", "rip", "eflags"]


def inject_call(fn, return_to):
    """Runs `fn()` (no arguments) in the stopped thread and returns None, or why it could not.

    GDB's own `call` saves and restores the extended (XSAVE) register state, which fails on CPUs
    whose state gdb 13 cannot write (AMX: "Couldn't write extended state status"). This needs only
    the general registers: push `return_to` (an address holding a breakpoint the caller owns, such
    as the one this thread stopped at) as the return address on an aligned stack below the red
    zone, jump to `fn`, resume until the thread is back at `return_to` with that stack, restore.
    Other breakpoints hit on the way (the frees `fn` makes) behave as they always do.
    """
    frame = gdb.newest_frame()
    saved = [(n, int(frame.read_register(n)) & 0xFFFFFFFFFFFFFFFF) for n in GENERAL_REGISTERS]
    ptid = gdb.selected_thread().ptid
    sp = dict(saved)["rsp"]
    call_sp = ((sp - 512) & ~15) - 8  # at a function's entry rsp % 16 == 8, as if `call` had pushed
    State.mem.write(call_sp, struct.pack("<Q", return_to))
    gdb.execute("set $rsp = %d" % call_sp, to_string=True)
    gdb.execute("set $rip = %d" % fn, to_string=True)
    failure = None
    resume = "continue"
    while True:
        stop = []
        handler = stop.append
        gdb.events.stop.connect(handler)
        try:
            gdb.execute(resume, to_string=True)
        finally:
            gdb.events.stop.disconnect(handler)
        resume = forks.stopped(stop[0] if stop else None)  # a fork, or a stop of a child it made
        if resume is not None:
            continue
        resume = "continue"
        if gdb.selected_inferior().pid == 0:
            return "the program ended inside it"
        back = gdb.newest_frame()
        if (gdb.selected_thread().ptid == ptid and int(back.read_register("rip")) == return_to
                and int(back.read_register("rsp")) & 0xFFFFFFFFFFFFFFFF == call_sp + 8):
            break
        if stop and isinstance(stop[0], gdb.SignalEvent):
            failure = "the program received %s inside it" % stop[0].stop_signal
            break
    gdb.execute("thread %d" % next(t.num for t in gdb.selected_inferior().threads() if t.ptid == ptid), to_string=True)
    for n, v in saved:
        gdb.execute("set $%s = %d" % (n, v), to_string=True)
    return failure


class GdbFrames:
    """Unwinds with GDB's own frame API: slow, used only when unwind.py is unavailable."""

    def walk(self, pc, sp, regs, depth):
        pcs = []
        frame = gdb.newest_frame().older()
        while frame is not None and len(pcs) < depth:
            pcs.append(frame.pc())
            frame = frame.older()
        return pcs

    def reset(self):
        pass


def relro(lines, at):
    """Whether maps line `at` is a file's data made read-only after its relocations (RELRO: where
    vtables are), right below the same file's writable data: its bytes are not the file's."""
    parts = lines[at]
    if at + 1 >= len(lines) or not parts[1].startswith("r--") or len(parts) < 6:
        return False
    after = lines[at + 1]
    return len(after) > 5 and after[1].startswith("rw") and after[5] == parts[5] and after[0].split("-")[0] == parts[0].split("-")[1]


PAGEMAP_PRESENT = 1 << 63
PAGEMAP_SWAPPED = 1 << 62
PAGEMAP_MIN = 256 << 10  # smaller mappings are read whole: a look at the page table costs more


def written_pages(image, pid, start, end, zero_fill):
    """Writes [start, end) of the inferior's memory to the image at its current offset. With
    `zero_fill` (private anonymous memory), the pages that are neither in memory nor swapped out were
    never written and read as zeros: they are left a hole in the file, which reads as zeros too,
    and are not read, which would map the kernel's zero page into each of them (Node reserves 80 MB
    so and writes a tenth of it; the program could see its page tables grow)."""
    if not zero_fill or end - start < PAGEMAP_MIN:
        image.write(State.mem.read(start, end - start))
        return
    try:
        with open("/proc/%d/pagemap" % pid, "rb", buffering=0) as pagemap:
            pagemap.seek((start >> 12) * 8)
            entries = pagemap.read(((end - start) >> 12) * 8)
    except OSError:
        entries = b""
    if len(entries) != ((end - start) >> 12) * 8:
        image.write(State.mem.read(start, end - start))
        return
    flags = struct.unpack("<%dQ" % (len(entries) // 8), entries)
    base = image.tell()
    page, pages = 0, len(flags)
    while page < pages:
        if not flags[page] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED):
            page += 1
            continue
        first = page
        while page < pages and flags[page] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED):
            page += 1
        image.seek(base + (first << 12))
        image.write(State.mem.read(start + (first << 12), (page - first) << 12))
    image.seek(base + (end - start))
    image.truncate()


def dump(point, floor=None, at_call=None):
    """Writes every writable mapping and every thread's registers: the memory image the model scans.

    `floor` replaces the current thread's stack pointer, so the scan of its stack starts there.
    `at_call`: the current thread stands at a function's entry or return, so a `C` line says so,
    naming the caller-saved registers still live there.
    A mapping right above a PROT_NONE guard gets a `g` after its permissions (a thread stack).
    """
    if State.ring:
        State.ring.drain()
    inferior = gdb.selected_inferior()
    path = os.path.join(Config.image_dir, "image-%s-%d.bin" % (point, dump.count))
    dump.count += 1
    emit("D %s %s" % (point, path))
    offset = 0
    previous_end, previous_perms = None, ""
    with open("/proc/%d/maps" % inferior.pid) as maps:
        lines = [line.split(None, 5) for line in maps]
    with open(path, "wb") as image:
        for at, parts in enumerate(lines):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            guarded = previous_end == start and previous_perms.startswith("---")
            previous_end, previous_perms = end, perms
            if guarded:
                perms += "g"
            name = parts[5].strip() if len(parts) > 5 else ""
            if not perms.startswith("rw") and name.startswith("/") and not relro(lines, at):
                # a file's code or read-only data, for the multipleinheritance heuristic's vtables:
                # the same bytes as on disk (nothing relocates them)
                emit("w %x %x %s %x %s" % (start, end, perms, int(parts[2], 16), name))
                continue
            if not (perms.startswith("rw") or name.startswith("/")) or name in ("[vvar]", "[vsyscall]"):
                continue
            if State.ring and start <= State.ring.index < end:
                continue  # our own stubs and result ring hold copies of every returned pointer
            zero_fill = perms[3:4] == "p" and (name == "" or name in ("[heap]", "[stack]") or name.startswith("[anon:"))
            try:
                written_pages(image, inferior.pid, start, end, zero_fill)
            except OSError:
                image.seek(offset)
                image.truncate(offset)
                continue
            emit("W %x %x %s %d %s" % (start, end, perms, offset, name))
            offset += end - start
    current_tid = gdb.selected_thread().ptid[1]
    for thread in inferior.threads():
        r = getregs(thread.ptid[1])
        sp = floor if floor is not None and thread.ptid[1] == current_tid else r[RSP]
        emit("T %d %x %s" % (thread.ptid[1], sp, " ".join("%x" % r[i] for i in (RAX, RBX, RCX, RDX, RSI, RDI, RBP, R8, R9, R10, R11, R12, R13, R14, R15))))
    if at_call is not None:
        emit(" ".join(("C", str(current_tid)) + tuple(at_call)))
    emit("d")


dump.count = 0


C_NAMES = {}


def c_linkage_name(entry, fn):
    """`fn` as memcheck names it: a function of C linkage in a C++ program (main, an extern "C" one)
    is named by its symbol (main), which is what a suppression's fun: line names, where gdb's name
    has the parameters a C++ function's has (main())."""
    if entry not in C_NAMES:
        info = gdb.execute("info symbol %d" % entry, to_string=True)
        m = re.match(r"(\S+) in section", info)
        symbol = m.group(1) if m else None
        C_NAMES[entry] = symbol if symbol and not symbol.startswith("_Z") and fn.startswith(symbol + "(") else None
    return C_NAMES[entry] or fn


def symbolize():
    """Resolves every return address seen in a stack once, at the end, while the objects are still mapped."""
    seen = set()
    for pcs in State.stacks:
        seen.update(pcs)
    progspace = gdb.current_progspace()
    for pc in sorted(seen):
        if pc <= 0:
            continue
        fn = filename = line = None
        try:
            sal = gdb.find_pc_line(pc - 1)
            if sal.symtab is not None:
                filename, line = sal.symtab.fullname(), sal.line
            block = gdb.block_for_pc(pc - 1)
            while block is not None and block.function is None:
                block = block.superblock
            if block is not None:
                fn = block.function.print_name
                # libc's debug info names its internal aliases (__GI___strdup); memcheck, and
                # users, know the exported name (strdup)
                try:
                    entry = int(block.function.value().address)
                except gdb.error:
                    entry = block.start  # an inlined function has no address of its own
                exported = State.libc_names.get(entry)
                if exported:
                    fn = min(exported, key=lambda n: (n.startswith("_"), len(n)))
                elif "(" in fn:
                    fn = c_linkage_name(entry, fn)
        except (RuntimeError, OverflowError):
            pass
        if fn is None:
            info = gdb.execute("info symbol %d" % (pc - 1), to_string=True)
            m = re.match(r"(\S.*?)(?: \+ \d+)? in section", info)
            fn = m.group(1) if m else None
        obj = progspace.solib_name(pc) or gdb.selected_inferior().progspace.filename
        emit("Y %x %s|%s|%s|%s" % (pc, fn or "", filename or "", line or "", obj or ""))
