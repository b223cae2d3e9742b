"""heapspec's GDB-side observer: breaks on the malloc family, emits raw events; no analysis here.

Loaded with `gdb -batch -ex 'python HEAPSPEC = {...}' -x heapspec_gdb.py --args PROGRAM ...`.
Every record goes out as one text line on file descriptor HEAPSPEC["fd"], in the capture
protocol that src/capture/event-stream.ts documents and turns into the heap model.

Speed: GDB stops the program at every breakpoint; the floor is that stop. Return values come
from per-call-site trampolines (the return address is pointed at a stub that stores rax in a
ring and jumps back), so a malloc costs one stop, not two. Registers come from ptrace directly
and stacks from our own CFI unwinder (unwind.py): GDB's frame API costs ~90 us a stop.
"""
import ctypes
import os
import re
import struct
import sys
import urllib.parse

import gdb

CFG = globals().get("HEAPSPEC") or {}
OUT = os.fdopen(CFG.get("fd", 3), "w", buffering=1 << 16)
os.set_inheritable(OUT.fileno(), False)
DEPTH = int(CFG.get("depth", 16))
TESTS = re.compile(CFG["tests"]) if CFG.get("tests") else None
IMAGE_DIR = CFG.get("imageDir", "/tmp")

sys.dont_write_bytecode = True  # nothing written into an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else CFG.get("dir", "."))
from elf import Elf, load_bias  # noqa: E402 - found through the path set just above

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
    OUT.write(line + "\n")


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
    ending_floor = None  # where the ending thread's stack scan starts, when not at its sp
    ending = None  # (tid, name) of a test case whose end awaits its memory image
    libc_symbols = None
    libc_names = {}  # address -> exported names of libc functions there
    mem = None
    unwinder = None
    ring = None
    stacks = {}
    pending = {}  # return-time sp -> (tid, kind, arg, size, sid)
    busy = {}  # tid -> return-time sp of its outstanding allocator call
    finishing = set()  # tids with a FinishBreakpoint outstanding
    test_frames = {}  # tid -> list of sp for --tests functions entered


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
        self.seen = 0

    def stub(self, ret):
        """The stub for return address `ret`: slot = ring[i++ % SLOTS]; slot = (rax, rsp, i+1); jmp ret.

        The sequence number goes last: another thread may be between its increment and its
        stores while we drain, and x86 keeps stores in order, so a slot is complete once it shows.
        """
        addr = self.stubs.get(ret)
        if addr is not None:
            return addr
        a = self.next_code
        if a + 80 > self.end:
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
        c += b"\x49\xbb" + struct.pack("<Q", ret)  # mov r11, ret
        c += b"\x41\xff\xe3"  # jmp r11
        State.mem.write(a, bytes(c))
        self.next_code += (len(c) + 15) & ~15
        self.stubs[ret] = a
        return a

    def jump(self, target):
        """A stub that only jumps to `target`: a breakpoint of our own in front of a function."""
        a = self.next_code
        if a + 16 > self.end:
            return None
        State.mem.write(a, b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target))  # jmp [rip+0]
        self.next_code += 16
        return a

    def drain(self):
        """Completes every allocator call that returned since the last stop, in the order they returned."""
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
            rax, sp, seq = struct.unpack_from("<QQQ", data, k * 32)
            if seq != i + 1:
                break  # still being written by a running thread: the next stop takes it
            self.seen = i + 1
            complete(sp, rax)


def complete(sp, rax):
    call = State.pending.pop(sp, None)
    if call is None:
        return
    tid, kind, arg, size, sid = call
    if State.busy.get(tid) == sp:
        del State.busy[tid]
    if kind == "R":
        emit("R %d %x %x %d %d" % (tid, arg, rax, size, sid))
    elif kind == "P":
        if rax == 0:  # posix_memalign returns 0 on success and stores the block at *arg
            emit("A %d %x %d %d" % (tid, State.mem.word(arg), size, sid))
    elif rax != 0:
        emit("A %d %x %d %d" % (tid, rax, size, sid))


