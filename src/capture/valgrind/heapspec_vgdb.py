"""heapspec's GDB-side observer for the Valgrind backend: test-case boundaries under memcheck.

Loaded with `gdb -nx -batch -ex 'python HEAPSPEC = {...}' -x heapspec_vgdb.py PROGRAM`, it attaches
to memcheck's gdbserver through vgdb (valgrind started with --vgdb-error=0 --vgdb-stop-at=exit) and
stops the program at every test-case boundary. There it asks memcheck for three things: its error
counters (`v.info n_errs_found`, answered through gdb), the heap totals (`xtmemory`, a file per
point) and the live blocks (`leak_check`, then `block_list`), which memcheck writes to its log
between `heapspec ID SECTION` lines (`monitor v.set log_output` for the listing: the log is a pipe
the host reads; through gdb the same text is twenty times slower). No analysis here: the
host (TypeScript) turns the points into per-test figures. Lines on file descriptor HEAPSPEC["fd"]:

  H                          attached; the program runs
  B id L name / E id L name  a test case began / ended (heapspec.h or JavaScript markers,
                             --tests functions, GoogleTest's tests)
  e id L name                a test case left by longjmp or an exception: figures, no verdict
  Q id L                     the program's end (memcheck's final state, before its leak check),
                             after a test case or in objects mode
  X                          the program is gone; nothing follows
  W message                  something the user should know
  ! message                  the capture failed here
  C id found shown shownEnd  memcheck's error counters at point id (`v.info n_errs_found`): the
                             errors found so far (every occurrence) and shown so far (each
                             distinct error once, and each loss record a leak search showed
                             first), at the point's start and after its own leak search
  A id "text"                before a C: `v.info all_errors` (each distinct error with its count
                             so far, as JSON text), when errors already shown happened again
                             since the last point
  T id kind                  objects mode: have the chosen objects' blocks changed since the
                             last listing? The host answers `same` or `list` on the FIFO
                             HEAPSPEC["select"]; a B or Q with `same` has no listing
  S id                       objects mode: which loss records of point id to list? The host
                             answers with one line of record numbers (the records whose blocks
                             the chosen objects allocated)
  L path                     objects mode: an object was loaded; the host reads where the chosen
                             objects are mapped now and answers `ok` (an addon a Node Worker loads
                             is gone again at the Worker's exit, before the next point)

Every point has the xtree report <dir>/xt-<id>, and a listing in the log unless L is `=` (a B, or
in objects mode a Q, with nothing allocated or freed since the last listing); L is `+` otherwise.
E and e have a `full` listing (the loss records memcheck shows, so suppressed ones can be told
apart), B and Q a `summary` one.

Objects mode (HEAPSPEC["objects"], a Node addon inside Node): the report is <dir>/xt-<id>.ms
(massif format: by allocation stack, so the host can keep the objects' own), every listing is
`full`, and `block_list` lists only the records the host names after an S line: Node's whole heap
would take seconds to list at every point.
"""
import json
import os
import re
import struct
import sys

import gdb

sys.dont_write_bytecode = True  # nothing written into an installed package
# what both GDB-side scripts read the same way lives beside the GDB backend's script
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gdb"))
from discovery import GTestNames, path_marker, read_c_string, stopped_by_sigtrap, test_functions  # noqa: E402

CFG = globals().get("HEAPSPEC") or {}
OUT = os.fdopen(CFG.get("fd", 3), "w", buffering=1 << 16)
os.set_inheritable(OUT.fileno(), False)
TESTS = CFG.get("tests")  # function names the host matched (a list), or None
DIR = CFG["dir"]
HEURISTICS = CFG.get("heuristics", "all")
OBJECTS = bool(CFG.get("objects"))
PID = CFG.get("pid")

# Caller-saved registers (SysV x86-64) hold nothing live at a call: at a marker's entry only its
# argument (rdi) is, after a test function's return only its return value (rax, rdx). memcheck
# scans every register, so a stale copy of a pointer there would make a leak look reachable.
AT_MARKER = ("rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11")
AT_RETURN = ("rcx", "rsi", "rdi", "r8", "r9", "r10", "r11")


