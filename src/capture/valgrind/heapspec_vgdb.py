"""heapspec's GDB-side observer for the Valgrind backend: test-case boundaries under memcheck.

Loaded with `gdb -nx -batch -ex 'python HEAPSPEC = {...}' -x heapspec_vgdb.py PROGRAM`, it attaches
to memcheck's gdbserver through vgdb (valgrind started with --vgdb-error=0 --vgdb-stop-at=exit) and
stops the program at every test-case boundary. There it asks memcheck for two things: the heap
totals (`xtmemory`, a file per point) and the live blocks (`leak_check`, then `block_list`), which
memcheck writes to its log between `heapspec ID SECTION` lines (`monitor v.set log_output`: the log
is a pipe the host reads; through gdb the same text is twenty times slower). No analysis here: the
host (TypeScript) turns the points into per-test figures. Lines on file descriptor HEAPSPEC["fd"]:

  H                          attached; the program runs
  B id L name / E id L name  a test case began / ended (markers or --tests functions)
  e id L name                a test case left by longjmp or an exception: figures, no verdict
  Q id L                     the program's end (memcheck's final state, before its leak check)
  X                          the program is gone; nothing follows
  W message                  something the user should know
  ! message                  the capture failed here

Every point has the xtree report <dir>/xt-<id>, and a listing in the log unless L is `=` (a B
with nothing allocated or freed since the last listing); L is `+` otherwise. E and e have a `full`
listing (the loss records memcheck shows, so suppressed ones can be told apart), B and Q a
`summary` one.
"""
import os
import re

import gdb

CFG = globals().get("HEAPSPEC") or {}
OUT = os.fdopen(CFG.get("fd", 3), "w", buffering=1 << 16)
os.set_inheritable(OUT.fileno(), False)
TESTS = re.compile(CFG["tests"]) if CFG.get("tests") else None
DIR = CFG["dir"]
HEURISTICS = CFG.get("heuristics", "all")

# Caller-saved registers (SysV x86-64) hold nothing live at a call: at a marker's entry only its
# argument (rdi) is, after a test function's return only its return value (rax, rdx). memcheck
# scans every register, so a stale copy of a pointer there would make a leak look reachable.
AT_MARKER = ("rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11")
AT_RETURN = ("rcx", "rsi", "rdi", "r8", "r9", "r10", "r11")


def emit(line):
    OUT.write(line + "\n")
    OUT.flush()


def monitor(command):
    # With `v.set log_output` the answer goes to memcheck's log, not to gdb.
    gdb.execute("monitor " + command, to_string=True)


class State:
    points = 0
    pending = []  # (kind, name, registers to clear) in the order the program reached them
    last_listed = None  # xtree totals line at the last listing


def read_string(addr, limit=512):
    """A C string from the program (a test case's name)."""
    inferior = gdb.selected_inferior()
    out = b""
    while addr and len(out) < limit:
        try:
            chunk = bytes(inferior.read_memory(addr + len(out), 64))
        except gdb.MemoryError:
            try:
                chunk = bytes(inferior.read_memory(addr + len(out), 1))
            except gdb.MemoryError:
                break
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            break
        out += chunk
    return out.decode("utf-8", "replace").replace("\n", " ")


class Marker(gdb.Breakpoint):
    """heapspec_test_begin / heapspec_test_end, at their first instruction (the ABI's call boundary)."""

    def __init__(self, address, begin):
        super().__init__("*%d" % address, internal=True)
        self.begin = begin

    def stop(self):
        name = read_string(int(gdb.parse_and_eval("$rdi")))
        State.pending.append(("B", name, ()) if self.begin else ("E", name, AT_MARKER))
        return True


class TestFunction(gdb.Breakpoint):
    """A function named like a test case (--tests): it begins at entry and ends at its return."""

    def __init__(self, source, function):
        super().__init__(source=source, function=function, internal=True)
        self.test_name = function

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


def test_functions(pattern):
    """(source file, function name) of every function with debug info whose name matches.

    The same search as the GDB backend's script (heapspec_gdb.py), so both find the same tests."""
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


def point(kind, name, registers):
    """One test-case boundary: the heap totals and, unless nothing changed, the live blocks."""
    clear_registers(registers)
    n = State.points
    State.points += 1
    xtree = os.path.join(DIR, "xt-%d" % n)
    monitor("xtmemory %s" % xtree)
    totals = totals_line(xtree)
    if kind == "B" and totals is not None and totals == State.last_listed:
        emit("B %d = %s" % (n, name))
        return
    full = kind in ("E", "e")
    monitor("v.info n_errs_found heapspec %d %s" % (n, "full" if full else "summary"))
    if full:
        monitor("leak_check full kinds all heuristics %s any" % HEURISTICS)
    else:
        monitor("leak_check summary heuristics %s" % HEURISTICS)
    monitor("v.info n_errs_found heapspec %d blocks" % n)
    monitor("block_list 1..999999999")
    monitor("v.info n_errs_found heapspec %d end" % n)
    State.last_listed = totals
    emit("%s %d + %s" % (kind, n, name))


def setup():
    for name, begin in (("heapspec_test_begin", True), ("heapspec_test_end", False)):
        address = function_address(name)
        if address is not None:
            Marker(address, begin)
    if TESTS is not None:
        for source, function in test_functions(TESTS):
            TestFunction(source, function)


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
    # Errors must not stop the program (--vgdb-error=0 only served to stop it before it starts),
    # and every monitor answer goes to the log.
    monitor("v.set vgdb-error 999999999")
    monitor("v.set log_output")
    gdb.execute("handle all nostop noprint pass", to_string=True)
    # Markers and test functions may live in the libraries the program links: wait for them.
    gdb.execute("set stop-on-solib-events 1", to_string=True)
    while not libc_loaded() and exited[0] is None:
        gdb.execute("continue", to_string=True)
    gdb.execute("set stop-on-solib-events 0", to_string=True)
    if exited[0] is None:
        setup()
    emit("H")
    while exited[0] is None:
        last_stop[0] = None
        gdb.execute("continue", to_string=True)
        if exited[0] is not None:
            break
        event = last_stop[0]
        # Breakpoints queue their points (a step below may reach another one); serve them in order.
        while State.pending:
            kind, name, registers = State.pending.pop(0)
            point(kind, name, registers)
        if event is not None and not isinstance(event, gdb.BreakpointEvent):
            # --vgdb-stop-at=exit: the program has run its last instruction; memcheck's leak check
            # comes next, on this very heap.
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
