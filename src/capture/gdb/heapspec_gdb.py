"""heapspec's GDB-side observer: breaks on the malloc family, emits raw events; no analysis here.

Loaded with `gdb -batch -ex 'python HEAPSPEC = {...}' -x heapspec_gdb.py --args PROGRAM ...`.
Every record goes out as one text line on file descriptor HEAPSPEC["fd"], in the capture
protocol that src/capture/event-stream.ts documents and turns into the heap model.

Speed: GDB stops the program at every breakpoint; the floor is that stop. Return values come
from per-call-site trampolines (the return address is pointed at a stub that stores rax in a
ring and jumps back), so a malloc costs one stop, not two. Registers come from ptrace directly
and stacks from our own CFI unwinder (unwind.py): GDB's frame API costs ~90 us a stop.
"""
import os
import re
import signal
import sys
import struct
import time

import gdb

CFG = globals().get("HEAPSPEC") or {}
sys.dont_write_bytecode = True  # nothing written into an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else CFG.get("dir", "."))
# the modules beside this file, found through the path set just above
import discovery  # noqa: E402
import forks  # noqa: E402
import frees  # noqa: E402
import objects  # noqa: E402
import observe  # noqa: E402
import test_cases  # noqa: E402
from elf import Elf, load_bias  # noqa: E402
from observe import (  # noqa: E402
    RAX, RDI, RDX, RSI, Allocator, Config, Free, FreeSwap, GdbFrames, Memory, NewHandler, Ring, State, Stopper, ThrowStart, address_of,
    dump, emit, find_libc, gdb_address_of, inject_call, inject_mmap, symbolize,
)

observe.configure(CFG)
objects.configure(CFG.get("objects") or [])
TESTS = CFG.get("tests")  # function names the host matched (a list), or None


def setup():
    inferior = gdb.selected_inferior()
    State.mem = Memory(inferior.pid)
    observe.watch_threads()
    try:
        from unwind import Unwinder

        State.unwinder = Unwinder(inferior.pid, State.mem.read)
        gdb.events.new_objfile.connect(lambda _e: State.unwinder.reset())
    except ImportError:
        State.unwinder = GdbFrames()
    base = inject_mmap(1 << 20)
    if base is not None:  # else every return value comes through a FinishBreakpoint (slower)
        State.ring = Ring(base, 1 << 20)
    if objects.Objects.patterns and State.ring is not None:
        objects.FreeFilter.install()
        if gdb_address_of("main") is not None:
            objects.PatchAt("*%d" % gdb_address_of("main"), internal=True)
        objects.Dlopen("*%d" % address_of("dlopen"), internal=True)
    else:
        kinds = [("malloc", "M"), ("calloc", "C"), ("realloc", "R"), ("memalign", "A"), ("aligned_alloc", "A"),
                 ("posix_memalign", "P"), ("valloc", "M"), ("pvalloc", "M")]
        placed = set()
        for name, kind in kinds:
            addr = address_of(name)
            if addr is not None and addr not in placed:  # aliases (aligned_alloc = memalign) share one breakpoint
                placed.add(addr)
                Allocator(addr, kind)
        entry = FreeSwap.install()
        Free("*%d" % entry, internal=True, swap=entry != address_of("free"))
        # C++'s operators, where libstdc++ is loaded with the program: only there is a block's
        # family known (its new[] and delete[] only jump to new and delete, and those to malloc and free)
        for name, code in frees.NEW_CODES.items():
            addr = libstdcxx_address(name)
            if addr is not None:
                Allocator(addr, "M", code, throws=name in frees.THROWING_NEW)
        for name in frees.EXCEPTION_ALLOCATORS:
            addr = libstdcxx_address(name)
            if addr is not None:
                ThrowStart("*%d" % addr, internal=True)
        addr = libstdcxx_address("_ZSt15get_new_handlerv")
        if addr is not None:
            NewHandler("*%d" % addr, internal=True)
            State.runtime = libstdcxx_extents(set(frees.NEW_CODES) | set(frees.EXCEPTION_ALLOCATORS))
        for name, family in frees.DELETE_FAMILIES.items():
            addr = libstdcxx_address(name)
            if addr is not None:
                Free("*%d" % addr, family, internal=True)
        State.judge = True
    test_cases.PathMarker("*%d" % address_of("access"), internal=True)
    State.exit_bp = Stopper("*%d" % address_of("_exit"), internal=True)
    gdb.execute("set breakpoint pending on", to_string=True)
    test_cases.Marker("heapspec_test_begin", True)
    test_cases.Marker("heapspec_test_end", False)
    if TESTS is not None:
        for location, name in discovery.test_functions(TESTS):
            test_cases.TestFunction(location, name)
    else:
        test_cases.GoogleTest.install()  # GoogleTest's tests, when no --tests regex says what a test is