class AllocatorFinish(gdb.FinishBreakpoint):
    """The slow path for a return value: one temporary breakpoint per call."""

    def __init__(self, frame, tid, sp):
        super().__init__(frame, internal=True)
        self.tid, self.sp = tid, sp

    def stop(self):
        State.finishing.discard(self.tid)
        complete(self.sp, getregs(self.tid)[RAX])
        return False

    def out_of_scope(self):
        State.finishing.discard(self.tid)
        State.pending.pop(self.sp, None)
        State.busy.pop(self.tid, None)


def current():
    tid = gdb.selected_thread().ptid[1]
    return tid, getregs(tid)


def walk(regs):
    sp = regs[RSP]
    return tuple(State.unwinder.walk(regs[RIP], sp, {6: regs[RBP], 3: regs[RBX], 12: regs[R12], 13: regs[R13], 14: regs[R14], 15: regs[R15], 7: sp}, DEPTH))


class Allocator(gdb.Breakpoint):
    """A malloc-family entry point. `kind`: M (size in arg0), C (calloc), A (align, size), P (posix_memalign), R (realloc)."""

    def __init__(self, addr, kind):
        super().__init__("*%d" % addr, internal=True)
        self.kind = kind

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        if tid in State.busy:
            return False  # a nested call (realloc calling malloc): the outer call is the event
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
        sid = stack_id(walk(regs))
        State.pending[sp + 8] = (tid, kind, arg, size, sid)
        State.busy[tid] = sp + 8
        stub = State.ring.stub(State.mem.word(sp)) if State.ring and kind != "P" else None
        if stub is not None:
            State.mem.write(sp, struct.pack("<Q", stub))
        else:
            AllocatorFinish(gdb.newest_frame(), tid, sp + 8)
        return False


class Free(gdb.Breakpoint):
    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        if tid in State.busy or regs[RDI] == 0:
            return False
        emit("F %d %x" % (tid, regs[RDI]))
        return False


def read_string(addr, limit=512):
    """A C string from the inferior (a test case's name), read in small steps near page ends."""
    out = b""
    while len(out) < limit:
        try:
            chunk = State.mem.read(addr + len(out), 64)
        except OSError:
            try:
                chunk = State.mem.read(addr + len(out), 1)
            except OSError:
                break
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            break
        out += chunk
    return out.decode("utf-8", "replace").replace("\n", " ")


def test_begins(tid, name):
    emit("B %d %s" % (tid, name))


def test_ends(tid, name, live=()):
    """Asks the main loop for a memory image: the stop is real, so every thread stands still.

    `live`: the caller-saved registers that still hold something at this call (its argument,
    or a return value); the others are dead by the ABI, as memcheck sees them once zeroed.
    """
    State.ending = (tid, name, live)
    return True


class Marker(gdb.Breakpoint):
    """heapspec_test_begin / heapspec_test_end from heapspec.h, in whichever object defines them."""

    def __init__(self, name, begin):
        super().__init__(name, internal=True)
        self.begin = begin

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        name = read_string(regs[RDI])
        if self.begin:
            test_begins(tid, name)
            return False
        return test_ends(tid, name, ("rdi",))


class TestFunction(gdb.Breakpoint):
    """A function named like a test case (--tests): it begins at entry and ends at its return."""

    def __init__(self, source, function):
        super().__init__(source=source, function=function, internal=True)
        self.test_name = function

    def stop(self):
        if State.ring:
            State.ring.drain()
        tid = gdb.selected_thread().ptid[1]
        test_begins(tid, self.test_name)
        TestReturn(gdb.newest_frame(), tid, self.test_name)
        return False


class TestReturn(gdb.FinishBreakpoint):
    def __init__(self, frame, tid, name):
        super().__init__(frame, internal=True)
        self.tid, self.test_name = tid, name

    def stop(self):
        if State.ring:
            State.ring.drain()
        return test_ends(self.tid, self.test_name, () if self.return_value is None else ("rax", "rdx"))

    def out_of_scope(self):
        emit("e %d %s" % (self.tid, self.test_name))  # left by longjmp or an exception: no image


