"""Test cases as heapspec's GDB-side observer sees them: markers, test functions, GoogleTest.

A test case begins with a B line; at its end the stop is real (every thread stands still) and
the main loop takes the memory image the host scans for that test's leaks.
"""
import re
import struct
import urllib.parse

import gdb

from observe import RDI, RSI, RSP, State, current, emit, gdb_address_of, read_string, stack_top


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