def libstdcxx():
    """(its ELF, its load bias, {name: address} of its dynamic symbols) of the libstdc++ the program
    loaded, or None."""
    for objfile in gdb.objfiles():
        path = objfile.filename or ""
        if re.search(r"/libstdc\+\+\.so", path):
            if path not in LIBSTDCXX:
                elf, bias = Elf(path), load_bias(gdb.selected_inferior().pid, path)
                LIBSTDCXX[path] = (elf, bias, {n: bias + v for n, v in elf.defined().items()})
            return LIBSTDCXX[path]
    return None


def libstdcxx_address(name):
    """The address of libstdc++'s own `name` (its dynamic symbols), when the program loaded it."""
    found = libstdcxx()
    return found[2].get(name) if found is not None else None


def libstdcxx_extents(names):
    """[(lo, hi)] of the code of libstdc++'s functions among `names` (libstdc++ loaded)."""
    elf, bias, _addresses = libstdcxx()
    return [(bias + value, bias + value + size) for value, size in elf.extents(names)]


LIBSTDCXX = {}  # path -> libstdcxx()


def signal_handled(pid, signo):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signo - 1)))
    return False


def fatal_image(signal):
    """The image at `signal`, taken before it is delivered to end the program."""
    dump("crash")
    symbolize()
    fatal_image.dying = signal


# the signal on its way to end the program, once its image is taken
fatal_image.dying = None


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


# struct _IO_FILE (glibc 2.36, x86-64): where _IO_write_base, _IO_write_ptr, _chain and _mode are
IO_WRITE_BASE, IO_WRITE_PTR, IO_CHAIN, IO_MODE = 32, 40, 104, 192


def drop_unflushed():
    """Output stdio still holds at _exit: exit() has flushed every stream by then, so what is left
    is output the program never writes (it called _exit, _Exit or quick_exit). __libc_freeres's
    _IO_cleanup would write it: it is dropped first, as the process would drop it (byte streams
    alone: a wide one keeps its own pointers)."""
    head = address_of("_IO_list_all")
    f = State.mem.word(head) if head else 0
    seen = 0
    while f and seen < 100000:
        seen += 1
        base, ptr = State.mem.word(f + IO_WRITE_BASE), State.mem.word(f + IO_WRITE_PTR)
        mode = struct.unpack("<i", State.mem.read(f + IO_MODE, 4))[0]
        if mode <= 0 and ptr > base:
            State.mem.write(f + IO_WRITE_PTR, struct.pack("<Q", base))
        f = State.mem.word(f + IO_CHAIN)


def call_freeres():
    """Frees what libstdc++ and libc keep for the life of the process, as valgrind does at exit."""
    drop_unflushed()
    # Called by hand, not with gdb's `call`, which fails where gdb cannot restore the CPU's
    # extended state (AMX); each returns to _exit's entry, where this thread stands, stopped.
    here = int(gdb.newest_frame().read_register("rip"))
    for name in ("_ZN9__gnu_cxx9__freeresEv", "__libc_freeres"):
        addr = address_of(name) if name.startswith("__libc") else gdb_address_of(name)
        if addr is not None:
            try:
                failure = inject_call(addr, here)
            except gdb.error as e:
                failure = str(e)
            if failure is not None:
                emit("! %s failed: %s" % (name, failure))
                return


# System calls that end the program's image: its image is taken at their entry, whatever path led
# there (exit() or a raw exit_group, an exec, a SIGKILL the program sends itself).
ENDING_SYSCALLS = {231: "exit_group", 59: "execve", 322: "execveat", 62: "kill", 200: "tkill", 234: "tgkill"}
ORIG_RAX = 15
ENOSYS_ENTRY = (1 << 64) - 38  # rax holds -ENOSYS at a system call's entry stop