def test_functions(pattern):
    """(source file, function name) of every function with debug info whose name matches."""
    # gdb matches its regex against names with their parameters ("f(int)"), so an end anchor
    # would miss; give it the pattern unanchored at the end and match names here
    loose = re.sub(r"(?<!\\)\$$", "", pattern.pattern) or "."
    try:
        listing = gdb.execute("info functions -q -n %s" % loose, to_string=True)
    except gdb.error:
        listing = gdb.execute("info functions -q -n .", to_string=True)  # a regex gdb cannot read
    found, source = [], None
    for line in listing.splitlines():
        if line.startswith("File ") and line.endswith(":"):
            source = line[5:-1]
            continue
        m = re.match(r"^\d+:\s+(.*?)([A-Za-z_][\w:~<>]*)\(", line)
        if m and source and pattern.search(m.group(2)):
            found.append((source, m.group(2)))
    return found


# --- GoogleTest, recognised without markers --------------------------------------------------
# A test GoogleTest runs is a test case named Suite.Name. It spans the test from the return of
# TestEventRepeater::OnTestStart to the entry of its OnTestEnd, the calls that notify every event
# listener: the fixture's construction, SetUp, the body, TearDown and the fixture's destruction
# are inside; the listeners' own work (GoogleTest's printer) is not. heapspec_gtest.h's listener
# marks the same span. A program that runs heapspec_test_begin marks its own tests: markers win.


class GoogleTest(gdb.Breakpoint):
    """One of TestEventRepeater's OnTestStart / OnTestEnd (testing::TestInfo& in rsi), or a marker."""

    marked = False  # heapspec_test_begin has run: the program brackets its tests itself
    offsets = None  # where testing::TestInfo keeps test_suite_name_ and name_ (std::string)
    running = {}  # tid -> name of the GoogleTest test running there
    unnamed = 0  # tests whose names could not be read

    def __init__(self, spec, event):
        super().__init__(spec, internal=True)
        self.event = event

    @staticmethod
    def install():
        """Breaks at the entries themselves: a location after the prologue may be two (gcc -O2 -g)."""
        start, end = (gdb_address_of("testing::internal::TestEventRepeater::OnTest%s(testing::TestInfo const&)" % e) for e in ("Start", "End"))
        if start is not None and end is not None:  # GoogleTest is linked in
            GoogleTest("*%d" % start, "start")
            GoogleTest("*%d" % end, "end")
            GoogleTest("heapspec_test_begin", "marker")

    def stop(self):
        if self.event == "marker":
            GoogleTest.marked = True
        if GoogleTest.marked:
            return False
        if State.ring:
            State.ring.drain()
        tid, regs = current()
        if self.event == "start":
            GoogleTestStarted(gdb.newest_frame(), tid, gtest_name(regs[RSI]))
            return False
        name = GoogleTest.running.pop(tid, None)
        return test_ends(tid, name, ("rdi", "rsi")) if name is not None else False


class GoogleTestStarted(gdb.FinishBreakpoint):
    """OnTestStart returned: every listener knows, and the test itself starts."""

    def __init__(self, frame, tid, name):
        super().__init__(frame, internal=True)
        self.tid, self.test_name = tid, name

    def stop(self):
        if not GoogleTest.marked:  # our listener's marker ran inside OnTestStart
            if State.ring:
                State.ring.drain()
            GoogleTest.running[self.tid] = self.test_name
            test_begins(self.tid, self.test_name)
        return False

    def out_of_scope(self):
        pass  # a listener threw: GoogleTest aborts, no test runs