def emit(line):
    OUT.write(line + "\n")
    OUT.flush()


def monitor(command):
    """A monitor command; its answer, under `v.set mixed_output` (with `log_output` it goes to memcheck's log)."""
    return gdb.execute("monitor " + command, to_string=True)


class State:
    points = 0
    errors = (0, 0)  # memcheck's errors found and shown at the end of the last point
    pending = []  # (kind, name, registers to clear) in the order the program reached them
    last_listed = None  # xtree totals line at the last listing


def read_memory(addr, size):
    """Memory through memcheck's gdbserver, failing as discovery.py expects."""
    try:
        return bytes(gdb.selected_inferior().read_memory(addr, size))
    except gdb.MemoryError as e:
        raise OSError(str(e)) from e


def read_string(addr, limit=512):
    """A C string from the program (a test case's name)."""
    return read_c_string(read_memory, addr, limit)


# Every breakpoint here is a hardware one. At a software breakpoint's stop gdb steps the pc back a
# byte, and under valgrind's gdbserver (which stops at the address itself) a stop at a function
# whose address is one past another's breakpoint was taken for that one, and the pc set back onto
# it: at -O1 and -Os heapspec.h's two markers are one `ret` each, side by side (every end read as a
# begin), and an empty --tests function (`ret`) beside the next one made the program return from
# that one unrun. valgrind keeps any number of hardware breakpoints.
HARDWARE = gdb.BP_HARDWARE_BREAKPOINT


class Marker(gdb.Breakpoint):
    """heapspec_test_begin / heapspec_test_end, at their first instruction (the ABI's call boundary)."""

    def __init__(self, address, begin):
        super().__init__("*%d" % address, type=HARDWARE, internal=True)
        self.begin = begin

    def stop(self):
        name = read_string(int(gdb.parse_and_eval("$rdi")))
        State.pending.append(("B", name, ()) if self.begin else ("E", name, AT_MARKER))
        return True


class TestFunction(gdb.Breakpoint):
    """A function named like a test case (--tests): it begins at entry and ends at its return."""

    def __init__(self, location, name):
        super().__init__(**location, type=HARDWARE, internal=True)
        self.test_name = name

    def stop(self):
        frame = gdb.newest_frame()
        function = frame.function()
        void = function is not None and function.type.target().code == gdb.TYPE_CODE_VOID
        State.pending.append(("B", self.test_name, ()))
        try:
            TestReturn(frame, self.test_name, AT_RETURN + (("rax", "rdx") if void else ()))
        except (ValueError, gdb.error) as e:  # no caller frame to return to
            emit("W test case %s cannot end where its function returns: %s" % (self.test_name, e))
        return True


class TestReturn(gdb.FinishBreakpoint):
    def __init__(self, frame, name, registers):
        super().__init__(frame, internal=True)
        self.test_name, self.registers = name, registers

    def stop(self):
        State.pending.append(("E", self.test_name, self.registers))
        return True

    def out_of_scope(self):
        State.pending.append(("e", self.test_name, ()))


def function_address(name):
    try:
        return int(gdb.parse_and_eval("(long)&'%s'" % name))
    except gdb.error:
        return None