class Ending:
    catch = None  # the catchpoint on ENDING_SYSCALLS
    imaged = False  # the final image was taken

    @staticmethod
    def taken():
        """The final image is taken: no system call needs a stop any more. (A stop at exit_group in a
        program whose other threads are exiting can leave gdb unable to resume a thread that is
        gone: "Couldn't get registers: No such process".)"""
        Ending.imaged = True
        if Ending.catch is not None and Ending.catch.is_valid():
            Ending.catch.enabled = False


def catch_endings():
    gdb.execute("catch syscall %s" % " ".join(str(n) for n in ENDING_SYSCALLS), to_string=True)
    Ending.catch = gdb.breakpoints()[-1]


def self_kill(nr, regs):
    """A system call that sends SIGKILL to this process (or its group): nothing runs after it."""
    pid = State.pid
    if nr == 62:
        target, sig = regs[RDI] - (1 << 64) if regs[RDI] >> 63 else regs[RDI], regs[RSI]
        return sig == 9 and target in (pid, 0, -1, -os.getpgid(pid))
    if nr == 200:
        return regs[RSI] == 9 and regs[RDI] in [t.ptid[1] for t in gdb.selected_inferior().threads()]
    return regs[RDX] == 9 and regs[RDI] == pid


def ending_syscall():
    """At an ENDING_SYSCALLS entry: takes the final image when this call ends the program's image."""
    tid, regs = observe.current()
    nr = regs[ORIG_RAX]
    if regs[RAX] != ENOSYS_ENTRY or Ending.imaged:
        return
    if nr == 231:
        Ending.taken()
        dump("exit", exit_stack_floor())
        symbolize()
    elif nr in (59, 322):
        Ending.taken()
        path = observe.read_string(regs[RDI] if nr == 59 else regs[RSI])
        emit("I the program exec'd %s: heapspec classified its leaks at the exec and did not follow the new program" % (path or "another program"))
        dump("exec")
        symbolize()
        for bp in gdb.breakpoints():  # the new program runs unobserved, as under memcheck
            if bp is not forks.Forks.exec_catch:  # (a followed child's exec still ends its following)
                bp.delete()
    elif self_kill(nr, regs):
        Ending.taken()
        dump("crash")
        symbolize()


FATAL = {"SIGSEGV": 11, "SIGBUS": 7, "SIGFPE": 8, "SIGILL": 4, "SIGABRT": 6, "SIGSYS": 31, "SIGTRAP": 5,
         # the signals whose default ends the program without a fault (SIGPIPE under `| head -1`, a
         # test runner's SIGTERM): the image first, as memcheck checks for leaks when its program
         # dies of one. Not the timer and I/O signals, which programs take by the thousand.
         "SIGPIPE": 13, "SIGTERM": 15, "SIGHUP": 1, "SIGQUIT": 3, "SIGUSR1": 10, "SIGUSR2": 12,
         "SIGXCPU": 24, "SIGXFSZ": 25, "SIGPWR": 30}
last_stop = [None]
gdb.events.stop.connect(lambda e: last_stop.__setitem__(0, e))
exited = [None]
gdb.events.exited.connect(lambda e: exited.__setitem__(0, e) if forks.is_program(e.inferior) else None)