def gtest_name(info):
    """Suite.Name of the testing::TestInfo at `info`: the names --gtest_filter takes.

    Its first two members are test_suite_name_ (test_case_name_ before 1.10) and name_, libstdc++
    std::strings ({char *p; size_t n; ...}, 32 bytes), since GoogleTest 1.6; the debug info of
    gtest.h, which any test file built with -g carries, gives their offsets when present.
    """
    if GoogleTest.offsets is None:
        GoogleTest.offsets = (0, 32)
        try:
            fields = {f.name: f.bitpos // 8 for f in gdb.lookup_type("testing::TestInfo").fields() if hasattr(f, "bitpos")}
            suite = fields.get("test_suite_name_", fields.get("test_case_name_"))
            if suite is not None and "name_" in fields:
                GoogleTest.offsets = (suite, fields["name_"])
        except gdb.error:
            pass  # no debug info for gtest.h: the layout above
    names = []
    for offset in GoogleTest.offsets:
        try:
            p, n = struct.unpack("<QQ", State.mem.read(info + offset, 16))
            text = State.mem.read(p, n + 1) if 0 < n <= 4096 else b""
        except OSError:
            text = b""
        if text[-1:] != b"\0" or b"\0" in text[:-1]:
            # not a libstdc++ std::string (a GoogleTest built with libc++?): number the tests
            GoogleTest.unnamed += 1
            if GoogleTest.unnamed == 1:
                emit("! cannot read GoogleTest's test names (not a libstdc++ build?); its tests are numbered")
            return "gtest-test-%d" % GoogleTest.unnamed
        names.append(text[:-1].decode("utf-8", "replace").replace("\n", " "))
    return ".".join(names)


# --- Objects mode: only what chosen objects allocate (a Node addon, not Node) ----------------
# Node makes hundreds of thousands of allocations before a script runs; stopping at each costs
# minutes. With `objects`, the allocator entries are not broken on in libc: instead each chosen
# object's GOT slots for the malloc family and C++ new/delete are pointed at stubs of ours that
# jump on to the real function, and the breakpoints sit on the stubs. Only the object's own
# calls stop. Slots are patched once the dynamic linker has relocated the object (at main, and
# when each dlopen returns), or relocation would overwrite them.

OBJECTS = [re.compile(p) for p in CFG.get("objects") or []]
GOT_ALLOCATORS = {
    "malloc": "M", "calloc": "C", "realloc": "R", "memalign": "A", "aligned_alloc": "A", "posix_memalign": "P",
    "valloc": "M", "pvalloc": "M", "_Znwm": "M", "_Znam": "M", "_ZnwmRKSt9nothrow_t": "M",
    "_ZnamRKSt9nothrow_t": "M", "_ZnwmSt11align_val_t": "M", "_ZnamSt11align_val_t": "M",
    "_ZnwmSt11align_val_tRKSt9nothrow_t": "M", "_ZnamSt11align_val_tRKSt9nothrow_t": "M",
}
GOT_FREES = {"free", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
             "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t"}


class Objects:
    patched = set()
    definitions = {}  # objfile path -> its defined dynamic symbols

    @staticmethod
    def chosen(path):
        return bool(path) and not path.endswith(".debug") and any(p.search(path) for p in OBJECTS)

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


# --- Markers from any language: access("/proc/self/heapspec/test-begin/NAME") ----------------
# heapspec/markers (JavaScript) brackets test cases without a compiler: the path names the
# event, the call fails harmlessly with ENOENT, and this breakpoint reads it.

PATH_MARKER = "/proc/self/heapspec/"


class PathMarker(gdb.Breakpoint):
    def stop(self):
        tid, regs = current()
        path = read_string(regs[RDI], 1024)
        if not path.startswith(PATH_MARKER):
            return False
        if State.ring:
            State.ring.drain()
        event, _, name = path[len(PATH_MARKER):].partition("/")
        name = urllib.parse.unquote(name)
        if event == "test-begin":
            test_begins(tid, name)
            return False
        if event == "test-end":
            # Called from JavaScript: no frame of the program's own code is on this stack, and
            # the engine's frames reuse slots where native calls left stale pointers (memcheck
            # sees those as undefined); so this thread's stack is no root at this end.
            State.ending_floor = stack_top(regs[RSP])
            return test_ends(tid, name, ("rdi",))
        return False


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


def setup():
    inferior = gdb.selected_inferior()
    State.mem = Memory(inferior.pid)
    try:
        from unwind import Unwinder

        State.unwinder = Unwinder(inferior.pid, State.mem.read)
        gdb.events.new_objfile.connect(lambda _e: State.unwinder.reset())
    except ImportError:
        State.unwinder = GdbFrames()
    if not CFG.get("slowReturns"):
        base = inject_mmap(1 << 20)
        if base is not None:
            State.ring = Ring(base, 1 << 20)
    if OBJECTS and State.ring is not None:
        if gdb_address_of("main") is not None:
            PatchAt("*%d" % gdb_address_of("main"), internal=True)
        Dlopen("*%d" % address_of("dlopen"), internal=True)
    else:
        kinds = [("malloc", "M"), ("calloc", "C"), ("realloc", "R"), ("memalign", "A"), ("aligned_alloc", "A"),
                 ("posix_memalign", "P"), ("valloc", "M"), ("pvalloc", "M")]
        placed = set()
        for name, kind in kinds:
            addr = address_of(name)
            if addr is not None and addr not in placed:  # aliases (aligned_alloc = memalign) share one breakpoint
                placed.add(addr)
                Allocator(addr, kind)
        Free("*%d" % address_of("free"), internal=True)
    PathMarker("*%d" % address_of("access"), internal=True)
    State.exit_bp = Stopper("*%d" % address_of("_exit"), internal=True)
    gdb.execute("set breakpoint pending on", to_string=True)
    Marker("heapspec_test_begin", True)
    Marker("heapspec_test_end", False)
    if TESTS is not None:
        for source, function in test_functions(TESTS):
            TestFunction(source, function)
    else:
        GoogleTest.install()  # GoogleTest's tests, when no --tests regex says what a test is


def signal_handled(pid, signo):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signo - 1)))
    return False