def totals_line(path):
    """The `totals:` line memcheck writes last in an xtree report."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read().decode("ascii", "replace")
    lines = [line for line in tail.splitlines() if line.startswith("totals:")]
    return lines[-1] if lines else None


def clear_registers(names):
    """Zeroes dead registers and lets memcheck see it: valgrind 3.19's gdbserver keeps register
    writes in a cache it flushes only when the program resumes, so one instruction is stepped."""
    if not names:
        return
    for name in names:
        gdb.execute("set $%s = 0" % name, to_string=True)
    gdb.execute("stepi", to_string=True)


class Host:
    """The host's answers (objects mode), on a FIFO it keeps open for writing: one line a question."""

    fifo = None

    @classmethod
    def ask(cls, question):
        emit(question)
        if cls.fifo is None:
            # Without a writer (the host gave up) a blocking open would wait forever: this one reads the end.
            fd = os.open(CFG["select"], os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(fd, True)
            cls.fifo = os.fdopen(fd, "r")
        line = cls.fifo.readline()
        if not line:
            raise RuntimeError("the host stopped answering (%s)" % question)
        return line.split()


def error_counts():
    """memcheck's errors found (every occurrence) and shown (each distinct error, or loss record, once)."""
    m = re.search(r"n_errs_found (\d+) n_errs_shown (\d+)", monitor("v.info n_errs_found"))
    if m is None:
        raise RuntimeError("memcheck did not answer v.info n_errs_found")
    return int(m.group(1)), int(m.group(2))


def point(kind, name, registers):
    """One test-case boundary: the error counters, the heap totals and, unless nothing changed, the live blocks."""
    clear_registers(registers)
    n = State.points
    State.points += 1
    found, shown = error_counts()
    last_found, last_shown = State.errors
    # An error memcheck had shown happened again (it counts it and shows nothing): only its list
    # with the counts tells which.
    if found - last_found > shown - last_shown:
        emit("A %d %s" % (n, json.dumps(monitor("v.info all_errors"))))
    listed = point_listing(kind, n)
    State.errors = error_counts() if listed else (found, shown)
    emit("C %d %d %d %d" % (n, found, shown, State.errors[1]))
    emit("%s %d %s %s" % (kind, n, "+" if listed else "=", name))


def point_listing(kind, n):
    """The heap totals at point n and, unless nothing changed since the last listing, the live blocks (True)."""
    xtree = os.path.join(DIR, "xt-%d%s" % (n, ".ms" if OBJECTS else ""))
    monitor("xtmemory %s" % xtree)
    if OBJECTS:
        # Only the host can tell whether the chosen objects' blocks changed since the last listing;
        # if not, the last listing stands in at a B, and at the Q (a leak search of Node's heap
        # takes most of a second).
        unchanged = Host.ask("T %d %s" % (n, kind)) == ["same"] and kind in ("B", "Q")
    else:
        totals = totals_line(xtree)
        unchanged = kind == "B" and totals is not None and totals == State.last_listed
    if unchanged:
        return False
    full = OBJECTS or kind in ("E", "e")
    # The listing goes to the log, the pipe the host reads (through gdb it is twenty times slower).
    monitor("v.set log_output")
    monitor("v.info n_errs_found heapspec %d %s" % (n, "full" if full else "summary"))
    if full:
        monitor("leak_check full kinds all heuristics %s any" % HEURISTICS)
    else:
        monitor("leak_check summary heuristics %s" % HEURISTICS)
    if OBJECTS:
        monitor("v.info n_errs_found heapspec %d select" % n)
        records = Host.ask("S %d" % n)
        monitor("v.info n_errs_found heapspec %d blocks" % n)
        for record in records:
            monitor("block_list %s" % record)
    else:
        monitor("v.info n_errs_found heapspec %d blocks" % n)
        monitor("block_list 1..999999999")
        State.last_listed = totals
    monitor("v.info n_errs_found heapspec %d end" % n)
    monitor("v.set mixed_output")
    return True


# --- Markers from any language: access("/proc/self/heapspec/test-begin/NAME") ----------------
# heapspec/markers (JavaScript) brackets test cases without a compiler: the path names the event,
# the call fails harmlessly with ENOENT, and this breakpoint reads it (as heapspec_gdb.py does).



class PathMarker(gdb.Breakpoint):
    def stop(self):
        marker = path_marker(read_string(int(gdb.parse_and_eval("$rdi")), 1024))
        if marker is None:
            return False
        event, name = marker
        if event == "test-begin":
            State.pending.append(("B", name, ()))
            return True
        if event == "test-end":
            State.pending.append(("E", name, AT_MARKER))
            return True
        return False


def libc_function(name):
    """The address of libc's own `name`, from libc's dynamic symbols and where /proc maps it.

    gdb's lookup by name can answer with a program's PLT stub (a non-PIE program that takes the
    function's address), which libc's own callers never reach."""
    libc = next((o.filename for o in gdb.objfiles() if o.filename and re.search(r"/libc\.so", o.filename)), None)
    if libc is None or PID is None:
        return None
    real = os.path.realpath(libc)
    base = None
    with open("/proc/%d/maps" % PID) as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and int(parts[2], 16) == 0 and os.path.realpath(parts[5].strip()) == real:
                base = int(parts[0].split("-")[0], 16)
                break
    if base is None:
        return None
    with open(libc, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    wanted = name.encode()
    for _n, kind, _f, _a, offset, size, link, _i, _al, entsize in sections:
        if kind != 11 or entsize == 0:  # SHT_DYNSYM
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + size, entsize):
            st_name, _info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", data, at)
            if shndx != 0 and value != 0 and data[strtab + st_name:strtab + st_name + len(wanted) + 1] == wanted + b"\0":
                return base + value
    return None


# --- GoogleTest, recognised without markers (as heapspec_gdb.py does) -------------------------
# A test GoogleTest runs is a test case named Suite.Name, from the return of TestEventRepeater::
# OnTestStart to the entry of its OnTestEnd: the fixture's construction, SetUp, the body, TearDown
# and the fixture's destruction are inside; the listeners' own work is not. A program that runs
# heapspec_test_begin (heapspec_gtest.h's listener) marks its own tests: markers win.

# At OnTestEnd's entry its arguments (rdi: the repeater, rsi: the TestInfo) are live.
AT_GTEST_END = ("rax", "rcx", "rdx", "r8", "r9", "r10", "r11")


class GoogleTest(gdb.Breakpoint):
    marked = False  # heapspec_test_begin has run: the program brackets its tests itself
    running = {}  # thread -> name of the GoogleTest test running there

    def __init__(self, spec, event):
        super().__init__(spec, type=HARDWARE, internal=True)
        self.event = event

    @staticmethod
    def install():
        """Breaks at the entries themselves: a location after the prologue may be two (gcc -O2 -g)."""
        start, end = (function_address("testing::internal::TestEventRepeater::OnTest%s(testing::TestInfo const&)" % e) for e in ("Start", "End"))
        if start is not None and end is not None:
            GoogleTest("*%d" % start, "start")
            GoogleTest("*%d" % end, "end")
            marker = function_address("heapspec_test_begin")
            if marker is not None:
                GoogleTest("*%d" % marker, "marker")

    def stop(self):
        if self.event == "marker":
            GoogleTest.marked = True
        if GoogleTest.marked:
            return False
        thread = gdb.selected_thread().ptid
        if self.event == "start":
            GoogleTestStarted(gdb.newest_frame(), thread, gtest_name(int(gdb.parse_and_eval("$rsi"))))
            return False
        name = GoogleTest.running.pop(thread, None)
        if name is None:
            return False
        State.pending.append(("E", name, AT_GTEST_END))
        return True


class GoogleTestStarted(gdb.FinishBreakpoint):
    """OnTestStart returned: every listener knows, and the test itself starts."""

    def __init__(self, frame, thread, name):
        super().__init__(frame, internal=True)
        # not `thread`: a gdb.Breakpoint's own attribute (the thread it is restricted to)
        self.runs_in, self.test_name = thread, name

    def stop(self):
        if GoogleTest.marked:  # our listener's marker ran inside OnTestStart
            return False
        GoogleTest.running[self.runs_in] = self.test_name
        State.pending.append(("B", self.test_name, ()))
        return True

    def out_of_scope(self):
        pass  # a listener threw: GoogleTest aborts, no test runs


gtest_name = GTestNames(read_memory, lambda message: emit("W " + message))


def setup():
    for name, begin in (("heapspec_test_begin", True), ("heapspec_test_end", False)):
        address = function_address(name)
        if address is not None:
            Marker(address, begin)
    access = libc_function("access")
    if access is not None:
        PathMarker("*%d" % access, type=HARDWARE, internal=True)
    if TESTS is not None:
        for location, name in test_functions(TESTS):
            TestFunction(location, name)
    else:
        GoogleTest.install()  # GoogleTest's tests, when no --tests regex says what a test is


def object_loaded(event):
    """Objects mode: an object was just mapped; the host learns where while the program stands still."""
    path = event.new_objfile.filename
    if path and exited[0] is None:
        Host.ask("L %s" % path.replace("\n", " "))


def libc_loaded():
    return any(o.filename and re.search(r"/libc\.so", o.filename) for o in gdb.objfiles())


last_stop = [None]
gdb.events.stop.connect(lambda e: last_stop.__setitem__(0, e))
exited = [None]
gdb.events.exited.connect(lambda e: exited.__setitem__(0, e))


def main():
    for cmd in ("set pagination off", "set confirm off", "set print thread-events off",
                "set print inferior-events off", "set breakpoint pending on",
                # main's caller too has a frame to return to: main can be a --tests function
                "set backtrace past-main on",
                # the program runs on this machine: gdb reads its libraries from disk, not through vgdb
                "set sysroot /",
                # valgrind re-translates the code around every breakpoint inserted or removed
                "set breakpoint always-inserted on",
                # a leak search of a big heap takes a while; heapspec's own timeout bounds the run
                "set remotetimeout 3600"):
        gdb.execute(cmd, to_string=True)
    gdb.execute("target remote | %s" % CFG["vgdb"], to_string=True)
    # Errors must not stop the program (--vgdb-error=0 only served to stop it before it starts);
    # monitor answers come to gdb, but for the listings, which point_listing sends to the log.
    monitor("v.set vgdb-error 999999999")
    monitor("v.set mixed_output")
    gdb.execute("handle all nostop noprint pass", to_string=True)
    # Markers and test functions may live in the libraries the program links: wait for them.
    gdb.execute("set stop-on-solib-events 1", to_string=True)
    while not libc_loaded() and exited[0] is None:
        gdb.execute("continue", to_string=True)
    gdb.execute("set stop-on-solib-events 0", to_string=True)
    if exited[0] is None:
        setup()
    if OBJECTS:
        gdb.events.new_objfile.connect(object_loaded)
    emit("H")
    resume = "continue"  # or the program's own SIGTRAP, delivered as it goes on
    while exited[0] is None:
        last_stop[0] = None
        gdb.execute(resume, to_string=True)
        resume = "continue"
        if exited[0] is not None:
            break
        event = last_stop[0]
        # Breakpoints queue their points (a step below may reach another one); serve them in order.
        while State.pending:
            kind, name, registers = State.pending.pop(0)
            point(kind, name, registers)
        if event is not None and not isinstance(event, gdb.BreakpointEvent) and stopped_by_sigtrap():
            # gdb keeps SIGTRAP, its breakpoints' signal, from the program (`handle all` leaves it
            # out) and reports one it cannot explain as a plain stop, like the program's end: a
            # SIGTRAP of the program's own (its raise(SIGTRAP)) went to neither its handler nor
            # its default action, and was taken for the end
            resume = "signal SIGTRAP"
            continue
        if event is not None and not isinstance(event, gdb.BreakpointEvent) and (State.points > 0 or OBJECTS):
            # --vgdb-stop-at=exit: the program has run its last instruction; memcheck's leak check
            # comes next, on this very heap. Without a test case there is nothing to attribute (a
            # Node script that marks none: listing Node's heap would take seconds).
            point("Q", "", ())
    emit("X")


try:
    main()
except BaseException as e:  # noqa: BLE001 - every failure must reach the host as a line
    import traceback

    traceback.print_exc()  # gdb's stderr: shown with HEAPSPEC_DEBUG=1
    emit("! %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
finally:
    OUT.flush()
