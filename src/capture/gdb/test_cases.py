"""Test cases as heapspec's GDB-side observer sees them: markers, test functions, GoogleTest.

A test case begins with a B line; at its end the stop is real (every thread stands still) and
the main loop takes the memory image the host scans for that test's leaks.
"""
import gdb

from discovery import GTestNames, path_marker
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

    def __init__(self, location, name):
        super().__init__(**location, internal=True)
        self.test_name = name

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


# --- GoogleTest, recognised without markers --------------------------------------------------
# A test GoogleTest runs is a test case named Suite.Name. It spans the test from the return of
# TestEventRepeater::OnTestStart to the entry of its OnTestEnd, the calls that notify every event
# listener: the fixture's construction, SetUp, the body, TearDown and the fixture's destruction
# are inside; the listeners' own work (GoogleTest's printer) is not. heapspec_gtest.h's listener
# marks the same span. A program that runs heapspec_test_begin marks its own tests: markers win.


class GoogleTest(gdb.Breakpoint):
    """One of TestEventRepeater's OnTestStart / OnTestEnd (testing::TestInfo& in rsi), or a marker."""

    marked = False  # heapspec_test_begin has run: the program brackets its tests itself
    running = {}  # tid -> name of the GoogleTest test running there

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


gtest_name = GTestNames(lambda addr, size: State.mem.read(addr, size), lambda message: emit("! " + message))


# --- Markers from any language: access("/proc/self/heapspec/test-begin/NAME") ----------------


class PathMarker(gdb.Breakpoint):
    def stop(self):
        tid, regs = current()
        marker = path_marker(read_string(regs[RDI], 1024))
        if marker is None:
            return False
        if State.ring:
            State.ring.drain()
        event, name = marker
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