def exit_stack_floor():
    """The stack pointer of the program's frame that called exit (or of _start when main returned).

    The libc frames of exit() reuse the stack that main's dead frames used; their unwritten slots
    still hold main's old pointers, which memcheck ignores as undefined. Scanning from the first
    frame outside libc keeps those stale words out, and every frame the program still has in.
    """
    frame = gdb.newest_frame()
    progspace = gdb.current_progspace()
    while frame is not None and frame.older() is not None and re.search(r"/libc\.so", progspace.solib_name(frame.pc()) or ""):
        frame = frame.older()
    return int(frame.read_register("rsp")) if frame is not None else None


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
    path = os.path.join(IMAGE_DIR, "image-%s-%d.bin" % (point, dump.count))
    dump.count += 1
    emit("D %s %s" % (point, path))
    offset = 0
    previous_end, previous_perms = None, ""
    with open(path, "wb") as image, open("/proc/%d/maps" % inferior.pid) as maps:
        for line in maps:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            guarded = previous_end == start and previous_perms.startswith("---")
            previous_end, previous_perms = end, perms
            if guarded:
                perms += "g"
            name = parts[5].strip() if len(parts) > 5 else ""
            if not perms.startswith("rw") or name in ("[vvar]", "[vsyscall]"):
                continue
            if State.ring and start <= State.ring.index < end:
                continue  # our own stubs and result ring hold copies of every returned pointer
            try:
                data = State.mem.read(start, end - start)
            except OSError:
                continue
            image.write(data)
            emit("W %x %x %s %d %s" % (start, end, perms, offset, name))
            offset += len(data)
    current_tid = gdb.selected_thread().ptid[1]
    for thread in inferior.threads():
        r = getregs(thread.ptid[1])
        sp = floor if floor is not None and thread.ptid[1] == current_tid else r[RSP]
        emit("T %d %x %s" % (thread.ptid[1], sp, " ".join("%x" % r[i] for i in (RAX, RBX, RCX, RDX, RSI, RDI, RBP, R8, R9, R10, R11, R12, R13, R14, R15))))
    if at_call is not None:
        emit(" ".join(("C", str(current_tid)) + tuple(at_call)))
    emit("d")