def stop_requested(wait=0.0):
    """The host's timeout (or Ctrl-C) asks for the report of the moment: it writes this file, then sends SIGINT.

    `wait`: a terminal's Ctrl-C reaches the program and heapspec at once, and the program's SIGINT
    may stop it here before heapspec has written the file; give heapspec that long.
    """
    path = os.path.join(Config.image_dir, "stop-requested")
    deadline = time.monotonic() + wait
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def main():
    # The host stops a run by SIGINTing the program (see backend.ts), never gdb: a SIGINT that lands
    # while this script runs would raise KeyboardInterrupt in it. gdb gives the program the signal
    # dispositions gdb itself started with, so the program's SIGINT stays its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # past main: a --tests function may be main itself, whose return needs its caller's frame
    for cmd in ("set pagination off", "set confirm off", "set backtrace past-main on", "set print thread-events off",
                "set print inferior-events off", "set startup-with-shell on", "set disable-randomization off",
                "handle all nostop noprint pass",
                "handle SIGSEGV SIGBUS SIGFPE SIGILL SIGABRT SIGSYS SIGPIPE SIGTERM SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGXCPU SIGXFSZ SIGPWR stop print pass",
                "set stop-on-solib-events 1"):
        gdb.execute(cmd, to_string=True)
    gdb.execute("run %s" % CFG.get("redirect", ""), to_string=True)
    while find_libc() is None:
        if exited[0] is not None:
            raise RuntimeError("the program exited before libc was loaded")
        if stop_requested():  # the host stops the run before the program got going: nothing to report
            gdb.execute("kill", to_string=True)
            emit("X signal SIGKILL")
            return
        gdb.execute("continue", to_string=True)
    gdb.execute("set stop-on-solib-events 0", to_string=True)
    setup()
    catch_endings()
    forks.follow(Config.image_dir)
    with open(os.path.join(Config.image_dir, "inferior-pid.tmp"), "w") as f:
        f.write(str(gdb.selected_inferior().pid))
    os.rename(os.path.join(Config.image_dir, "inferior-pid.tmp"), os.path.join(Config.image_dir, "inferior-pid"))
    emit("H 1")
    resume = "continue"  # or a signal of the program's own to deliver as it goes on
    failed = 0  # resumes that failed in a row
    while True:
        last_stop[0] = None
        try:
            gdb.execute(resume, to_string=True)
            resume = "continue"
            failed = 0
        except gdb.error as e:
            failed += 1
            if exited[0] is not None:
                raise
            if fatal_image.dying and re.search("No such process|live selected thread|thread is running", str(e)):
                # the fatal signal ended the process while gdb resumed its threads one by one: a
                # gone one cannot be resumed, and resuming from it again failed the same way for
                # ever (gdb spinning). The process is dead or dying of the signal: reaped here.
                try:
                    gdb.execute("kill", to_string=True)
                except gdb.error:
                    pass
                emit("X signal %s" % fatal_image.dying)
                return
            # a thread that ended while the others were stopped: gdb resumes without it next time
            if "No such process" not in str(e) or failed > 100:
                raise
            continue
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
        followed = forks.stopped(event)  # a fork, or a stop of a child it made
        if followed is not None:
            resume = followed
            continue
        if isinstance(event, gdb.BreakpointEvent) and State.exit_bp in event.breakpoints:
            if not Ending.imaged:
                Ending.taken()
                call_freeres()
                dump("exit", exit_stack_floor())
                symbolize()
            continue
        if isinstance(event, gdb.BreakpointEvent) and Ending.catch in event.breakpoints:
            ending_syscall()
            continue
        if isinstance(event, gdb.SignalEvent) and event.stop_signal == "SIGINT":
            if stop_requested(wait=0.2):
                # the host's timeout: report what leaked so far, then end the program
                dump("timeout")
                symbolize()
                Config.out.flush()
                gdb.execute("kill", to_string=True)
                emit("X signal SIGKILL")
                return
            if not signal_handled(gdb.selected_inferior().pid, 2):
                fatal_image("SIGINT")  # it ends the program: the image first
            resume = "signal SIGINT"  # the program's own SIGINT: delivered as it goes on
            continue
        if isinstance(event, gdb.SignalEvent):
            signo = FATAL.get(event.stop_signal)
            if signo and not signal_handled(gdb.selected_inferior().pid, signo):
                fatal_image(event.stop_signal)
            continue
        if type(event) is gdb.StopEvent and discovery.stopped_by_sigtrap():
            # gdb keeps SIGTRAP, its breakpoints' signal, from the program (`handle all` leaves it
            # out, and passing it would hand the program the traps of heapspec's own injected
            # calls), and reports one it cannot explain as a plain stop: in this loop that is the
            # program's own (its raise(SIGTRAP), an int3 of its own), delivered as natively. Its
            # handler had never seen it, and without a handler the program ran on.
            if not signal_handled(gdb.selected_inferior().pid, FATAL["SIGTRAP"]):
                fatal_image("SIGTRAP")
            resume = "signal SIGTRAP"
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
    try:
        forks.finish()
    except gdb.error:
        pass  # gdb lost them: they run on
    Config.out.flush()
