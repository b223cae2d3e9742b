/*
 * heapspec's preload observer: an allocation interposer loaded into the program with LD_PRELOAD.
 *
 * It speaks the capture protocol of src/capture/event-stream.ts on the file descriptor named by
 * HEAPSPEC_PRELOAD_FD, like the GDB script does, so the same model, leak scan and per-test
 * attribution apply. Built on first use by src/capture/preload/backend.ts:
 *   cc -O2 -fPIC -shared -fvisibility=hidden -o heapspec-preload.so interposer.c -ldl -pthread
 * x86-64 Linux with glibc only (it reaches glibc's allocator through its exported __libc_malloc
 * family, and reads glibc's thread layout to bound stack walks).
 *
 * What it does, and why:
 *  - malloc, calloc, realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc
 *    and pvalloc are defined here, and C++'s operators new and delete (as memcheck replaces them:
 *    only there is a block's family known, for errors.c's mismatched frees). glibc calls malloc through the PLT everywhere (strdup, stdio,
 *    libstdc++'s operator new, ld.so's TLS), so every allocation a memcheck run counts comes
 *    through; the real work is done by __libc_malloc and friends, never by dlsym (which may itself
 *    allocate). Each entry point is an assembly stub that saves the callee-saved registers and
 *    the stack pointer at entry: the unwinder starts from the exact caller state.
 *  - Stacks are return addresses, innermost first, up to 16, of the allocator's caller chain, as
 *    the GDB script records them. The unwinder is DWARF CFI over each object's .eh_frame (found
 *    through PT_GNU_EH_FRAME in memory), with the rule row of every return address compiled once
 *    and cached. A frame-pointer walk alone would be wrong: glibc's frames (__libc_start_call_main,
 *    start_thread) and any -O2 code keep no frame pointer, and the chain would skip or invent
 *    callers. The fast path is a verified replay: a stack is cached under (return address,
 *    stack pointer) at the allocator's entry together with every register and stack word its walk
 *    consumed, and when all of them still hold the same values the walk would produce the same
 *    stack, so it costs a few loads and compares, like a frame-pointer walk, and is exact. Where an
 *    object has no CFI for a pc (code built with -fno-asynchronous-unwind-tables, JIT code), the
 *    walk follows the frame pointer if it points further up the stack, so code built with
 *    -fno-omit-frame-pointer still gets full stacks there; otherwise the stack ends at that frame.
 *  - Events are counted here and sent only when the model needs them: a block allocated and freed
 *    between two test-case boundaries is one more allocation and free in an `N` line, nothing else;
 *    the blocks still live at a boundary (a test's begin or end, the exit, a crash) go out as `A`
 *    lines with their stacks before it. The figures are the same as one line per event gives
 *    (HEAPSPEC_PRELOAD_EVENTS=all does that, for memdump.txt), at a small fraction of the cost.
 *  - Peaks (peaks.c): the host never sees the blocks freed between boundaries, so the high-water
 *    marks of live bytes (the run's, the running test case's own, the heap's while it runs) and a
 *    sampled series of live bytes are kept here, at a compare or two per event, and sent at each
 *    test end (P) and at exit (Q, G) with the stacks live at each peak (p lines).
 *  - Threads: one lock orders every event, as the model needs one order; while glibc says the
 *    process has a single thread (__libc_single_threaded) the hooks skip it. Per-thread state lives
 *    in a pthread key, not in TLS: a TLS segment here would change the size of glibc's per-thread
 *    DTV allocation, which the program's figures count.
 *  - Test cases: heapspec_test_begin/end are weak functions inside the program, called directly
 *    (no PLT), so LD_PRELOAD cannot replace them. Their entries, found in each object's symbol
 *    table, are patched with a jump to a stub here, or with an int3 that the SIGTRAP handler turns
 *    into the call where the function is too short for a jump. Objects loaded later are patched
 *    before their constructors run: ld.so calls _dl_debug_state() at every change of its list (gdb
 *    breaks there too), and it gets an int3 of ours. At a test's end the memory image is taken
 *    with every other thread stopped by a signal (their registers come from the signal context),
 *    like GDB's all-stop dump at that call. JavaScript's markers (heapspec/markers) are an
 *    access() of a path under /proc/self/heapspec/, which access() here recognises.
 *  - Exit: libc's _exit is patched the same way, so the image is taken after the atexit handlers,
 *    C++ static destructors and stdio's flush, when exit() is done; libstdc++'s and libc's
 *    freeres run first, as valgrind runs them; the scan of the exiting thread's stack starts at
 *    the first frame outside libc, as the GDB script does.
 *  - Crash: a handler for the fatal signals the program leaves at their default dumps the image
 *    and re-raises the signal. Timeout: the host sends STOP_SIGNAL with a request file in place;
 *    the image of that moment is taken and the program killed, as the GDB backend does.
 *  - Children: the variables that load and configure this file are removed from the environment
 *    at start-up, and a forked child stops observing at once, as gdb and memcheck follow only the
 *    program itself.
 *  - Memory of our own (tables, buffers, this object's data) is never part of an image: it holds
 *    every block's address.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
/* libc's sigaction under its other exported name: heapspec's own calls, past its sigaction hook */
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
extern void *__libc_stack_end;

#define DEPTH 16          /* return addresses kept per stack, as the GDB script keeps */
#define NREGS 17          /* DWARF registers 0..15 and 16, the return address */
#define MAX_MODULES 1024

/* One concern a file, compiled together as one unit (static functions and state are shared). */
#include "sys.c"
#include "state.c"
#include "regions.c"
#include "protocol.c"
#include "stacks.c"
#include "modules.c"
#include "cfi.c"
#include "unwind.c"
#include "blocks.c"
#include "peaks.c"
#include "errors.c"
#include "config.c"
#include "hooks.c"
#include "image.c"
#include "scan.c"
#include "symbols.c"
#include "patch.c"
#include "markers.c"
#include "exit.c"
#include "test-functions.c"
#include "endings.c"
#include "signals.c"
#include "lifecycle.c"