dump.count = 0


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
        except (RuntimeError, OverflowError):
            pass
        if fn is None:
            info = gdb.execute("info symbol %d" % (pc - 1), to_string=True)
            m = re.match(r"(\S.*?)(?: \+ \d+)? in section", info)
            fn = m.group(1) if m else None
        obj = progspace.solib_name(pc) or gdb.selected_inferior().progspace.filename
        emit("Y %x %s|%s|%s|%s" % (pc, fn or "", filename or "", line or "", obj or ""))


def call_freeres():
    """Frees what libstdc++ and libc keep for the life of the process, as valgrind does at exit."""
    for name in ("_ZN9__gnu_cxx9__freeresEv", "__libc_freeres"):
        addr = address_of(name) if name.startswith("__libc") else gdb_address_of(name)
        if addr is not None:
            try:
                gdb.execute("call ((void(*)(void))%d)()" % addr, to_string=True)
            except gdb.error as e:
                emit("! %s failed: %s" % (name, e))


FATAL = {"SIGSEGV": 11, "SIGBUS": 7, "SIGFPE": 8, "SIGILL": 4, "SIGABRT": 6, "SIGSYS": 31, "SIGTRAP": 5}
last_stop = [None]
gdb.events.stop.connect(lambda e: last_stop.__setitem__(0, e))
exited = [None]
gdb.events.exited.connect(lambda e: exited.__setitem__(0, e))


def main():
    # past main: a --tests function may be main itself, whose return needs its caller's frame
    for cmd in ("set pagination off", "set confirm off", "set backtrace past-main on", "set print thread-events off",
                "set print inferior-events off", "set startup-with-shell on", "set disable-randomization off",
                "handle all nostop noprint pass", "handle SIGSEGV SIGBUS SIGFPE SIGILL SIGABRT SIGSYS stop print pass",
                "set stop-on-solib-events 1"):
        gdb.execute(cmd, to_string=True)
    gdb.execute("run %s" % CFG.get("redirect", ""), to_string=True)
    while find_libc() is None:
        if exited[0] is not None:
            raise RuntimeError("the program exited before libc was loaded")
        gdb.execute("continue", to_string=True)
    gdb.execute("set stop-on-solib-events 0", to_string=True)
    setup()
    emit("H 1")
    while True:
        last_stop[0] = None
        gdb.execute("continue", to_string=True)
        if exited[0] is not None:
            break
        event = last_stop[0]
        if State.ending is not None:
            tid, name, live = State.ending
            State.ending = None
            emit("E %d %s" % (tid, name))
            dump("test", floor=State.ending_floor, at_call=live)
            State.ending_floor = None
            continue
        if isinstance(event, gdb.BreakpointEvent) and State.exit_bp in event.breakpoints:
            call_freeres()
            dump("exit", exit_stack_floor())
            symbolize()
            continue
        if isinstance(event, gdb.SignalEvent) and event.stop_signal == "SIGINT":
            if os.path.exists(os.path.join(IMAGE_DIR, "stop-requested")):
                # the host's timeout: report what leaked so far, then end the program
                dump("timeout")
                symbolize()
                OUT.flush()
                gdb.execute("kill", to_string=True)
                emit("X signal SIGKILL")
                return
            gdb.execute("signal SIGINT", to_string=True)  # the program's own SIGINT: deliver it
            continue
        if isinstance(event, gdb.SignalEvent):
            signo = FATAL.get(event.stop_signal)
            if signo and not signal_handled(gdb.selected_inferior().pid, signo):
                dump("crash")
                symbolize()
            continue
    code = getattr(exited[0], "exit_code", None)
    if code is not None:
        emit("X exit %d" % code)
    else:
        try:
            emit("X signal %s" % gdb.parse_and_eval("$_exitsignal"))
        except gdb.error:
            emit("X signal unknown")


try:
    main()
except BaseException as e:  # noqa: BLE001 - every failure must reach the host as a line
    import traceback

    traceback.print_exc()  # gdb's stderr: shown with HEAPSPEC_DEBUG=1
    emit("! %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
finally:
    OUT.flush()
