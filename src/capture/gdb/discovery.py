"""What both of heapspec's GDB-side scripts read from a program the same way: C strings, the
functions a --tests regex names, GoogleTest's test names, the JavaScript markers' paths, and the
signal a stop has pending.

The GDB backend's script (heapspec_gdb.py) and the Valgrind backend's (valgrind/heapspec_vgdb.py)
reach memory differently (/proc/PID/mem, or memcheck's gdbserver), so each passes its own
`read(addr, size) -> bytes`, which raises OSError where memory cannot be read.
"""
import re
import struct
import urllib.parse

import gdb


def read_c_string(read, addr, limit=512):
    """A C string from the program (a test case's name), read in small steps near page ends."""
    out = b""
    while addr and len(out) < limit:
        try:
            chunk = read(addr + len(out), 64)
        except OSError:
            try:
                chunk = read(addr + len(out), 1)
            except OSError:
                break
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            break
        out += chunk
    return out.decode("utf-8", "replace").replace("\n", " ")


def test_functions(names):
    """(breakpoint location, function name) of every function of the program named in `names`.

    The host matched the user's regex (a JavaScript one) against the program's function names
    itself; gdb is asked for those names alone, in one anchored regex (a basic one, gdb's), and
    its listing read by name. Asking for every function (`info functions .`) took 3 s with libc's
    debug info installed (libc6-dbg), and 11 s through memcheck's gdbserver, past a run's timeout;
    this takes a fraction of a second. gdb matches a C++ function's name with its parameters
    (`test_x(int)`): the name is followed by `(` or ends. Every definition is listed: a static one
    in each file, overloads in several. A function with debug info breaks by source and name; one
    without (a program built without -g) at its entry address, the program's own only (a library's
    function of the same name is not a test of the program's)."""
    wanted = set(names)
    if not wanted:
        return []
    escaped = [re.sub(r"([.\[\]*^$\\])", r"\\\1", name) for name in sorted(wanted)]
    pattern = "^\\(%s\\)\\((\\|$\\)" % "\\|".join(escaped)
    listing = gdb.execute("info functions -q %s" % pattern, to_string=True)
    # a line declares one of the names when it holds the name and its "(" after a type, a space or
    # nothing: `static void (anonymous namespace)::test_x();`, `std::string test_y[abi:cxx11]();`
    longest_first = sorted(wanted, key=len, reverse=True)
    found, source = [], None
    for line in listing.splitlines():
        if line.startswith("File ") and line.endswith(":"):
            source = line[5:-1]
            continue
        if line.startswith("Non-debugging symbols:"):
            source = None
            continue
        bare = re.match(r"^0x([0-9a-f]+)\s+(\S.*)$", line)
        if bare and source is None:
            address, name = int(bare.group(1), 16), bare.group(2)
            location = {"spec": "*%d" % address}
            if name in wanted and (location, name) not in found and gdb.current_progspace().solib_name(address) is None:
                found.append((location, name))
            continue
        m = re.match(r"^\d+:\s+(.*)$", line)
        if not m or not source:
            continue
        declaration = m.group(1)
        for name in longest_first:
            at = declaration.find(name + "(")
            if at >= 0 and (at == 0 or declaration[at - 1] in " *&"):
                location = {"source": source, "function": name}
                if (location, name) not in found:
                    found.append((location, name))
                break
    return found


# heapspec/markers (JavaScript) brackets test cases without a compiler: access() of a path that
# names the event; the call fails harmlessly with ENOENT, and a breakpoint on access reads it.
PATH_MARKER = "/proc/self/heapspec/"


def path_marker(path):
    """("test-begin" | "test-end", name) for a marker's path, or None for any other path."""
    if not path.startswith(PATH_MARKER):
        return None
    event, _, name = path[len(PATH_MARKER):].partition("/")
    return event, urllib.parse.unquote(name)


class GTestNames:
    """Suite.Name of a testing::TestInfo: the names --gtest_filter takes.

    Its first two members are test_suite_name_ (test_case_name_ before 1.10) and name_, libstdc++
    std::strings ({char *p; size_t n; ...}, 32 bytes), since GoogleTest 1.6; the debug info of
    gtest.h, which any test file built with -g carries, gives their offsets when present.
    `warn(message)` is told, once, when the names cannot be read and the tests get numbers.
    """

    def __init__(self, read, warn):
        self.read, self.warn = read, warn
        self.offsets = None
        self.unnamed = 0

    def __call__(self, info):
        if self.offsets is None:
            self.offsets = (0, 32)
            try:
                fields = {f.name: f.bitpos // 8 for f in gdb.lookup_type("testing::TestInfo").fields() if hasattr(f, "bitpos")}
                suite = fields.get("test_suite_name_", fields.get("test_case_name_"))
                if suite is not None and "name_" in fields:
                    self.offsets = (suite, fields["name_"])
            except gdb.error:
                pass  # no debug info for gtest.h: the layout above
        names = []
        for offset in self.offsets:
            try:
                p, n = struct.unpack("<QQ", self.read(info + offset, 16))
                text = self.read(p, n + 1) if 0 < n <= 4096 else b""
            except OSError:
                text = b""
            if text[-1:] != b"\0" or b"\0" in text[:-1]:
                # not a libstdc++ std::string (a GoogleTest built with libc++?): number the tests
                self.unnamed += 1
                if self.unnamed == 1:
                    self.warn("cannot read GoogleTest's test names (not a libstdc++ build?); its tests are numbered")
                return "gtest-test-%d" % self.unnamed
            names.append(text[:-1].decode("utf-8", "replace").replace("\n", " "))
        return ".".join(names)


def stopped_by_sigtrap():
    """Whether the selected thread stopped with a SIGTRAP pending for it ($_siginfo, which memcheck's
    gdbserver gives too): gdb reports a SIGTRAP it cannot explain as a plain stop, and keeps it from
    the program unless told. The program's end under --vgdb-stop-at=exit has none."""
    try:
        return int(gdb.parse_and_eval("$_siginfo.si_signo")) == 5
    except gdb.error:
        return False
