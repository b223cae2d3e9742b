"""The program's forks, each followed until it execs another program or ends.

memcheck checks a forked child at its end, under its own process id, unless the child execs another
program first. heapspec checks the process it started, and says how many of its forks ran unchecked:
each child is kept under gdb (detach-on-fork off for that one fork) with every heapspec breakpoint
disabled in it, so it runs its own code as natively, until its exec (then it is detached, and the new
program runs free, as under memcheck) or its end. A child leaves forked-PID in the run's directory,
removed at its exec, as the preload interposer's children do (src/capture/preload/lifecycle.c): the
host counts what is left. A vfork child (posix_spawn, system) shares its parent's memory until it
execs or _exits, and is not followed: gdb detaches it, as it did every child before.
"""
import os

import gdb


class Forks:
    program = None  # the number of the program's own inferior
    image_dir = None
    fork_catch = None
    exec_catch = None
    followed = 0  # children under gdb now
    marks = {}  # inferior number -> the forked-PID file of the child it holds


def follow(image_dir):
    """From now on the program's forks are followed (the program is the selected inferior)."""
    Forks.program = gdb.selected_inferior().num
    Forks.image_dir = image_dir
    for cmd in ("set follow-fork-mode parent", "set detach-on-fork on", "set schedule-multiple on", "catch fork"):
        gdb.execute(cmd, to_string=True)
    Forks.fork_catch = gdb.breakpoints()[-1]
    gdb.execute("catch exec", to_string=True)
    Forks.exec_catch = gdb.breakpoints()[-1]
    # a breakpoint made (or re-set) while a child is followed gets a location in the child too
    gdb.events.breakpoint_created.connect(keep_to_program)
    gdb.events.breakpoint_modified.connect(keep_to_program)
    gdb.events.exited.connect(ended)


def ended(event):
    """A followed child ended (memcheck checks it there): its mark stays."""
    if not is_program(event.inferior) and Forks.marks.pop(event.inferior.num, None) is not None:
        Forks.followed -= 1


def is_program(inferior):
    """Whether `inferior` is the program heapspec started (not a child it forked)."""
    return Forks.program is None or inferior.num == Forks.program


def keep_to_program(bp=None, always=False):
    """Enables the locations of `bp` (of every breakpoint, by default) in the program, and disables
    them in the followed children. gdb re-sets every breakpoint when a child execs (or a library is
    loaded), and carries a disabled location's state over to the program's location of the same
    function: heapspec never disables a location of its own, only whole breakpoints."""
    if Forks.followed == 0 and not always:
        return
    for b in [bp] if bp is not None else gdb.breakpoints():
        if not b.is_valid():
            continue
        for loc in b.locations:
            wanted = Forks.program in loc.thread_groups
            if loc.enabled != wanted:
                loc.enabled = wanted


def stopped(event):
    """At a stop: None when the program stopped for the observer's loop to handle; else how to resume
    after handling a stop of a followed child, a fork, or the program's own exec (its `continue` or a
    `signal` command). `event` is the stop's event, None when the command ended without one (a
    followed child exited)."""
    if Forks.program is None:
        return None
    inferior = gdb.selected_inferior()
    catch = event.breakpoints if isinstance(event, gdb.BreakpointEvent) else ()
    if Forks.fork_catch in catch:
        fork()
        return "continue"
    if is_program(inferior):
        return "continue" if Forks.exec_catch in catch else None
    if Forks.exec_catch in catch:
        exec_done(inferior)
        return "continue"
    if inferior.pid == 0:  # it ended (ended() has seen it)
        gdb.execute("inferior %d" % Forks.program, to_string=True)
        gdb.execute("remove-inferiors %d" % inferior.num, to_string=True)
        return "continue"
    # its own signals reach it as natively: gdb passes all but these two unless told
    if isinstance(event, gdb.SignalEvent) and event.stop_signal in ("SIGINT", "SIGTRAP"):
        return "signal %s" % event.stop_signal
    return "continue"  # a system call the program's catchpoint stops at, a signal gdb passes on


def fork():
    """At the fork catchpoint, in the parent: the fork returns there while the child, added to gdb
    stopped, waits; its locations are disabled before it runs."""
    known = {inferior.num for inferior in gdb.inferiors()}
    locking = gdb.parameter("scheduler-locking")
    gdb.execute("set detach-on-fork off", to_string=True)
    gdb.execute("set scheduler-locking step", to_string=True)
    try:
        gdb.execute("stepi", to_string=True)
    finally:
        gdb.execute("set scheduler-locking %s" % locking, to_string=True)
        gdb.execute("set detach-on-fork on", to_string=True)
    for inferior in gdb.inferiors():
        if inferior.num not in known and inferior.pid:
            Forks.followed += 1
            path = os.path.join(Forks.image_dir, "forked-%d" % inferior.pid)
            open(path, "w").close()
            Forks.marks[inferior.num] = path
    keep_to_program()


def exec_done(inferior):
    """A followed child exec'd another program, which memcheck does not check: it goes, unobserved."""
    path = Forks.marks.pop(inferior.num, None)
    if path is not None:
        os.unlink(path)
        Forks.followed -= 1
    gdb.execute("detach inferiors %d" % inferior.num, to_string=True)
    gdb.execute("inferior %d" % Forks.program, to_string=True)
    gdb.execute("remove-inferiors %d" % inferior.num, to_string=True)
    keep_to_program(always=True)


def finish():
    """The program ended: the children still followed run on unobserved (their marks stay)."""
    live = [inferior.num for inferior in gdb.inferiors() if not is_program(inferior) and inferior.pid]
    if live:
        gdb.execute("detach inferiors %s" % " ".join(map(str, live)), to_string=True)
    Forks.marks.clear()
    Forks.followed = 0
