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
 *    and pvalloc are defined here. glibc calls malloc through the PLT everywhere (strdup, stdio,
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
extern void *__libc_stack_end;

#define DEPTH 16          /* return addresses kept per stack, as the GDB script keeps */
#define NREGS 17          /* DWARF registers 0..15 and 16, the return address */
#define MAX_MODULES 1024

/* ---------------------------------------------------------------------------------------------
 * Raw system calls and small helpers: nothing here may allocate.
 */

static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    return ret;
}

static int x_gettid(void) { return (int)sys3(SYS_gettid, 0, 0, 0); }
static int x_getpid(void) { return (int)sys3(SYS_getpid, 0, 0, 0); }
static int x_open(const char *path, int flags, int mode) { return (int)sys6(SYS_openat, AT_FDCWD, (long)path, flags | O_CLOEXEC, mode, 0, 0); }
static long x_read(int fd, void *buf, size_t n) { return sys3(SYS_read, fd, (long)buf, (long)n); }
static long x_write(int fd, const void *buf, size_t n) { return sys3(SYS_write, fd, (long)buf, (long)n); }
static int x_close(int fd) { return (int)sys3(SYS_close, fd, 0, 0); }
static void *x_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
    long r = sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
    return r < 0 && r > -4096 ? MAP_FAILED : (void *)r;
}
static int x_munmap(void *addr, size_t len) { return (int)sys3(SYS_munmap, (long)addr, (long)len, 0); }
static int x_mprotect(void *addr, size_t len, int prot) { return (int)sys3(SYS_mprotect, (long)addr, (long)len, prot); }
static int x_tgkill(int pid, int tid, int sig) { return (int)sys3(SYS_tgkill, pid, tid, sig); }
static __attribute__((noreturn)) void x_exit_group(int status)
{
    for (;;) sys3(SYS_exit_group, status, 0, 0);
}
static void futex_wait(int *addr, int val, const struct timespec *timeout)
{
    sys6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val, (long)timeout, 0, 0);
}
static void futex_wake(int *addr, int n) { sys3(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, n); }

static size_t x_strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return 1;
}

static int x_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

static const char *x_strstr(const char *hay, const char *needle)
{
    size_t n = x_strlen(needle);
    for (; *hay; hay++)
        if (starts_with(hay, needle)) return hay;
    return n == 0 ? hay : NULL;
}

static uint64_t parse_hex(const char **p)
{
    uint64_t v = 0;
    for (;;) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return v;
        v = v * 16 + (uint64_t)d;
        (*p)++;
    }
}

/* ---------------------------------------------------------------------------------------------
 * State.
 */

enum { OFF, STARTING, ON, DISABLED };
static volatile int g_state = OFF;
static int g_fd = -1;              /* the protocol, CLOEXEC, far from the program's descriptors */
static int g_pid;
static int g_all_events;           /* one line per event (memdump.txt) instead of counts */
static char g_dir[1024];           /* where memory images go */
static char g_tests_file[1024];    /* the --tests functions to hook, one "symbol<TAB>name" a line */
static uintptr_t g_main_hi;        /* top of the main thread's stack mapping */
static int g_exiting;

/* Per-thread state lives in a pthread key, not in __thread variables: a TLS segment here would make
 * glibc's dynamic thread vector longer, and every thread's DTV allocation 16 bytes bigger than it
 * is without heapspec (the figures must not change because heapspec is there). */
/* A test function this thread is inside (see "test functions" below). */
struct shadow_frame {
    uint64_t slot;  /* where the return address was */
    uint64_t ra;    /* the original return address */
    uint32_t test;  /* index into g_tests */
    char gtest[256]; /* at GoogleTest's OnTestStart: the test's Suite.Name */
};
extern void heapspec_test_return(void) __attribute__((visibility("hidden")));
struct thread_state;
static uint64_t shadow_ra(struct thread_state *me, uint64_t slot);

struct thread_state {
    int tid;
    volatile int busy; /* inside heapspec: allocations made here are ours, not the program's */
    uintptr_t hi;      /* top of this thread's stack */
    /* test functions this thread is inside (their return addresses replaced by ours), innermost
     * last; allocated on the first one */
    struct shadow_frame *shadow;
    int nshadow;
    uintptr_t stepping; /* a test function's entry whose first instruction is being single-stepped */
};
static pthread_key_t g_key;
static struct thread_state *g_first;  /* the thread that started heapspec: the only one, at first */

/* glibc's own flag: true until the first pthread_create. While it holds, no other thread can be
 * inside a hook: the allocator hooks skip the lock's two atomic operations (most of their cost, as
 * glibc's malloc skips its own locks then) and the pthread key lookup. Threads made with a raw
 * clone() are not seen, as glibc's malloc does not see them either. */
extern char __libc_single_threaded __attribute__((weak));

static inline int single_threaded(void)
{
    return &__libc_single_threaded && __libc_single_threaded;
}
#define STATES_MAX (1u << 20)
static struct thread_state *g_states;
static uint32_t g_nstates;
static struct thread_state g_spare_state; /* past STATES_MAX threads, they share one */

static struct thread_state *new_state(void)
{
    uint32_t i = __atomic_fetch_add(&g_nstates, 1, __ATOMIC_RELAXED);
    struct thread_state *s = i < STATES_MAX ? &g_states[i] : &g_spare_state;
    s->tid = (int)syscall(SYS_gettid);
    s->busy = 0;
    s->hi = 0;
    s->shadow = NULL;
    s->nshadow = 0;
    s->stepping = 0;
    pthread_setspecific(g_key, s);
    return s;
}

static inline struct thread_state *self_state(void)
{
    if (single_threaded() && g_first) return g_first;
    struct thread_state *s = pthread_getspecific(g_key);
    return LIKELY(s != NULL) ? s : new_state();
}

/* One lock orders every event of every thread, as the model needs them in one order. */
static int g_lock;
static void lock_slow(void)
{
    while (__atomic_exchange_n(&g_lock, 2, __ATOMIC_ACQUIRE) != 0) futex_wait(&g_lock, 2, NULL);
}
static inline void lock(void)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&g_lock, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) lock_slow();
}
static inline void unlock(void)
{
    if (__atomic_exchange_n(&g_lock, 0, __ATOMIC_RELEASE) == 2) futex_wake(&g_lock, 1);
}

static inline int hook_lock(void)
{
    if (single_threaded()) return 0;
    lock();
    return 1;
}

static inline void hook_unlock(int locked)
{
    if (locked) unlock();
}

/* ---------------------------------------------------------------------------------------------
 * Our own memory: mmapped, and listed, so that memory images leave it out.
 */

#define MAX_RANGES 256
static struct { uintptr_t lo, hi; } g_ranges[MAX_RANGES];
static int g_nranges;

static void range_add(uintptr_t lo, uintptr_t hi)
{
    if (g_nranges < MAX_RANGES) {
        g_ranges[g_nranges].lo = lo;
        g_ranges[g_nranges].hi = hi;
        g_nranges++;
    }
}

static void range_remove(uintptr_t lo)
{
    for (int i = 0; i < g_nranges; i++)
        if (g_ranges[i].lo == lo) {
            g_ranges[i] = g_ranges[--g_nranges];
            return;
        }
}

static void *region(size_t size)
{
    size = (size + 4095) & ~(size_t)4095;
    void *p = x_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    range_add((uintptr_t)p, (uintptr_t)p + size);
    return p;
}

static void region_free(void *p, size_t size)
{
    size = (size + 4095) & ~(size_t)4095;
    range_remove((uintptr_t)p);
    x_munmap(p, size);
}

/* ---------------------------------------------------------------------------------------------
 * The protocol writer: a buffer flushed to the descriptor, under the lock.
 */

#define OUT_SIZE (1 << 16)
static char *g_out;
static size_t g_outn;

static void out_flush(void)
{
    size_t done = 0;
    while (done < g_outn) {
        long n = x_write(g_fd, g_out + done, g_outn - done);
        if (n == -EINTR) continue;
        if (n <= 0) break; /* the host went away: nothing to do but keep the program running */
        done += (size_t)n;
    }
    g_outn = 0;
}

static inline void out_room(size_t n)
{
    if (g_outn + n > OUT_SIZE) out_flush();
}

static void out_bytes(const char *s, size_t n)
{
    while (n > 0) {
        out_room(1);
        size_t k = OUT_SIZE - g_outn;
        if (k > n) k = n;
        memcpy(g_out + g_outn, s, k);
        g_outn += k;
        s += k;
        n -= k;
    }
}

static void out_str(const char *s) { out_bytes(s, x_strlen(s)); }

static void out_hex(uint64_t v)
{
    char buf[17];
    int i = 16;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    out_bytes(buf + i, (size_t)(16 - i));
}

static void out_dec(uint64_t v)
{
    char buf[21];
    int i = 20;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_bytes(buf + i, (size_t)(20 - i));
}

static void out_c(char c)
{
    out_room(1);
    g_out[g_outn++] = c;
}

/* A line "! message": the observer failed at something, the host reports it as a warning. */
static void out_failure(const char *what, const char *detail)
{
    out_str("! ");
    out_str(what);
    if (detail) {
        out_str(": ");
        out_str(detail);
    }
    out_c('\n');
}

/* ---------------------------------------------------------------------------------------------
 * Stacks: interned, each sent once (S line) before the first block that uses it.
 */

struct stack {
    uint64_t hash;
    uint32_t n;
    uint32_t sent;
    uint64_t pcs[DEPTH];
    /* by-stack counting (g_by_stack): blocks of this stack counted but not sent since the last
     * boundary, and whether it is on the dirty list */
    int64_t allocs, frees, bytes;
    uint32_t dirty;
};

#define STACKS_MAX (1u << 21)
static struct stack *g_stacks;   /* reserved, touched as it grows */
static uint32_t g_nstacks;
static uint32_t *g_stack_index;  /* open addressing: sid + 1, 0 empty */
static uint32_t g_stack_index_cap;

static uint64_t hash_pcs(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int stack_index_grow(void)
{
    uint32_t cap = g_stack_index_cap ? g_stack_index_cap * 2 : 4096;
    uint32_t *index = region(cap * sizeof(uint32_t));
    if (!index) return 0;
    for (uint32_t sid = 0; sid < g_nstacks; sid++) {
        uint32_t at = (uint32_t)(g_stacks[sid].hash & (cap - 1));
        while (index[at]) at = (at + 1) & (cap - 1);
        index[at] = sid + 1;
    }
    if (g_stack_index) region_free(g_stack_index, g_stack_index_cap * sizeof(uint32_t));
    g_stack_index = index;
    g_stack_index_cap = cap;
    return 1;
}

/* The id of a stack, interning it when new; UINT32_MAX when the tables are full. */
static uint32_t stack_intern(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = hash_pcs(pcs, n);
    if ((g_nstacks + 1) * 2 > g_stack_index_cap && !stack_index_grow()) return UINT32_MAX;
    uint32_t at = (uint32_t)(h & (g_stack_index_cap - 1));
    for (;;) {
        uint32_t e = g_stack_index[at];
        if (!e) break;
        struct stack *s = &g_stacks[e - 1];
        if (s->hash == h && s->n == n && memcmp(s->pcs, pcs, n * sizeof(uint64_t)) == 0) return e - 1;
        at = (at + 1) & (g_stack_index_cap - 1);
    }
    if (g_nstacks >= STACKS_MAX) return UINT32_MAX;
    uint32_t sid = g_nstacks++;
    struct stack *s = &g_stacks[sid];
    s->hash = h;
    s->n = n;
    s->sent = 0;
    memcpy(s->pcs, pcs, n * sizeof(uint64_t));
    g_stack_index[at] = sid + 1;
    return sid;
}

static void stack_send(uint32_t sid)
{
    struct stack *s = &g_stacks[sid];
    if (s->sent) return;
    s->sent = 1;
    out_str("S ");
    out_dec(sid);
    for (uint32_t i = 0; i < s->n; i++) {
        out_c(' ');
        out_hex(s->pcs[i]);
    }
    out_c('\n');
}

/* ---------------------------------------------------------------------------------------------
 * Loaded objects: code ranges and where their .eh_frame_hdr lies, read from /proc/self/maps and
 * the ELF headers in memory (no dl_iterate_phdr here: it takes a lock a thread calling malloc
 * may hold).
 */

struct module {
    uintptr_t lo, hi;          /* an executable PT_LOAD, relocated */
    const uint8_t *hdr;        /* .eh_frame_hdr, or NULL */
    int libc;                  /* glibc's libc.so: where the exit scan's floor is looked for */
};
static struct module g_modules[MAX_MODULES];
static int g_nmodules;
static int g_modules_stale = 1;
static uint64_t g_last_scan_ns;

static char *g_maps;           /* a copy of /proc/self/maps */
static size_t g_maps_cap;

static size_t read_maps(void)
{
    if (!g_maps) {
        g_maps_cap = 1 << 20;
        g_maps = region(g_maps_cap);
        if (!g_maps) return 0;
    }
    int fd = x_open("/proc/self/maps", O_RDONLY, 0);
    if (fd < 0) return 0;
    size_t n = 0;
    for (;;) {
        if (n + 4096 >= g_maps_cap) {
            char *bigger = region(g_maps_cap * 2);
            if (!bigger) break;
            memcpy(bigger, g_maps, n);
            region_free(g_maps, g_maps_cap);
            g_maps = bigger;
            g_maps_cap *= 2;
        }
        long r = x_read(fd, g_maps + n, g_maps_cap - n - 1);
        if (r == -EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    x_close(fd);
    g_maps[n] = 0;
    return n;
}

struct maps_line {
    uintptr_t start, end;
    char perms[5];
    uint64_t offset;
    const char *name;
    size_t name_len;
};

/* Parses the line at *p and moves past it; returns 0 at the end. */
static int next_maps_line(const char **p, struct maps_line *m)
{
    const char *s = *p;
    if (!*s) return 0;
    m->start = parse_hex(&s);
    if (*s == '-') s++;
    m->end = parse_hex(&s);
    while (*s == ' ') s++;
    for (int i = 0; i < 4; i++) m->perms[i] = *s ? *s++ : '-';
    m->perms[4] = 0;
    while (*s == ' ') s++;
    m->offset = parse_hex(&s);
    for (int field = 0; field < 2; field++) { /* device, inode */
        while (*s == ' ') s++;
        while (*s && *s != ' ' && *s != '\n') s++;
    }
    while (*s == ' ') s++;
    m->name = s;
    while (*s && *s != '\n') s++;
    m->name_len = (size_t)(s - m->name);
    if (*s == '\n') s++;
    *p = s;
    return 1;
}

static int same_name(const struct maps_line *a, const struct maps_line *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

static void scan_modules(void)
{
    if (!read_maps()) return;
    g_nmodules = 0;
    const char *p = g_maps;
    struct maps_line m;
    while (next_maps_line(&p, &m)) {
        if (m.offset != 0 || m.name_len == 0 || (m.name[0] != '/' && !starts_with(m.name, "[vdso]"))) continue;
        if (!(m.perms[0] == 'r')) continue;
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m.start;
        if (m.end - m.start < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) continue;
        if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > m.end - m.start) continue;
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(m.start + eh->e_phoff);
        uintptr_t bias = 0;
        int have_bias = 0;
        const uint8_t *hdr = NULL;
        for (int i = 0; i < eh->e_phnum; i++) {
            if (ph[i].p_type == PT_LOAD && !have_bias) {
                bias = m.start - (ph[i].p_vaddr & ~(uint64_t)4095);
                have_bias = 1;
            }
        }
        if (!have_bias) continue;
        for (int i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_GNU_EH_FRAME) hdr = (const uint8_t *)(bias + ph[i].p_vaddr);
        int libc = x_strstr(m.name, "/libc.so") != NULL && x_strstr(m.name, "/libc.so") < m.name + m.name_len;
        for (int i = 0; i < eh->e_phnum && g_nmodules < MAX_MODULES; i++) {
            if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X)) continue;
            uintptr_t lo = bias + ph[i].p_vaddr, hi = lo + ph[i].p_memsz;
            /* trust the range only where it is mapped executable under the same name */
            const char *q = g_maps;
            struct maps_line x;
            int mapped = 0;
            while (next_maps_line(&q, &x))
                if (x.perms[2] == 'x' && same_name(&x, &m) && x.start <= lo && lo < x.end) mapped = 1;
            if (!mapped) continue;
            g_modules[g_nmodules].lo = lo;
            g_modules[g_nmodules].hi = hi;
            g_modules[g_nmodules].hdr = hdr;
            g_modules[g_nmodules].libc = libc;
            g_nmodules++;
        }
    }
    g_modules_stale = 0;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static struct module *module_for(uintptr_t pc)
{
    for (int pass = 0; pass < 2; pass++) {
        if (g_modules_stale) scan_modules();
        for (int i = 0; i < g_nmodules; i++)
            if (g_modules[i].lo <= pc && pc < g_modules[i].hi) return &g_modules[i];
        if (pass == 0) {
            /* a pc in no known object: something may have been mapped since; look again, at
             * most every few milliseconds (JIT code has no object at all) */
            uint64_t t = now_ns();
            if (t - g_last_scan_ns < 5000000ull) return NULL;
            g_last_scan_ns = t;
            g_modules_stale = 1;
        }
    }
    return NULL;
}

/* DWARF constants (no system header has them all). */
enum {
    DW_EH_PE_absptr = 0x00, DW_EH_PE_uleb128 = 0x01, DW_EH_PE_udata2 = 0x02, DW_EH_PE_udata4 = 0x03,
    DW_EH_PE_udata8 = 0x04, DW_EH_PE_sleb128 = 0x09, DW_EH_PE_sdata2 = 0x0a, DW_EH_PE_sdata4 = 0x0b,
    DW_EH_PE_sdata8 = 0x0c, DW_EH_PE_pcrel = 0x10, DW_EH_PE_datarel = 0x30, DW_EH_PE_aligned = 0x50,
    DW_EH_PE_indirect = 0x80, DW_EH_PE_omit = 0xff,
};
enum {
    DW_CFA_advance_loc = 0x40, DW_CFA_offset = 0x80, DW_CFA_restore = 0xc0, DW_CFA_nop = 0x00,
    DW_CFA_set_loc = 0x01, DW_CFA_advance_loc1 = 0x02, DW_CFA_advance_loc2 = 0x03, DW_CFA_advance_loc4 = 0x04,
    DW_CFA_offset_extended = 0x05, DW_CFA_restore_extended = 0x06, DW_CFA_undefined = 0x07,
    DW_CFA_same_value = 0x08, DW_CFA_register = 0x09, DW_CFA_remember_state = 0x0a,
    DW_CFA_restore_state = 0x0b, DW_CFA_def_cfa = 0x0c, DW_CFA_def_cfa_register = 0x0d,
    DW_CFA_def_cfa_offset = 0x0e, DW_CFA_def_cfa_expression = 0x0f, DW_CFA_expression = 0x10,
    DW_CFA_offset_extended_sf = 0x11, DW_CFA_def_cfa_sf = 0x12, DW_CFA_def_cfa_offset_sf = 0x13,
    DW_CFA_val_offset = 0x14, DW_CFA_val_offset_sf = 0x15, DW_CFA_val_expression = 0x16,
    DW_CFA_GNU_args_size = 0x2e, DW_CFA_GNU_negative_offset_extended = 0x2f,
};
enum {
    DW_OP_deref = 0x06, DW_OP_const1u = 0x08, DW_OP_const1s = 0x09, DW_OP_const2u = 0x0a,
    DW_OP_const2s = 0x0b, DW_OP_const4u = 0x0c, DW_OP_const4s = 0x0d, DW_OP_const8u = 0x0e,
    DW_OP_const8s = 0x0f, DW_OP_constu = 0x10, DW_OP_consts = 0x11, DW_OP_dup = 0x12, DW_OP_drop = 0x13,
    DW_OP_over = 0x14, DW_OP_swap = 0x16, DW_OP_and = 0x1a, DW_OP_minus = 0x1c, DW_OP_mul = 0x1e,
    DW_OP_neg = 0x1f, DW_OP_not = 0x20, DW_OP_or = 0x21, DW_OP_plus = 0x22, DW_OP_plus_uconst = 0x23,
    DW_OP_shl = 0x24, DW_OP_shr = 0x25, DW_OP_shra = 0x26, DW_OP_xor = 0x27, DW_OP_eq = 0x29,
    DW_OP_ge = 0x2a, DW_OP_gt = 0x2b, DW_OP_le = 0x2c, DW_OP_lt = 0x2d, DW_OP_ne = 0x2e,
    DW_OP_lit0 = 0x30, DW_OP_lit31 = 0x4f, DW_OP_breg0 = 0x70, DW_OP_breg31 = 0x8f, DW_OP_bregx = 0x92,
    DW_OP_nop = 0x96,
};

/* ---------------------------------------------------------------------------------------------
 * DWARF call frame information: .eh_frame_hdr lookup, CIE/FDE parsing, the CFA program, rules.
 */

static uint64_t uleb(const uint8_t **p)
{
    uint64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

static int64_t sleb(const uint8_t **p)
{
    int64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

/* Reads a DW_EH_PE-encoded pointer at *p; `datarel` is the base of datarel encodings (0: none). */
static int read_pointer(const uint8_t **p, uint8_t enc, uintptr_t datarel, uint64_t *out)
{
    if (enc == DW_EH_PE_omit) {
        *out = 0;
        return 1;
    }
    uint8_t app = enc & 0x70;
    if (app == DW_EH_PE_aligned) {
        *p = (const uint8_t *)(((uintptr_t)*p + 7) & ~(uintptr_t)7);
        app = 0;
        enc = (uint8_t)(enc & 0x80);
    }
    uintptr_t field = (uintptr_t)*p;
    uint64_t v;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: memcpy(&v, *p, 8); *p += 8; break;
    case DW_EH_PE_uleb128: v = uleb(p); break;
    case DW_EH_PE_udata2: { uint16_t x; memcpy(&x, *p, 2); *p += 2; v = x; break; }
    case DW_EH_PE_udata4: { uint32_t x; memcpy(&x, *p, 4); *p += 4; v = x; break; }
    case DW_EH_PE_udata8: memcpy(&v, *p, 8); *p += 8; break;
    case DW_EH_PE_sleb128: v = (uint64_t)sleb(p); break;
    case DW_EH_PE_sdata2: { int16_t x; memcpy(&x, *p, 2); *p += 2; v = (uint64_t)(int64_t)x; break; }
    case DW_EH_PE_sdata4: { int32_t x; memcpy(&x, *p, 4); *p += 4; v = (uint64_t)(int64_t)x; break; }
    case DW_EH_PE_sdata8: memcpy(&v, *p, 8); *p += 8; break;
    default: return 0;
    }
    if (app == DW_EH_PE_pcrel) v += field;
    else if (app == DW_EH_PE_datarel) {
        if (!datarel) return 0;
        v += datarel;
    } else if (app) return 0; /* textrel, funcrel: never in x86-64 CFI */
    if (enc & DW_EH_PE_indirect) memcpy(&v, (const void *)v, 8);
    *out = v;
    return 1;
}

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra;
    uint8_t fde_enc, signal, aug_z;
    const uint8_t *ins, *end;
};

struct fde {
    struct cie cie;
    uint64_t start, end;
    const uint8_t *ins, *ins_end;
};

/* Entry header: returns the byte after the length field and sets *end; NULL on a terminator. */
static const uint8_t *entry_header(const uint8_t *p, const uint8_t **end, int *wide)
{
    uint32_t len32;
    memcpy(&len32, p, 4);
    p += 4;
    *wide = 0;
    if (len32 == 0) return NULL;
    uint64_t len = len32;
    if (len32 == 0xffffffffu) {
        memcpy(&len, p, 8);
        p += 8;
        *wide = 1;
    }
    *end = p + len;
    return p;
}

static int parse_cie(const uint8_t *at, struct cie *c)
{
    const uint8_t *end;
    int wide;
    const uint8_t *p = entry_header(at, &end, &wide);
    if (!p) return 0;
    p += wide ? 8 : 4; /* CIE id */
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    p += x_strlen(aug) + 1;
    if (aug[0] == 'e' && aug[1] == 'h') p += 8;
    c->code_align = uleb(&p);
    c->data_align = sleb(&p);
    c->ra = version == 1 ? *p++ : uleb(&p);
    c->fde_enc = DW_EH_PE_absptr;
    c->signal = 0;
    c->aug_z = aug[0] == 'z';
    if (c->aug_z) {
        uint64_t len = uleb(&p);
        const uint8_t *after = p + len;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') c->fde_enc = *p++;
            else if (*a == 'L') p++;
            else if (*a == 'P') {
                uint8_t enc = *p++;
                uint64_t ignored;
                if (!read_pointer(&p, (uint8_t)(enc & 0x7f), 0, &ignored)) break;
            } else if (*a == 'S') c->signal = 1;
            else if (*a != 'B') break;
        }
        p = after;
    } else if (aug[0] && !(aug[0] == 'e' && aug[1] == 'h' && !aug[2])) {
        return 0;
    }
    c->ins = p;
    c->end = end;
    return 1;
}

static int parse_fde(const uint8_t *at, struct fde *f)
{
    const uint8_t *end;
    int wide;
    const uint8_t *p = entry_header(at, &end, &wide);
    if (!p) return 0;
    uint64_t cie_off;
    if (wide) {
        memcpy(&cie_off, p, 8);
    } else {
        uint32_t x;
        memcpy(&x, p, 4);
        cie_off = x;
    }
    if (cie_off == 0) return 0;
    const uint8_t *cie_at = p - cie_off;
    p += wide ? 8 : 4;
    if (!parse_cie(cie_at, &f->cie)) return 0;
    uint64_t start, range;
    if (!read_pointer(&p, f->cie.fde_enc, 0, &start)) return 0;
    if (!read_pointer(&p, (uint8_t)(f->cie.fde_enc & 0x0f), 0, &range)) return 0;
    f->start = start;
    f->end = start + range;
    if (f->cie.aug_z) {
        uint64_t len = uleb(&p);
        p += len;
    }
    f->ins = p;
    f->ins_end = end;
    return 1;
}

/* The FDE covering pc, through the module's .eh_frame_hdr binary-search table. */
static int find_fde(uintptr_t pc, struct fde *f)
{
    struct module *m = module_for(pc);
    if (!m || !m->hdr) return 0;
    const uint8_t *hdr = m->hdr;
    if (hdr[0] != 1) return 0;
    uint8_t eh_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    const uint8_t *p = hdr + 4;
    uint64_t eh_frame, count;
    if (!read_pointer(&p, eh_enc, (uintptr_t)hdr, &eh_frame)) return 0;
    if (!read_pointer(&p, count_enc, (uintptr_t)hdr, &count)) return 0;
    if (table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || count == 0) return 0;
    const int32_t *table = (const int32_t *)p;
    int64_t rel = (int64_t)(pc - (uintptr_t)hdr);
    uint64_t lo = 0, hi = count;
    while (lo < hi) { /* first entry with start > pc */
        uint64_t mid = (lo + hi) / 2;
        if (table[2 * mid] <= rel) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    const uint8_t *fde = hdr + table[2 * (lo - 1) + 1];
    if (!parse_fde(fde, f)) return 0;
    return f->start <= pc && pc < f->end;
}

enum { R_NONE, R_OFFSET, R_VAL_OFFSET, R_REGISTER, R_UNDEFINED, R_SAME, R_EXPR, R_VAL_EXPR };

struct rule {
    uint8_t kind;
    uint8_t reg;        /* R_REGISTER: the source register */
    uint32_t len;       /* expression length */
    int64_t off;        /* offset, or the expression's address */
};

struct row {
    uint64_t pc;        /* the lookup key: a return address - 1, or an exact pc after a signal */
    uint8_t stop;       /* the walk ends here (outermost frame, or no CFI) */
    uint8_t signal;     /* a signal frame: its caller's pc is exact */
    uint8_t cfa_expr;   /* the CFA is an expression (at cfa_off, cfa_len bytes) */
    uint8_t cfa_reg;
    uint8_t fp;         /* no CFI: follow the frame pointer */
    uint32_t cfa_len;
    int64_t cfa_off;
    struct rule r[NREGS];
};

struct cfa_state {
    uint8_t cfa_expr, cfa_reg;
    uint32_t cfa_len;
    int64_t cfa_off;
    struct rule r[NREGS];
};

/* Runs call frame instructions up to `target` (or all of them when target is 0). */
static int run_cfa(const uint8_t *p, const uint8_t *end, const struct fde *f, struct cfa_state *s, const struct cfa_state *initial, uint64_t target)
{
    struct cfa_state saved[16];
    int depth = 0;
    uint64_t loc = f->start;
    int64_t da = f->cie.data_align;
    uint64_t ca = f->cie.code_align;
    while (p < end) {
        uint8_t op = *p++;
        uint8_t high = op & 0xc0, low = op & 0x3f;
        uint64_t reg;
        int64_t off;
        if (high == DW_CFA_advance_loc) {
            loc += low * ca;
            if (target && loc > target) break;
            continue;
        }
        if (high == DW_CFA_offset) {
            off = (int64_t)uleb(&p) * da;
            if (low < NREGS) s->r[low] = (struct rule){R_OFFSET, 0, 0, off};
            continue;
        }
        if (high == DW_CFA_restore) {
            if (low < NREGS) s->r[low] = initial ? initial->r[low] : (struct rule){R_NONE, 0, 0, 0};
            continue;
        }
        switch (op) {
        case DW_CFA_nop: break;
        case DW_CFA_set_loc: {
            uint64_t v;
            if (!read_pointer(&p, f->cie.fde_enc, 0, &v)) return 0;
            loc = v;
            if (target && loc > target) return 1;
            break;
        }
        case DW_CFA_advance_loc1: loc += *p * ca; p += 1; if (target && loc > target) return 1; break;
        case DW_CFA_advance_loc2: { uint16_t x; memcpy(&x, p, 2); p += 2; loc += x * ca; if (target && loc > target) return 1; break; }
        case DW_CFA_advance_loc4: { uint32_t x; memcpy(&x, p, 4); p += 4; loc += x * ca; if (target && loc > target) return 1; break; }
        case DW_CFA_offset_extended: reg = uleb(&p); off = (int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_offset_extended_sf: reg = uleb(&p); off = sleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_GNU_negative_offset_extended: reg = uleb(&p); off = -(int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_val_offset: reg = uleb(&p); off = (int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_VAL_OFFSET, 0, 0, off}; break;
        case DW_CFA_val_offset_sf: reg = uleb(&p); off = sleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_VAL_OFFSET, 0, 0, off}; break;
        case DW_CFA_restore_extended: reg = uleb(&p); if (reg < NREGS) s->r[reg] = initial ? initial->r[reg] : (struct rule){R_NONE, 0, 0, 0}; break;
        case DW_CFA_undefined: reg = uleb(&p); if (reg < NREGS) s->r[reg] = (struct rule){R_UNDEFINED, 0, 0, 0}; break;
        case DW_CFA_same_value: reg = uleb(&p); if (reg < NREGS) s->r[reg] = (struct rule){R_SAME, 0, 0, 0}; break;
        case DW_CFA_register: {
            reg = uleb(&p);
            uint64_t other = uleb(&p);
            if (reg < NREGS) s->r[reg] = (struct rule){R_REGISTER, (uint8_t)(other < 255 ? other : 255), 0, 0};
            break;
        }
        case DW_CFA_remember_state:
            if (depth >= 16) return 0;
            saved[depth++] = *s;
            break;
        case DW_CFA_restore_state:
            if (depth == 0) return 0;
            *s = saved[--depth];
            break;
        case DW_CFA_def_cfa: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_off = (int64_t)uleb(&p); s->cfa_expr = 0; break;
        case DW_CFA_def_cfa_sf: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_off = sleb(&p) * da; s->cfa_expr = 0; break;
        case DW_CFA_def_cfa_register: if (s->cfa_expr) return 0; s->cfa_reg = (uint8_t)uleb(&p); break;
        case DW_CFA_def_cfa_offset: if (s->cfa_expr) return 0; s->cfa_off = (int64_t)uleb(&p); break;
        case DW_CFA_def_cfa_offset_sf: if (s->cfa_expr) return 0; s->cfa_off = sleb(&p) * da; break;
        case DW_CFA_def_cfa_expression: {
            uint64_t len = uleb(&p);
            s->cfa_expr = 1;
            s->cfa_off = (int64_t)(uintptr_t)p;
            s->cfa_len = (uint32_t)len;
            p += len;
            break;
        }
        case DW_CFA_expression:
        case DW_CFA_val_expression: {
            reg = uleb(&p);
            uint64_t len = uleb(&p);
            if (reg < NREGS) s->r[reg] = (struct rule){op == DW_CFA_expression ? R_EXPR : R_VAL_EXPR, 0, (uint32_t)len, (int64_t)(uintptr_t)p};
            p += len;
            break;
        }
        case DW_CFA_GNU_args_size: uleb(&p); break;
        default: return 0;
        }
    }
    return 1;
}

/* The rule row at pc, computed from the CFI; row->stop where the walk must end. */
static void compute_row(uint64_t pc, struct row *row)
{
    memset(row, 0, sizeof *row);
    row->pc = pc;
    struct fde f;
    if (!find_fde(pc, &f)) {
        row->stop = 1;
        row->fp = 1;
        return;
    }
    struct cfa_state s;
    memset(&s, 0, sizeof s);
    s.cfa_reg = 7;
    s.cfa_off = 8;
    if (!run_cfa(f.cie.ins, f.cie.end, &f, &s, NULL, 0)) goto stop;
    struct cfa_state initial = s;
    if (!run_cfa(f.ins, f.ins_end, &f, &s, &initial, pc)) goto stop;
    if (f.cie.ra != 16 || (!s.cfa_expr && s.cfa_reg >= NREGS)) goto stop;
    uint8_t ra = s.r[16].kind;
    if (ra == R_NONE || ra == R_UNDEFINED || ra == R_SAME) goto stop; /* outermost: _start, clone */
    row->signal = f.cie.signal;
    row->cfa_expr = s.cfa_expr;
    row->cfa_reg = s.cfa_reg;
    row->cfa_off = s.cfa_off;
    row->cfa_len = s.cfa_len;
    memcpy(row->r, s.r, sizeof s.r);
    return;
stop:
    row->stop = 1;
}

/* Rows, cached by pc: open addressing over an array of row indexes. */
#define ROWS_MAX (1u << 18)
static struct row *g_rows;
static uint32_t g_nrows;
static uint32_t *g_row_index;
static uint32_t g_row_index_cap;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int row_index_grow(void)
{
    uint32_t cap = g_row_index_cap ? g_row_index_cap * 2 : 4096;
    uint32_t *index = region(cap * sizeof(uint32_t));
    if (!index) return 0;
    for (uint32_t i = 0; i < g_nrows; i++) {
        uint32_t at = (uint32_t)(mix(g_rows[i].pc) & (cap - 1));
        while (index[at]) at = (at + 1) & (cap - 1);
        index[at] = i + 1;
    }
    if (g_row_index) region_free(g_row_index, g_row_index_cap * sizeof(uint32_t));
    g_row_index = index;
    g_row_index_cap = cap;
    return 1;
}

static const struct row *row_for(uint64_t pc)
{
    static struct row scratch;
    if ((g_nrows + 1) * 2 > g_row_index_cap && !row_index_grow()) {
        compute_row(pc, &scratch);
        return &scratch;
    }
    uint32_t at = (uint32_t)(mix(pc) & (g_row_index_cap - 1));
    for (;;) {
        uint32_t e = g_row_index[at];
        if (!e) break;
        if (g_rows[e - 1].pc == pc) return &g_rows[e - 1];
        at = (at + 1) & (g_row_index_cap - 1);
    }
    if (g_nrows >= ROWS_MAX) {
        compute_row(pc, &scratch);
        return &scratch;
    }
    struct row *row = &g_rows[g_nrows];
    compute_row(pc, row);
    g_row_index[at] = ++g_nrows;
    return row;
}

/* ---------------------------------------------------------------------------------------------
 * The walk. Every value the walk consumes is traced (an entry register, or a stack word with its
 * address), so a later call from the same place can be checked against the trace and given the
 * same stack without walking: the fast path.
 */

/* What the entry stubs save: the caller's callee-saved registers and the stack pointer at entry. */
struct entry_regs {
    uint64_t rbx, rbp, r12, r13, r14, r15, sp;
};

#define MAX_READS 48
struct trace {
    uint32_t regmask;      /* which entry registers (rbx rbp r12 r13 r14 r15) the walk used */
    uint32_t nreads;
    int cacheable;
    uint64_t max_addr;
    struct { uint64_t addr, value; } reads[MAX_READS];
};

enum { SRC_DERIVED, SRC_ENTRY, SRC_MEMORY };
struct val {
    uint64_t v;
    uint64_t addr;     /* SRC_MEMORY: where it was read */
    uint8_t known, src, entry;
};

struct walk {
    uintptr_t lo, hi;  /* the stack words the walk may read */
    struct trace *t;
    struct val cur[NREGS];
};

static int readable(struct walk *w, uint64_t addr)
{
    return addr >= w->lo && addr + 8 <= w->hi && !(addr & 7);
}

static void use(struct walk *w, struct val *v)
{
    struct trace *t = w->t;
    if (!t) return;
    if (v->src == SRC_ENTRY) t->regmask |= 1u << v->entry;
    else if (v->src == SRC_MEMORY) {
        if (t->nreads < MAX_READS) {
            t->reads[t->nreads].addr = v->addr;
            t->reads[t->nreads].value = v->v;
            t->nreads++;
            if (v->addr > t->max_addr) t->max_addr = v->addr;
        } else {
            t->cacheable = 0;
        }
    }
    v->src = SRC_DERIVED; /* traced once is enough */
}

static int load(struct walk *w, uint64_t addr, struct val *out)
{
    if (!readable(w, addr)) {
        if (w->t) w->t->cacheable = 0; /* the bounds decided; another thread's may differ */
        out->known = 0;
        return 0;
    }
    out->v = *(const volatile uint64_t *)addr;
    out->addr = addr;
    out->known = 1;
    out->src = SRC_MEMORY;
    return 1;
}

/* A DWARF expression, with the subset of operators compilers and glibc emit in CFI. */
static int evaluate(struct walk *w, const uint8_t *p, uint32_t len, uint64_t pc, const uint64_t *push, uint64_t *result)
{
    uint64_t stack[64];
    int sp = 0;
    const uint8_t *end = p + len;
    if (push) stack[sp++] = *push;
#define NEED(n) do { if (sp < (n)) return 0; } while (0)
#define PUSH(x) do { if (sp >= 64) return 0; uint64_t pushed_ = (x); stack[sp++] = pushed_; } while (0)
    while (p < end) {
        uint8_t op = *p++;
        if (op >= DW_OP_lit0 && op <= DW_OP_lit31) {
            PUSH((uint64_t)(op - DW_OP_lit0));
        } else if ((op >= DW_OP_breg0 && op <= DW_OP_breg31) || op == DW_OP_bregx) {
            uint64_t reg = op == DW_OP_bregx ? uleb(&p) : (uint64_t)(op - DW_OP_breg0);
            int64_t off = sleb(&p);
            uint64_t base;
            if (reg == 16) base = pc;
            else if (reg < NREGS && w->cur[reg].known) {
                use(w, &w->cur[reg]);
                base = w->cur[reg].v;
            } else return 0;
            PUSH(base + (uint64_t)off);
        } else {
            uint64_t a, b;
            switch (op) {
            case DW_OP_deref: {
                NEED(1);
                struct val v;
                if (!load(w, stack[sp - 1], &v)) return 0;
                use(w, &v);
                stack[sp - 1] = v.v;
                break;
            }
            case DW_OP_const1u: PUSH(*p); p += 1; break;
            case DW_OP_const1s: PUSH((uint64_t)(int64_t)(int8_t)*p); p += 1; break;
            case DW_OP_const2u: { uint16_t x; memcpy(&x, p, 2); p += 2; PUSH(x); break; }
            case DW_OP_const2s: { int16_t x; memcpy(&x, p, 2); p += 2; PUSH((uint64_t)(int64_t)x); break; }
            case DW_OP_const4u: { uint32_t x; memcpy(&x, p, 4); p += 4; PUSH(x); break; }
            case DW_OP_const4s: { int32_t x; memcpy(&x, p, 4); p += 4; PUSH((uint64_t)(int64_t)x); break; }
            case DW_OP_const8u: case DW_OP_const8s: { uint64_t x; memcpy(&x, p, 8); p += 8; PUSH(x); break; }
            case DW_OP_constu: PUSH(uleb(&p)); break;
            case DW_OP_consts: PUSH((uint64_t)sleb(&p)); break;
            case DW_OP_plus_uconst: NEED(1); stack[sp - 1] += uleb(&p); break;
            case DW_OP_dup: NEED(1); PUSH(stack[sp - 1]); break;
            case DW_OP_drop: NEED(1); sp--; break;
            case DW_OP_over: NEED(2); PUSH(stack[sp - 2]); break;
            case DW_OP_swap: NEED(2); a = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = a; break;
            case DW_OP_neg: NEED(1); stack[sp - 1] = -stack[sp - 1]; break;
            case DW_OP_not: NEED(1); stack[sp - 1] = ~stack[sp - 1]; break;
            case DW_OP_nop: break;
            case DW_OP_and: case DW_OP_minus: case DW_OP_mul: case DW_OP_or: case DW_OP_plus:
            case DW_OP_shl: case DW_OP_shr: case DW_OP_shra: case DW_OP_xor: case DW_OP_eq:
            case DW_OP_ge: case DW_OP_gt: case DW_OP_le: case DW_OP_lt: case DW_OP_ne:
                NEED(2);
                b = stack[--sp];
                a = stack[sp - 1];
                switch (op) {
                case DW_OP_and: a &= b; break;
                case DW_OP_minus: a -= b; break;
                case DW_OP_mul: a *= b; break;
                case DW_OP_or: a |= b; break;
                case DW_OP_plus: a += b; break;
                case DW_OP_shl: a = b < 64 ? a << b : 0; break;
                case DW_OP_shr: a = b < 64 ? a >> b : 0; break;
                case DW_OP_shra: a = (uint64_t)((int64_t)a >> (b < 64 ? b : 63)); break;
                case DW_OP_xor: a ^= b; break;
                case DW_OP_eq: a = (int64_t)a == (int64_t)b; break;
                case DW_OP_ge: a = (int64_t)a >= (int64_t)b; break;
                case DW_OP_gt: a = (int64_t)a > (int64_t)b; break;
                case DW_OP_le: a = (int64_t)a <= (int64_t)b; break;
                case DW_OP_lt: a = (int64_t)a < (int64_t)b; break;
                case DW_OP_ne: a = (int64_t)a != (int64_t)b; break;
                }
                stack[sp - 1] = a;
                break;
            default: return 0;
            }
        }
    }
#undef NEED
#undef PUSH
    if (sp == 0) return 0;
    *result = stack[sp - 1];
    return 1;
}

static const int CALLEE_SAVED[6] = {3, 6, 12, 13, 14, 15}; /* rbx rbp r12 r13 r14 r15 */

/* One frame up: from the frame whose pc is `pc` (row `row`) to its caller. Returns the caller's
 * return address through *ra, 0 when the walk must stop. */
static int step(struct walk *w, const struct row *row, uint64_t pc, uint64_t *ra)
{
    struct val next[NREGS];
    memset(next, 0, sizeof next);
    uint64_t cfa;
    if (row->fp) {
        /* no CFI: the frame pointer, if it points up the stack, holds the caller's rbp, then ra */
        struct val *rbp = &w->cur[6];
        if (!rbp->known || rbp->v < w->cur[7].v || !readable(w, rbp->v) || !readable(w, rbp->v + 8)) return 0;
        use(w, rbp);
        uint64_t frame = rbp->v;
        for (int i = 0; i < 6; i++) next[CALLEE_SAVED[i]] = w->cur[CALLEE_SAVED[i]];
        load(w, frame, &next[6]);
        struct val r;
        load(w, frame + 8, &r);
        use(w, &r);
        next[7] = (struct val){frame + 16, 0, 1, SRC_DERIVED, 0};
        memcpy(w->cur, next, sizeof next);
        *ra = r.v;
        return 1;
    }
    if (row->cfa_expr) {
        if (!evaluate(w, (const uint8_t *)(uintptr_t)row->cfa_off, row->cfa_len, pc, NULL, &cfa)) return 0;
    } else {
        struct val *base = &w->cur[row->cfa_reg];
        if (!base->known) return 0;
        use(w, base);
        cfa = base->v + (uint64_t)row->cfa_off;
    }
    for (int i = 0; i < 6; i++) next[CALLEE_SAVED[i]] = w->cur[CALLEE_SAVED[i]];
    next[7] = (struct val){cfa, 0, 1, SRC_DERIVED, 0};
    for (int reg = 0; reg < NREGS; reg++) {
        const struct rule *r = &row->r[reg];
        uint64_t addr;
        switch (r->kind) {
        case R_NONE: break;
        case R_OFFSET: load(w, cfa + (uint64_t)r->off, &next[reg]); break;
        case R_VAL_OFFSET: next[reg] = (struct val){cfa + (uint64_t)r->off, 0, 1, SRC_DERIVED, 0}; break;
        case R_REGISTER: if (r->reg < NREGS) next[reg] = w->cur[r->reg]; else next[reg].known = 0; break;
        case R_UNDEFINED: next[reg].known = 0; break;
        case R_SAME: next[reg] = w->cur[reg]; break;
        case R_EXPR:
            if (evaluate(w, (const uint8_t *)(uintptr_t)r->off, r->len, pc, &cfa, &addr)) load(w, addr, &next[reg]);
            else next[reg].known = 0;
            break;
        case R_VAL_EXPR:
            if (evaluate(w, (const uint8_t *)(uintptr_t)r->off, r->len, pc, &cfa, &addr)) next[reg] = (struct val){addr, 0, 1, SRC_DERIVED, 0};
            else next[reg].known = 0;
            break;
        }
    }
    if (!next[16].known) return 0;
    use(w, &next[16]);
    *ra = next[16].v;
    next[16].known = 0;
    memcpy(w->cur, next, sizeof next);
    return 1;
}

/* The top of this thread's stack: for the main thread its mapping's end, for the others glibc's
 * thread descriptor (pthread_self()), which sits right above the stack it allocated. */
static inline uintptr_t thread_hi(struct thread_state *me)
{
    if (UNLIKELY(!me->hi)) me->hi = me->tid == g_pid ? g_main_hi : (uintptr_t)pthread_self();
    return me->hi;
}

/* Walks from an allocator's entry: pcs[0] is the return address into its caller. Returns how many
 * pcs; cfas[i], when given, is the stack pointer of the frame pcs[i] returns into. */
static uint32_t walk_stack(struct thread_state *me, const struct entry_regs *r, uint64_t *pcs, uint64_t *cfas, uint32_t depth, struct trace *t)
{
    struct walk w;
    w.lo = r->sp;
    w.hi = thread_hi(me);
    w.t = t;
    if (t) {
        t->regmask = 0;
        t->nreads = 0;
        t->cacheable = 1;
        t->max_addr = r->sp;
    }
    uint64_t ra = *(const uint64_t *)r->sp;
    /* a stack we do not know the extent of (a signal's alternate stack, a thread of raw clone):
     * the caller only */
    int known = w.hi > r->sp && (me->tid == g_pid || w.hi - r->sp < (1ull << 30));
    memset(w.cur, 0, sizeof w.cur);
    const uint64_t entry[6] = {r->rbx, r->rbp, r->r12, r->r13, r->r14, r->r15};
    for (int i = 0; i < 6; i++) w.cur[CALLEE_SAVED[i]] = (struct val){entry[i], 0, 1, SRC_ENTRY, (uint8_t)i};
    w.cur[7] = (struct val){r->sp + 8, 0, 1, SRC_DERIVED, 0};
    uint32_t n = 0;
    int signal = 0;
    while (ra && n < depth) {
        if (UNLIKELY(ra == (uint64_t)(uintptr_t)heapspec_test_return)) {
            /* a test function's frame: its real return address is on the shadow stack */
            uint64_t real = me->shadow ? shadow_ra(me, w.cur[7].v - 8) : 0;
            if (t) t->cacheable = 0;
            if (!real) break;
            ra = real;
        }
        pcs[n] = ra;
        if (cfas) cfas[n] = w.cur[7].v;
        n++;
        if (n >= depth || !known) break;
        uint64_t key = signal ? ra : ra - 1;
        const struct row *row = row_for(key);
        if (row->stop && !row->fp) break;
        uint64_t next;
        if (!step(&w, row, ra, &next)) break;
        signal = row->signal;
        ra = next;
    }
    if (!known && t) t->cacheable = 0;
    return n;
}

/* The fast path's cache: (return address, stack pointer) at entry -> the stack, with its trace as
 * words to compare. The entry registers the walk used are compared where the stub saved them,
 * which for a given stack pointer is a fixed address too. */
#define MAX_CHECKS (MAX_READS + 6)
struct cached {
    uint64_t ra, sp;
    uint32_t sid, nchecks;
    uint64_t max_addr;
    struct { uint64_t addr, value; } checks[MAX_CHECKS];
};
#define CACHE_SIZE 4096
static struct cached *g_cache;

static inline struct cached *cache_slot(uint64_t ra, uint64_t sp)
{
    return &g_cache[mix(ra ^ (sp * 0x9E3779B97F4A7C15ull)) & (CACHE_SIZE - 1)];
}

/* The stack id for an allocator entered with `r`; UINT32_MAX when no stack could be kept. */
static __attribute__((noinline)) uint32_t stack_walked(struct thread_state *me, const struct entry_regs *r, uint64_t ra, struct cached *c);

static inline __attribute__((always_inline)) uint32_t stack_of(struct thread_state *me, const struct entry_regs *r)
{
    uint64_t ra = *(const uint64_t *)r->sp;
    struct cached *c = cache_slot(ra, r->sp);
    if (LIKELY(c->ra == ra && c->sp == r->sp && c->max_addr + 8 <= thread_hi(me))) {
        uint32_t i = 0;
        while (i < c->nchecks && *(const volatile uint64_t *)c->checks[i].addr == c->checks[i].value) i++;
        if (LIKELY(i == c->nchecks)) return c->sid;
    }
    return stack_walked(me, r, ra, c);
}

/* The slow path: a real walk, and the cache entry refilled. */
static __attribute__((noinline)) uint32_t stack_walked(struct thread_state *me, const struct entry_regs *r, uint64_t ra, struct cached *c)
{
    uint64_t pcs[DEPTH];
    static struct trace t;
    uint32_t n = walk_stack(me, r, pcs, NULL, DEPTH, &t);
    uint32_t sid = stack_intern(pcs, n);
    if (t.cacheable && sid != UINT32_MAX) {
        uint32_t k = 0;
        const uint64_t *entry = &r->rbx; /* rbx rbp r12 r13 r14 r15, where the stub saved them */
        for (int i = 0; i < 6; i++)
            if (t.regmask >> i & 1) {
                c->checks[k].addr = (uint64_t)(uintptr_t)&entry[i];
                c->checks[k].value = entry[i];
                k++;
            }
        for (uint32_t i = 0; i < t.nreads; i++) {
            c->checks[k].addr = t.reads[i].addr;
            c->checks[k].value = t.reads[i].value;
            k++;
        }
        c->ra = ra;
        c->sp = r->sp;
        c->sid = sid;
        c->nchecks = k;
        c->max_addr = t.max_addr;
    }
    return sid;
}

/* Code was unloaded: rows and cached stacks may describe code that is gone. */
static void forget_code(void)
{
    g_nrows = 0;
    if (g_row_index) memset(g_row_index, 0, g_row_index_cap * sizeof(uint32_t));
    if (g_cache) memset(g_cache, 0, CACHE_SIZE * sizeof(struct cached));
    g_modules_stale = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Live blocks. Each one is "sent" (the model knows it: an A line went out) or not yet; a block not
 * yet sent that is freed before the next boundary only adds to the counts of the N line.
 */

struct block {
    uint64_t addr;
    uint64_t size;
    uint64_t seq;    /* allocation order: blocks go out in it, so loss records tie as under gdb */
    uint32_t sid;    /* UINT32_MAX: no stack */
    uint32_t tid;    /* high bit: not yet sent */
};
#define UNSENT 0x80000000u

static struct block *g_blocks;
static uint64_t g_blocks_cap, g_nblocks, g_unsent;
static int g_blocks_shift; /* 64 - log2(capacity) */
static uint64_t g_n_allocs, g_n_frees, g_n_bytes; /* counts not yet sent */

/* Only some objects' allocations are the program's figures (a Node addon's, for runNode): every
 * block is still tracked, so the scan sees the whole heap, but counts go out per stack ("n" lines)
 * and the host, which knows which objects are observed, keeps those whose stack has a frame in
 * one. Each stack with counts since the last boundary is on the dirty list. */
static int g_by_stack;

/* The test case running (between a begin and an end marker): the first allocation it made, and how
 * many of its blocks are live. A test case that ends with none of its blocks live has nothing to
 * classify, so it ends with no memory image (the boundary then costs what a marker call costs, not
 * a copy of the whole heap). */
static int g_test_running;
static uint64_t g_test_first_seq;
static int64_t g_test_live;
static uint32_t *g_dirty;
static uint32_t g_ndirty;
static uint32_t g_empty_sid = UINT32_MAX;

/* Under the lock. */
static inline void tally(uint32_t sid, int64_t allocs, int64_t frees, int64_t bytes)
{
    if (LIKELY(!g_by_stack)) return;
    if (sid == UINT32_MAX) sid = g_empty_sid;
    if (sid == UINT32_MAX) return;
    struct stack *st = &g_stacks[sid];
    st->allocs += allocs;
    st->frees += frees;
    st->bytes += bytes;
    if (!st->dirty) {
        st->dirty = 1;
        g_dirty[g_ndirty++] = sid;
    }
}
static uint64_t g_seq;

static inline uint64_t block_hash(uint64_t addr) { return (addr >> 4) * 0x9E3779B97F4A7C15ull; }

static int blocks_grow(void)
{
    uint64_t cap = g_blocks_cap ? g_blocks_cap * 2 : 1 << 10;
    struct block *tab = region(cap * sizeof(struct block));
    if (!tab) return 0;
    int bits = __builtin_ctzll(cap);
    for (uint64_t i = 0; i < g_blocks_cap; i++) {
        if (!g_blocks[i].addr) continue;
        uint64_t at = block_hash(g_blocks[i].addr) >> (64 - bits);
        while (tab[at].addr) at = (at + 1) & (cap - 1);
        tab[at] = g_blocks[i];
    }
    if (g_blocks) region_free(g_blocks, g_blocks_cap * sizeof(struct block));
    g_blocks = tab;
    g_blocks_cap = cap;
    g_blocks_shift = 64 - bits;
    return 1;
}

static inline uint64_t block_slot(uint64_t addr)
{
    uint64_t at = block_hash(addr) >> g_blocks_shift;
    while (g_blocks[at].addr && g_blocks[at].addr != addr) at = (at + 1) & (g_blocks_cap - 1);
    return at;
}

static inline void block_delete(uint64_t at)
{
    uint64_t mask = g_blocks_cap - 1;
    uint64_t hole = at;
    uint64_t i = at;
    for (;;) {
        i = (i + 1) & mask;
        if (!g_blocks[i].addr) break;
        uint64_t home = block_hash(g_blocks[i].addr) >> g_blocks_shift;
        /* move i into the hole unless its home lies cyclically in (hole, i] */
        if ((i > hole && (home <= hole || home > i)) || (i < hole && home <= hole && home > i)) {
            g_blocks[hole] = g_blocks[i];
            hole = i;
        }
    }
    g_blocks[hole].addr = 0;
    g_nblocks--;
}

static void send_block(struct block *b)
{
    if (b->sid != UINT32_MAX) stack_send(b->sid);
    out_str("A ");
    out_dec(b->tid & ~UNSENT);
    out_c(' ');
    out_hex(b->addr);
    out_c(' ');
    out_dec(b->size);
    out_c(' ');
    out_dec(b->sid == UINT32_MAX ? 0 : b->sid);
    out_c('\n');
}

/* Unsent blocks, by allocation order, for send_pending. */
static struct block **g_order;
static uint64_t g_order_cap;

static void sort_by_seq(struct block **a, uint64_t n)
{
    /* heapsort: no recursion, no allocation */
    for (uint64_t start = n / 2; start-- > 0;) {
        for (uint64_t root = start;;) {
            uint64_t child = 2 * root + 1;
            if (child >= n) break;
            if (child + 1 < n && a[child + 1]->seq > a[child]->seq) child++;
            if (a[root]->seq >= a[child]->seq) break;
            struct block *t = a[root];
            a[root] = a[child];
            a[child] = t;
            root = child;
        }
    }
    for (uint64_t end = n; end-- > 1;) {
        struct block *t = a[0];
        a[0] = a[end];
        a[end] = t;
        for (uint64_t root = 0;;) {
            uint64_t child = 2 * root + 1;
            if (child >= end) break;
            if (child + 1 < end && a[child + 1]->seq > a[child]->seq) child++;
            if (a[root]->seq >= a[child]->seq) break;
            struct block *x = a[root];
            a[root] = a[child];
            a[child] = x;
            root = child;
        }
    }
}

/* Before a boundary: every block the model does not know yet, in the order they were allocated
 * (the model's order, as one line per event gives it), and the counts. */
static void send_pending(void)
{
    if (g_unsent) {
        if (g_order_cap < g_unsent) {
            if (g_order) region_free(g_order, g_order_cap * sizeof *g_order);
            g_order_cap = g_unsent * 2;
            g_order = region(g_order_cap * sizeof *g_order);
            if (!g_order) g_order_cap = 0;
        }
        uint64_t n = 0;
        for (uint64_t i = 0; i < g_blocks_cap && g_order; i++) {
            struct block *b = &g_blocks[i];
            if (b->addr && (b->tid & UNSENT)) g_order[n++] = b;
        }
        sort_by_seq(g_order, n);
        for (uint64_t i = 0; i < n; i++) {
            struct block *b = g_order[i];
            if (b->sid == UINT32_MAX) {
                if (g_empty_sid == UINT32_MAX) g_empty_sid = stack_intern(NULL, 0);
                b->sid = g_empty_sid;
            }
            send_block(b);
            b->tid &= ~UNSENT;
            g_n_allocs--;
            g_n_bytes -= b->size;
            tally(b->sid, -1, 0, -(int64_t)b->size);
        }
        g_unsent = 0;
    }
    if (g_by_stack) {
        for (uint32_t i = 0; i < g_ndirty; i++) {
            struct stack *st = &g_stacks[g_dirty[i]];
            if (st->allocs || st->frees) {
                stack_send(g_dirty[i]);
                out_str("n ");
                out_dec(g_dirty[i]);
                out_c(' ');
                out_dec((uint64_t)st->allocs);
                out_c(' ');
                out_dec((uint64_t)st->frees);
                out_c(' ');
                out_dec((uint64_t)st->bytes);
                out_c('\n');
            }
            st->allocs = st->frees = st->bytes = 0;
            st->dirty = 0;
        }
        g_ndirty = 0;
        g_n_allocs = g_n_frees = g_n_bytes = 0;
    }
    if (g_n_allocs || g_n_frees) {
        out_str("N ");
        out_dec(g_n_allocs);
        out_c(' ');
        out_dec(g_n_frees);
        out_c(' ');
        out_dec(g_n_bytes);
        out_c('\n');
        g_n_allocs = g_n_frees = g_n_bytes = 0;
    }
}

static inline int tid(void) { return self_state()->tid; }

static __attribute__((noinline)) void send_alloc(struct thread_state *me, uint64_t addr, size_t size, uint32_t sid)
{
    if (sid != UINT32_MAX) stack_send(sid);
    out_str("A ");
    out_dec((uint64_t)me->tid);
    out_c(' ');
    out_hex(addr);
    out_c(' ');
    out_dec(size);
    out_c(' ');
    out_dec(sid == UINT32_MAX ? 0 : sid);
    out_c('\n');
}

static __attribute__((noinline)) void send_free(struct thread_state *me, uint64_t addr)
{
    out_str("F ");
    out_dec((uint64_t)me->tid);
    out_c(' ');
    out_hex(addr);
    out_c('\n');
}

/* Under the lock. */
static inline __attribute__((always_inline)) void record_alloc(struct thread_state *me, void *p, size_t size, uint32_t sid)
{
    uint64_t addr = (uint64_t)p;
    if (UNLIKELY(g_all_events)) {
        send_alloc(me, addr, size, sid);
        return;
    }
    if (UNLIKELY((g_nblocks + 1) * 2 > g_blocks_cap) && !blocks_grow()) return;
    uint64_t at = block_slot(addr);
    if (g_blocks[at].addr) { /* the model never saw it freed: keep the newer one */
        if (g_blocks[at].tid & UNSENT) {
            g_unsent--;
            g_n_allocs--;
            g_n_bytes -= g_blocks[at].size;
            tally(g_blocks[at].sid, -1, 0, -(int64_t)g_blocks[at].size);
        }
        g_nblocks--;
    }
    g_blocks[at] = (struct block){addr, size, g_seq++, sid, (uint32_t)me->tid | UNSENT};
    g_nblocks++;
    g_unsent++;
    g_n_allocs++;
    g_n_bytes += size;
    tally(sid, 1, 0, (int64_t)size);
    if (g_test_running) g_test_live++;
}

/* Under the lock; p is not NULL. */
static inline __attribute__((always_inline)) void record_free(struct thread_state *me, void *p)
{
    uint64_t addr = (uint64_t)p;
    if (!g_all_events && g_blocks) {
        uint64_t at = block_slot(addr);
        struct block *b = &g_blocks[at];
        if (b->addr) {
            if (g_test_running && b->seq >= g_test_first_seq) g_test_live--;
            if (b->tid & UNSENT) {
                g_unsent--;
                g_n_frees++;
                tally(b->sid, 0, 1, 0);
                block_delete(at);
                return;
            }
            block_delete(at);
        }
    }
    send_free(me, addr);
}

/* ---------------------------------------------------------------------------------------------
 * Start-up: configuration from the environment, found through the initial stack (this may run
 * inside ld.so's first malloc, before libc has set `environ`).
 */

static void init_core(void);

static int ready(void)
{
    int s = g_state;
    if (LIKELY(s == ON)) return 1;
    if (s == OFF) {
        int expected = OFF;
        if (__atomic_compare_exchange_n(&g_state, &expected, STARTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            init_core();
            return g_state == ON;
        }
    }
    while (g_state == STARTING) sys3(SYS_sched_yield, 0, 0, 0);
    return g_state == ON;
}

static const char *env_value(char **envp, const char *name)
{
    size_t n = x_strlen(name);
    for (char **e = envp; *e; e++)
        if (starts_with(*e, name) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* Removes NAME=... from the environment block, as unsetenv would. */
static void env_remove(char **envp, const char *name)
{
    size_t n = x_strlen(name);
    char **dst = envp;
    for (char **e = envp; *e; e++)
        if (!(starts_with(*e, name) && (*e)[n] == '=')) *dst++ = *e;
    *dst = NULL;
}

static int env_int(const char *s)
{
    int v = 0;
    while (s && *s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return v;
}

static void init_core(void)
{
    long *start = (long *)__libc_stack_end;
    char **envp = start ? (char **)(start + 1) + start[0] + 1 : NULL;
    const char *fd_text = envp ? env_value(envp, "HEAPSPEC_PRELOAD_FD") : NULL;
    const char *dir = envp ? env_value(envp, "HEAPSPEC_PRELOAD_DIR") : NULL;
    const char *self = envp ? env_value(envp, "HEAPSPEC_PRELOAD_LIB") : NULL;
    const char *events = envp ? env_value(envp, "HEAPSPEC_PRELOAD_EVENTS") : NULL;
    const char *by_stack = envp ? env_value(envp, "HEAPSPEC_PRELOAD_BY_STACK") : NULL;
    const char *tests = envp ? env_value(envp, "HEAPSPEC_PRELOAD_TESTS") : NULL;
    if (tests && x_strlen(tests) < sizeof g_tests_file) memcpy(g_tests_file, tests, x_strlen(tests) + 1);
    if (!fd_text || !dir) {
        g_state = DISABLED;
        return;
    }
    g_all_events = events && x_strcmp(events, "all") == 0;
    g_by_stack = by_stack && x_strcmp(by_stack, "1") == 0 && !g_all_events;
    size_t dl = x_strlen(dir);
    if (dl >= sizeof g_dir) dl = sizeof g_dir - 1;
    memcpy(g_dir, dir, dl);
    g_dir[dl] = 0;
    int fd = env_int(fd_text);
    g_fd = (int)sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 900);
    if (g_fd < 0) {
        g_state = DISABLED;
        return;
    }
    x_close(fd); /* the program sees the descriptors it would have without heapspec */
    /* children run unobserved, as under gdb and memcheck: drop what loads and configures us */
    const char *preload = env_value(envp, "LD_PRELOAD");
    if (preload && self) {
        size_t sl = x_strlen(self);
        char *s = (char *)preload;
        if (starts_with(s, self) && (s[sl] == 0 || s[sl] == ' ' || s[sl] == ':')) {
            if (s[sl] == 0) env_remove(envp, "LD_PRELOAD");
            else memmove(s, s + sl + 1, x_strlen(s + sl + 1) + 1);
        }
    }
    env_remove(envp, "HEAPSPEC_PRELOAD_FD");
    env_remove(envp, "HEAPSPEC_PRELOAD_DIR");
    env_remove(envp, "HEAPSPEC_PRELOAD_LIB");
    env_remove(envp, "HEAPSPEC_PRELOAD_EVENTS");
    env_remove(envp, "HEAPSPEC_PRELOAD_BY_STACK");
    env_remove(envp, "HEAPSPEC_PRELOAD_TESTS");
    g_pid = x_getpid();
    g_states = region(STATES_MAX * sizeof(struct thread_state));
    if (!g_states || pthread_key_create(&g_key, NULL) != 0) {
        g_state = DISABLED;
        return;
    }
    g_first = new_state();
    g_out = region(OUT_SIZE);
    g_stacks = region((size_t)STACKS_MAX * sizeof(struct stack));
    g_rows = region((size_t)ROWS_MAX * sizeof(struct row));
    g_cache = region(CACHE_SIZE * sizeof(struct cached));
    if (!g_out || !g_stacks || !g_rows || !g_cache || (!g_all_events && !blocks_grow())) {
        g_state = DISABLED;
        return;
    }
    if (g_by_stack) {
        g_dirty = region((size_t)STACKS_MAX * sizeof(uint32_t));
        g_empty_sid = g_dirty ? stack_intern(NULL, 0) : UINT32_MAX;
        if (!g_dirty || g_empty_sid == UINT32_MAX) {
            g_state = DISABLED;
            return;
        }
    }
    /* the main thread's stack: the mapping holding the initial stack pointer */
    if (read_maps()) {
        const char *p = g_maps;
        struct maps_line m;
        while (next_maps_line(&p, &m))
            if (m.start <= (uintptr_t)start && (uintptr_t)start < m.end) g_main_hi = m.end;
    }
    out_str("H 1 preload\n");
    g_state = ON;
}

/* ---------------------------------------------------------------------------------------------
 * The allocator entry points. Each public name is a stub that saves the caller's callee-saved
 * registers and its stack pointer, then calls the C function with them.
 */

#define ENTRY_STUB(name, impl, regs_arg)                                                      \
    __asm__(".text\n"                                                                         \
            ".globl " #name "\n"                                                              \
            ".type " #name ", @function\n"                                                    \
            ".p2align 4\n" #name ":\n"                                                        \
            ".cfi_startproc\n"                                                                \
            "sub $56, %rsp\n"                                                                 \
            ".cfi_adjust_cfa_offset 56\n"                                                     \
            "mov %rbx, 0(%rsp)\n"                                                             \
            "mov %rbp, 8(%rsp)\n"                                                             \
            "mov %r12, 16(%rsp)\n"                                                            \
            "mov %r13, 24(%rsp)\n"                                                            \
            "mov %r14, 32(%rsp)\n"                                                            \
            "mov %r15, 40(%rsp)\n"                                                            \
            "lea 56(%rsp), %rax\n"                                                            \
            "mov %rax, 48(%rsp)\n"                                                            \
            "mov %rsp, " regs_arg "\n"                                                        \
            "call " #impl "\n"                                                                \
            "add $56, %rsp\n"                                                                 \
            ".cfi_adjust_cfa_offset -56\n"                                                    \
            "ret\n"                                                                           \
            ".cfi_endproc\n"                                                                  \
            ".size " #name ", .-" #name "\n")

static void timeout_now(void);
static volatile int g_timeout_pending; /* a timeout came while a thread was inside heapspec */

/* The calling thread's state when its allocations are the program's, else NULL. */
static inline struct thread_state *observing(void)
{
    if (UNLIKELY(g_state != ON) && !ready()) return NULL;
    struct thread_state *me = self_state();
    return me->busy ? NULL : me;
}

/* A fresh block holds whatever its chunk held before: a freed block's old contents, glibc's
 * free-list links. memcheck treats a new block as undefined until the program writes it, and its
 * leak scan skips undefined words, so a stale pointer left in a reused chunk never keeps a lost
 * block reachable there. Zero is a word no scan reads as a pointer: the block's bytes are zeroed
 * before the program sees them (reading them first is undefined behaviour, so no correct program
 * can tell). An mmapped chunk (bit 1 of the size word before it) is fresh pages, zero already.
 * Runs inside an allocator call: calls nothing that allocates. */
static inline __attribute__((always_inline)) void scrub(void *p, size_t n)
{
    if (!(((const uint64_t *)p)[-1] & 2)) memset(p, 0, n);
}

static inline __attribute__((always_inline)) void note_alloc(struct thread_state *me, void *p, size_t size, const struct entry_regs *r)
{
    me->busy = 1;
    int locked = hook_lock();
    uint32_t sid = stack_of(me, r);
    record_alloc(me, p, size, sid);
    hook_unlock(locked);
    me->busy = 0;
    if (UNLIKELY(g_timeout_pending)) timeout_now();
}

HIDDEN __attribute__((used)) void *heapspec_malloc(size_t n, const struct entry_regs *r)
{
    void *p = __libc_malloc(n);
    struct thread_state *me;
    if (p && (me = observing())) {
        scrub(p, n);
        note_alloc(me, p, n, r);
    }
    return p;
}

/* calloc's block is zero by contract: nothing to scrub. */
HIDDEN __attribute__((used)) void *heapspec_calloc(size_t n, size_t m, const struct entry_regs *r)
{
    void *p = __libc_calloc(n, m);
    struct thread_state *me;
    if (p && (me = observing())) note_alloc(me, p, n * m, r);
    return p;
}

HIDDEN __attribute__((used)) void *heapspec_memalign(size_t align, size_t n, const struct entry_regs *r)
{
    void *p = __libc_memalign(align, n);
    struct thread_state *me;
    if (p && (me = observing())) {
        scrub(p, n);
        note_alloc(me, p, n, r);
    }
    return p;
}

HIDDEN __attribute__((used)) void *heapspec_valloc(size_t n, const struct entry_regs *r)
{
    void *p = __libc_valloc(n);
    struct thread_state *me;
    if (p && (me = observing())) {
        scrub(p, n);
        note_alloc(me, p, n, r);
    }
    return p;
}

/* memcheck 3.19 aborts a program that calls pvalloc ("Program aborting because of call to
 * pvalloc"); heapspec counts the block as the allocation it is, as the GDB backend does. */
HIDDEN __attribute__((used)) void *heapspec_pvalloc(size_t n, const struct entry_regs *r)
{
    void *p = __libc_pvalloc(n);
    struct thread_state *me;
    if (p && (me = observing())) {
        scrub(p, n);
        note_alloc(me, p, n, r);
    }
    return p;
}

HIDDEN __attribute__((used)) int heapspec_posix_memalign(void **out, size_t align, size_t n, const struct entry_regs *r)
{
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    struct thread_state *me = observing();
    if (me) {
        scrub(p, n);
        note_alloc(me, p, n, r);
    }
    return 0;
}

/* The size the program asked for of a block the model knows, else what the chunk holds. Under the
 * lock (or single-threaded). */
static size_t block_size(void *p)
{
    if (!g_all_events && g_blocks) {
        struct block *b = &g_blocks[block_slot((uint64_t)p)];
        if (b->addr == (uint64_t)p) return b->size;
    }
    return malloc_usable_size(p);
}

/* realloc always moves the block, as memcheck's does: a new block, the old contents copied, the
 * old block freed. glibc often grows a block in place instead; a program that keeps the old
 * address then still points into the live block, and its scan would call reachable what memcheck
 * calls lost (and a use after realloc would go unnoticed). The new block's tail is undefined, as
 * under memcheck: zero (see scrub). */
HIDDEN __attribute__((used)) void *heapspec_realloc(void *old, size_t n, const struct entry_regs *r)
{
    struct thread_state *me = observing();
    if (!me) return __libc_realloc(old, n);
    if (old && n == 0) {
        /* glibc frees the block and returns NULL */
        free(old);
        return NULL;
    }
    void *p = __libc_malloc(n);
    if (!p) return NULL; /* a failed realloc leaves the old block alone; errno is malloc's */
    me->busy = 1;
    int locked = hook_lock();
    size_t keep = old ? block_size(old) : 0;
    hook_unlock(locked);
    if (keep > n) keep = n;
    if (keep) memcpy(p, old, keep);
    scrub((char *)p + keep, n - keep);
    locked = hook_lock();
    uint32_t sid = stack_of(me, r);
    if (g_all_events) {
        if (sid != UINT32_MAX) stack_send(sid);
        out_str("R ");
        out_dec((uint64_t)me->tid);
        out_c(' ');
        out_hex((uint64_t)old);
        out_c(' ');
        out_hex((uint64_t)p);
        out_c(' ');
        out_dec(n);
        out_c(' ');
        out_dec(sid == UINT32_MAX ? 0 : sid);
        out_c('\n');
    } else {
        /* the model's reallocate: a free of the old block and an allocation of the new */
        if (old) record_free(me, old);
        record_alloc(me, p, n, sid);
    }
    hook_unlock(locked);
    me->busy = 0;
    if (old) __libc_free(old);
    if (UNLIKELY(g_timeout_pending)) timeout_now();
    return p;
}

HIDDEN __attribute__((used)) void *heapspec_reallocarray(void *old, size_t n, size_t m, const struct entry_regs *r)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, m, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return heapspec_realloc(old, bytes, r);
}

ENTRY_STUB(malloc, heapspec_malloc, "%rsi");
ENTRY_STUB(calloc, heapspec_calloc, "%rdx");
ENTRY_STUB(realloc, heapspec_realloc, "%rdx");
ENTRY_STUB(reallocarray, heapspec_reallocarray, "%rcx");
ENTRY_STUB(memalign, heapspec_memalign, "%rdx");
ENTRY_STUB(aligned_alloc, heapspec_memalign, "%rdx");
ENTRY_STUB(valloc, heapspec_valloc, "%rsi");
ENTRY_STUB(pvalloc, heapspec_pvalloc, "%rsi");
ENTRY_STUB(posix_memalign, heapspec_posix_memalign, "%rcx");

EXPORT void free(void *p)
{
    struct thread_state *me;
    if (p && (me = observing())) {
        me->busy = 1;
        int locked = hook_lock();
        record_free(me, p);
        hook_unlock(locked);
        me->busy = 0;
        if (UNLIKELY(g_timeout_pending)) timeout_now();
    }
    __libc_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * Memory images: every writable mapping but ours, every thread's registers, like the GDB
 * script's dump(). Other threads are stopped by a signal while the bytes are copied.
 */

/* Stops other threads for an image, and, sent by the host with a request file in place, asks for
 * the image of a timed-out program (src/capture/preload/backend.ts sends the same number). */
#define STOP_SIGNAL 62
#define MAX_THREADS 4096

struct stopped {
    int tid;
    int arrived;
    uint64_t sp;
    uint64_t regs[15]; /* rax rbx rcx rdx rsi rdi rbp r8 .. r15 */
};
static struct stopped *g_stopped;  /* MAX_THREADS, in our own memory */
static int g_nstopped;
static int g_arrived;
static int g_holding;              /* 1 while threads must stay stopped */

static int timeout_requested(void)
{
    char path[1100];
    size_t dl = x_strlen(g_dir);
    memcpy(path, g_dir, dl);
    memcpy(path + dl, "/stop-requested", 16);
    return sys3(SYS_faccessat, AT_FDCWD, (long)path, F_OK) == 0;
}

static struct sigaction g_stop_old;  /* the program's own disposition of STOP_SIGNAL */
static int g_stop_installed;
static void timeout_dump(uint64_t sp);

/* Stays installed once used: a thread that blocks the signal takes it when it unblocks, and the
 * default action of a real-time signal would end the program. */
static void stop_handler(int sig, siginfo_t *si, void *context)
{
    int saved_errno = errno;
    if (__atomic_load_n(&g_holding, __ATOMIC_ACQUIRE)) {
        int me = x_gettid();
        ucontext_t *uc = context;
        for (int i = 0; i < g_nstopped; i++) {
            if (g_stopped[i].tid != me) continue;
            const greg_t *g = uc->uc_mcontext.gregs;
            static const int order[15] = {REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RBP, REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
            for (int k = 0; k < 15; k++) g_stopped[i].regs[k] = (uint64_t)g[order[k]];
            g_stopped[i].sp = (uint64_t)g[REG_RSP];
            __atomic_store_n(&g_stopped[i].arrived, 1, __ATOMIC_RELEASE);
            __atomic_add_fetch(&g_arrived, 1, __ATOMIC_ACQ_REL);
            futex_wake(&g_arrived, 1);
            while (__atomic_load_n(&g_holding, __ATOMIC_ACQUIRE)) futex_wait(&g_holding, 1, NULL);
            errno = saved_errno;
            return;
        }
    }
    if (si && si->si_code == SI_USER && si->si_pid != g_pid && timeout_requested()) {
        /* the host's timeout: the image as it is now, then the end of the program */
        struct thread_state *me = self_state();
        if (me->busy) g_timeout_pending = 1; /* inside heapspec: it takes the image on its way out */
        else timeout_dump((uint64_t)((ucontext_t *)context)->uc_mcontext.gregs[REG_RSP]);
        errno = saved_errno;
        return;
    }
    errno = saved_errno;
    /* not ours: the program's own use of the signal */
    if (g_stop_old.sa_flags & SA_SIGINFO) {
        if (g_stop_old.sa_sigaction) g_stop_old.sa_sigaction(sig, si, context);
    } else if (g_stop_old.sa_handler != SIG_DFL && g_stop_old.sa_handler != SIG_IGN) {
        g_stop_old.sa_handler(sig);
    }
}

/* For a thread that cannot take the signal (it blocks it): its stack pointer from the kernel,
 * when it sleeps in a system call. */
/* Reads /proc/self/task/TID/NAME into buf (NUL-terminated); its length, or 0. */
static long read_task_file(int tid, const char *name, char *buf, size_t cap)
{
    char path[64] = "/proc/self/task/";
    char num[16];
    int k = 15;
    num[k] = 0;
    int t = tid;
    do {
        num[--k] = (char)('0' + t % 10);
        t /= 10;
    } while (t);
    size_t pl = x_strlen(path);
    memcpy(path + pl, num + k, (size_t)(15 - k));
    path[pl + (15 - k)] = '/';
    memcpy(path + pl + (15 - k) + 1, name, x_strlen(name) + 1);
    int fd = x_open(path, O_RDONLY, 0);
    if (fd < 0) return 0;
    long n = x_read(fd, buf, cap - 1);
    x_close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return n;
}

static uint64_t blocked_thread_sp(int tid)
{
    char buf[256];
    if (!read_task_file(tid, "syscall", buf, sizeof buf)) return 0;
    /* "nr arg1 .. arg6 sp pc": the 8th field */
    const char *p = buf;
    for (int field = 0; field < 7; field++) {
        while (*p && *p != ' ') p++;
        while (*p == ' ') p++;
    }
    if (p[0] != '0' || p[1] != 'x') return 0;
    p += 2;
    return parse_hex(&p);
}

/* Whether thread `tid` blocks STOP_SIGNAL (its SigBlk mask): such a thread never answers it, and
 * waiting for it would cost the whole deadline at every image (Node's and libuv's worker threads
 * block every signal). */
static int blocks_stop_signal(int tid)
{
    char buf[2048];
    if (!read_task_file(tid, "status", buf, sizeof buf)) return 0;
    const char *p = x_strstr(buf, "SigBlk:");
    if (!p) return 0;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t mask = parse_hex(&p);
    return (mask >> (STOP_SIGNAL - 1)) & 1;
}

static void install_stop_handler(void)
{
    if (g_stop_installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(STOP_SIGNAL, &sa, &g_stop_old);
    g_stop_installed = 1;
}

static void stop_world(void)
{
    g_nstopped = 0;
    g_arrived = 0;
    int me = tid();
    int dir = x_open("/proc/self/task", O_RDONLY | O_DIRECTORY, 0);
    if (dir < 0) return;
    char buf[4096];
    for (;;) {
        long n = sys3(SYS_getdents64, dir, (long)buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int t = env_int(d->d_name);
            if (t <= 0 || t == me || g_nstopped >= MAX_THREADS) continue;
            g_stopped[g_nstopped++] = (struct stopped){t, 0, 0, {0}};
        }
    }
    x_close(dir);
    if (!g_nstopped) return;
    install_stop_handler();
    __atomic_store_n(&g_holding, 1, __ATOMIC_RELEASE);
    int sent = 0;
    for (int i = 0; i < g_nstopped; i++) {
        if (blocks_stop_signal(g_stopped[i].tid)) continue; /* never comes: read from the kernel below */
        if (x_tgkill(g_pid, g_stopped[i].tid, STOP_SIGNAL) == 0) sent++;
        else g_stopped[i].tid = -g_stopped[i].tid; /* gone */
    }
    /* a thread that blocks the signal never comes: wait a while, then take what the kernel says */
    uint64_t deadline = now_ns() + 500000000ull;
    for (;;) {
        int a = __atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE);
        if (a >= sent) break;
        uint64_t t = now_ns();
        if (t >= deadline) break;
        struct timespec wait = {0, 10000000};
        futex_wait(&g_arrived, a, &wait);
    }
    for (int i = 0; i < g_nstopped; i++)
        if (g_stopped[i].tid > 0 && !__atomic_load_n(&g_stopped[i].arrived, __ATOMIC_ACQUIRE)) g_stopped[i].sp = blocked_thread_sp(g_stopped[i].tid);
}

static void resume_world(void)
{
    if (!g_nstopped) return;
    __atomic_store_n(&g_holding, 0, __ATOMIC_RELEASE);
    futex_wake(&g_holding, 1 << 30);
}

static int g_image_count;

/* Writes [lo, hi) of our own memory to fd; 0 when some of it cannot be read. */
static int write_memory(int fd, uintptr_t lo, uintptr_t hi)
{
    while (lo < hi) {
        size_t chunk = hi - lo > (1u << 30) ? (1u << 30) : hi - lo;
        long n = x_write(fd, (const void *)lo, chunk);
        if (n == -EINTR) continue;
        if (n <= 0) return 0;
        lo += (uintptr_t)n;
    }
    return 1;
}

static void emit_mapping(int fd, uint64_t *offset, uintptr_t lo, uintptr_t hi, const char *perms, int guarded, const char *name, size_t name_len)
{
    if (lo >= hi) return;
    if (!write_memory(fd, lo, hi)) {
        /* unreadable (a file mapping past its end): leave it out, as the GDB script does */
        sys3(SYS_ftruncate, fd, (long)*offset, 0);
        sys3(SYS_lseek, fd, (long)*offset, SEEK_SET);
        return;
    }
    out_str("W ");
    out_hex(lo);
    out_c(' ');
    out_hex(hi);
    out_c(' ');
    out_str(perms);
    if (guarded) out_c('g');
    out_c(' ');
    out_dec(*offset);
    out_c(' ');
    out_bytes(name, name_len);
    out_c('\n');
    *offset += hi - lo;
}

/* Splits [lo, hi) around our own memory and emits the rest. */
static void emit_outside_ours(int fd, uint64_t *offset, uintptr_t lo, uintptr_t hi, const char *perms, int guarded, const char *name, size_t name_len)
{
    for (int i = 0; i < g_nranges; i++) {
        uintptr_t a = g_ranges[i].lo, b = g_ranges[i].hi;
        if (b <= lo || a >= hi) continue;
        if (a > lo) emit_outside_ours(fd, offset, lo, a, perms, guarded, name, name_len);
        if (b < hi) emit_outside_ours(fd, offset, b, hi, perms, 0, name, name_len);
        return;
    }
    emit_mapping(fd, offset, lo, hi, perms, guarded, name, name_len);
}

static void emit_thread(int t, uint64_t sp, const uint64_t *regs)
{
    out_str("T ");
    out_dec((uint64_t)t);
    out_c(' ');
    out_hex(sp);
    for (int k = 0; k < 15; k++) {
        out_c(' ');
        out_hex(regs[k]);
    }
    out_c('\n');
}

/* The image. `point`: test, exit, crash, timeout. The current thread's registers are `regs` (15, in
 * T order) with stack pointer `sp`; `at_call`, when not NULL: it stands at a function's entry, and
 * these caller-saved registers are still live there (the rest are dead by the ABI). Under the lock. */
static void dump(const char *point, uint64_t sp, const uint64_t *regs, const char *at_call)
{
    char path[1200];
    size_t dl = x_strlen(g_dir);
    memcpy(path, g_dir, dl);
    const char *tail = "/image-";
    memcpy(path + dl, tail, 7);
    size_t at = dl + 7;
    size_t pl = x_strlen(point);
    memcpy(path + at, point, pl);
    at += pl;
    path[at++] = '-';
    char num[24];
    int k = 23;
    num[k] = 0;
    int c = g_image_count++;
    do {
        num[--k] = (char)('0' + c % 10);
        c /= 10;
    } while (c);
    memcpy(path + at, num + k, (size_t)(23 - k));
    at += (size_t)(23 - k);
    memcpy(path + at, ".bin", 5);
    int fd = x_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        out_failure("cannot write a memory image", path);
        return;
    }
    out_str("D ");
    out_str(point);
    out_c(' ');
    out_str(path);
    out_c('\n');
    stop_world();
    uint64_t offset = 0;
    if (read_maps()) {
        const char *p = g_maps;
        struct maps_line m;
        uintptr_t previous_end = 0;
        char previous_perms[5] = "";
        while (next_maps_line(&p, &m)) {
            int guarded = previous_end == m.start && starts_with(previous_perms, "---");
            previous_end = m.end;
            memcpy(previous_perms, m.perms, 5);
            if (m.perms[0] != 'r' || m.perms[1] != 'w') continue;
            if ((m.name_len == 6 && memcmp(m.name, "[vvar]", 6) == 0) || (m.name_len == 10 && memcmp(m.name, "[vsyscall]", 10) == 0)) continue;
            emit_outside_ours(fd, &offset, m.start, m.end, m.perms, guarded, m.name, m.name_len);
        }
    }
    x_close(fd);
    emit_thread(tid(), sp, regs);
    for (int i = 0; i < g_nstopped; i++) {
        struct stopped *s = &g_stopped[i];
        if (s->tid <= 0 || (!s->arrived && !s->sp)) continue;
        emit_thread(s->tid, s->sp, s->regs);
    }
    if (at_call) {
        out_str("C ");
        out_dec((uint64_t)tid());
        if (*at_call) {
            out_c(' ');
            out_str(at_call);
        }
        out_c('\n');
    }
    resume_world();
    out_str("d\n");
}

/* ---------------------------------------------------------------------------------------------
 * Loaded objects for the host's symbolizer (M lines), from the dynamic linker's own list.
 */

#define MODS_SIZE (1 << 18)
static char *g_mods;   /* the M lines, gathered outside the lock (dl_iterate_phdr takes ld.so's) */
static size_t g_modsn;

static void mods_str(const char *s)
{
    size_t n = x_strlen(s);
    if (g_modsn + n < MODS_SIZE) {
        memcpy(g_mods + g_modsn, s, n);
        g_modsn += n;
    }
}

static void mods_hex(uint64_t v)
{
    char buf[18];
    int i = 17;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    mods_str(buf + i);
}

static int module_line(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        mods_str("M ");
        mods_hex(info->dlpi_addr + ph->p_vaddr);
        mods_str(" ");
        mods_hex(info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        mods_str(" ");
        mods_hex(info->dlpi_addr);
        mods_str(" ");
        mods_str(info->dlpi_name ? info->dlpi_name : "");
        mods_str("\n");
    }
    return 0;
}

static void gather_modules(void)
{
    if (!g_mods) g_mods = region(MODS_SIZE);
    if (!g_mods) return;
    g_modsn = 0;
    dl_iterate_phdr(module_line, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Patching functions inside the program: heapspec's markers and libc's _exit. The entry gets an
 * absolute jump (14 bytes) to a stub of ours, or a 5-byte relative jump to a nearby trampoline
 * where the function is shorter; never past the next symbol.
 */

static int write_code(uintptr_t at, const uint8_t *code, size_t n)
{
    uintptr_t page = at & ~(uintptr_t)4095;
    size_t len = ((at + n + 4095) & ~(uintptr_t)4095) - page;
    if (x_mprotect((void *)page, len, PROT_READ | PROT_WRITE | PROT_EXEC) == 0) {
        memcpy((void *)at, code, n);
        x_mprotect((void *)page, len, PROT_READ | PROT_EXEC);
        __builtin___clear_cache((char *)at, (char *)at + n);
        return 1;
    }
    /* W^X systems: /proc/self/mem writes through the page protection */
    int fd = x_open("/proc/self/mem", O_RDWR, 0);
    if (fd < 0) return 0;
    long r = sys6(SYS_pwrite64, fd, (long)code, (long)n, (long)at, 0, 0);
    x_close(fd);
    return r == (long)n;
}

static uint8_t *g_tramp;        /* 5-byte jumps land here: one 16-byte absolute jump each */
static size_t g_tramp_used;
static uintptr_t g_tramp_near;

static void abs_jump(uint8_t *code, uintptr_t target)
{
    code[0] = 0xff;
    code[1] = 0x25;
    memset(code + 2, 0, 4);
    memcpy(code + 6, &target, 8);
}

static int patch_entry(uintptr_t at, size_t room, uintptr_t target)
{
    uint8_t code[16];
    if (room >= 14) {
        abs_jump(code, target);
        return write_code(at, code, 14);
    }
    if (room < 5) return 0;
    if (!g_tramp || (at > g_tramp_near ? at - g_tramp_near : g_tramp_near - at) > (1ull << 30) || g_tramp_used + 16 > 4096) {
        /* a page within +-2 GiB of the code */
        g_tramp = NULL;
        for (uintptr_t delta = 1u << 24; delta < (1ull << 31) && !g_tramp; delta += 1u << 24) {
            uintptr_t hint = ((at > delta ? at - delta : 0) & ~(uintptr_t)4095);
            void *p = x_mmap((void *)hint, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p != MAP_FAILED) {
                g_tramp = p;
                g_tramp_near = (uintptr_t)p;
                g_tramp_used = 0;
            }
        }
        if (!g_tramp) return 0;
    }
    uint8_t *t = g_tramp + g_tramp_used;
    abs_jump(code, target);
    memcpy(t, code, 14);
    g_tramp_used += 16;
    int64_t rel = (int64_t)((uintptr_t)t - (at + 5));
    if (rel < INT32_MIN || rel > INT32_MAX) return 0;
    int32_t r32 = (int32_t)rel;
    code[0] = 0xe9;
    memcpy(code + 1, &r32, 4);
    return write_code(at, code, 5);
}

/* Symbols of an ELF file on disk: calls `found` for each defined function named in `names`, with
 * its address (relocated by `bias`) and the room up to the next symbol in its section. */
struct elf_want {
    const char *names[4];
    uintptr_t addr[4];
    size_t room[4];
};

static void elf_symbols(const char *path, uintptr_t bias, struct elf_want *want)
{
    int fd = x_open(path, O_RDONLY, 0);
    if (fd < 0) return;
    struct stat st;
    if (sys3(SYS_fstat, fd, (long)&st, 0) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        x_close(fd);
        return;
    }
    const uint8_t *file = x_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    x_close(fd);
    if (file == MAP_FAILED) return;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff == 0 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > (uint64_t)st.st_size) {
        x_munmap((void *)file, (size_t)st.st_size);
        return;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(file + eh->e_shoff);
    /* the full symbol table when there is one, else the dynamic one */
    for (int pass = 0; pass < 2; pass++) {
        uint32_t type = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        int done = 0;
        for (int s = 0; s < eh->e_shnum; s++) {
            if (sh[s].sh_type != type || sh[s].sh_link >= eh->e_shnum) continue;
            const Elf64_Sym *sym = (const Elf64_Sym *)(file + sh[s].sh_offset);
            size_t count = sh[s].sh_size / sizeof(Elf64_Sym);
            const char *strtab = (const char *)(file + sh[sh[s].sh_link].sh_offset);
            if (sh[s].sh_offset + sh[s].sh_size > (uint64_t)st.st_size) continue;
            for (size_t i = 0; i < count; i++) {
                if (sym[i].st_shndx == SHN_UNDEF || sym[i].st_shndx >= SHN_LORESERVE || ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC) continue;
                const char *name = strtab + sym[i].st_name;
                for (int w = 0; w < 4 && want->names[w]; w++) {
                    if (want->addr[w] || x_strcmp(name, want->names[w]) != 0) continue;
                    const Elf64_Shdr *sec = &sh[sym[i].st_shndx];
                    uint64_t next = sec->sh_addr + sec->sh_size;
                    for (size_t j = 0; j < count; j++) {
                        if (sym[j].st_shndx != sym[i].st_shndx || sym[j].st_value <= sym[i].st_value) continue;
                        int t = ELF64_ST_TYPE(sym[j].st_info);
                        if ((t == STT_FUNC || t == STT_NOTYPE || t == STT_OBJECT) && sym[j].st_value < next) next = sym[j].st_value;
                    }
                    want->addr[w] = bias + sym[i].st_value;
                    /* the dynamic table lacks local functions, which may follow: only the
                     * function's own bytes are sure to be its own */
                    want->room[w] = type == SHT_SYMTAB ? next - sym[i].st_value : sym[i].st_size;
                    done = 1;
                }
            }
        }
        if (done) break;
    }
    x_munmap((void *)file, (size_t)st.st_size);
}

/* ---- test-case markers ---- */

extern void heapspec_marker_begin_entry(void) HIDDEN;
extern void heapspec_marker_end_entry(void) HIDDEN;
extern void heapspec_exit_entry(void) HIDDEN;

#define MARKER_STUB(name, impl, kind)                                                         \
    __asm__(".text\n"                                                                         \
            ".type " #name ", @function\n"                                                    \
            ".p2align 4\n" #name ":\n"                                                        \
            ".cfi_startproc\n"                                                                \
            "sub $56, %rsp\n"                                                                 \
            ".cfi_adjust_cfa_offset 56\n"                                                     \
            "mov %rbx, 0(%rsp)\n"                                                             \
            "mov %rbp, 8(%rsp)\n"                                                             \
            "mov %r12, 16(%rsp)\n"                                                            \
            "mov %r13, 24(%rsp)\n"                                                            \
            "mov %r14, 32(%rsp)\n"                                                            \
            "mov %r15, 40(%rsp)\n"                                                            \
            "lea 56(%rsp), %rax\n"                                                            \
            "mov %rax, 48(%rsp)\n"                                                            \
            "mov %rsp, %rsi\n"                                                                \
            "mov $" #kind ", %edx\n"                                                          \
            "call " #impl "\n"                                                                \
            "add $56, %rsp\n"                                                                 \
            ".cfi_adjust_cfa_offset -56\n"                                                    \
            "ret\n"                                                                           \
            ".cfi_endproc\n"                                                                  \
            ".size " #name ", .-" #name "\n")

static void out_name(const char *name)
{
    if (!name) return;
    for (int i = 0; i < 512 && name[i]; i++) out_c(name[i] == '\n' || name[i] == '\r' ? ' ' : name[i]);
}

/* A test case begins or ends (a marker, from C or from JavaScript): the model gets every block
 * allocated before it, then the B or E line, and at an end with blocks of the test still live the
 * memory image of this moment, this thread's stack scanned from `sp` up, its registers `regs`
 * (`live`: the caller-saved ones still live, as the C line names them). An end with none of the test's blocks live needs no image: an
 * `e` line says so. */
static void test_boundary(struct thread_state *me, const char *name, int end, uint64_t sp, const uint64_t *regs, const char *live)
{
    me->busy = 1;
    lock();
    send_pending();
    int image = end && (g_all_events || g_test_live != 0);
    out_str(end ? (image ? "E " : "e ") : "B ");
    out_dec((uint64_t)me->tid);
    out_c(' ');
    out_name(name);
    out_c('\n');
    if (image) dump("test", sp, regs, live);
    g_test_running = !end;
    g_test_first_seq = g_seq;
    g_test_live = 0;
    out_flush();
    unlock();
    me->busy = 0;
}

HIDDEN __attribute__((used)) void heapspec_marker(const char *name, const struct entry_regs *r, int end)
{
    struct thread_state *me = observing();
    if (!me) return;
    /* the thread stands at the call: what a call preserves is live, and the argument */
    const uint64_t regs[15] = {0, r->rbx, 0, 0, 0, (uint64_t)(uintptr_t)name, r->rbp, 0, 0, 0, 0, r->r12, r->r13, r->r14, r->r15};
    test_boundary(me, name, end, r->sp, regs, "rdi");
}

MARKER_STUB(heapspec_marker_begin_entry, heapspec_marker, 0);
MARKER_STUB(heapspec_marker_end_entry, heapspec_marker, 1);

/* ---- test-case markers from JavaScript (heapspec/markers): an access() of a path no file has ---- */

#define PATH_MARKER "/proc/self/heapspec/"

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The top of the stack mapping holding sp, less a word (the GDB script's stack_top). */
static uint64_t stack_top(uint64_t sp)
{
    if (!read_maps()) return sp;
    const char *p = g_maps;
    struct maps_line m;
    while (next_maps_line(&p, &m))
        if (m.start <= sp && sp < m.end) return m.end - 8;
    return sp;
}

static void path_marker(const char *path, const struct entry_regs *r)
{
    const char *event = path + sizeof PATH_MARKER - 1;
    int end;
    if (starts_with(event, "test-begin/")) end = 0;
    else if (starts_with(event, "test-end/")) end = 1;
    else return;
    const char *encoded = event + (end ? 9 : 11);
    char name[1024];
    size_t n = 0;
    for (const char *c = encoded; *c && n + 1 < sizeof name; c++) {
        if (c[0] == '%' && hex_digit(c[1]) >= 0 && hex_digit(c[2]) >= 0) {
            name[n++] = (char)(hex_digit(c[1]) * 16 + hex_digit(c[2]));
            c += 2;
        } else {
            name[n++] = *c;
        }
    }
    name[n] = 0;
    struct thread_state *me = observing();
    if (!me) return;
    /* called from JavaScript: no frame of the program's own code is on this stack, and the
     * engine's frames reuse slots where native calls left stale pointers (memcheck sees those as
     * undefined), so this thread's stack is no root here, as under the GDB backend */
    const uint64_t regs[15] = {0, r->rbx, 0, 0, 0, (uint64_t)(uintptr_t)path, r->rbp, 0, 0, 0, 0, r->r12, r->r13, r->r14, r->r15};
    test_boundary(me, name, end, stack_top(r->sp), regs, "rdi");
}

HIDDEN __attribute__((used)) int heapspec_access(const char *path, int mode, const struct entry_regs *r)
{
    if (path && g_state == ON && starts_with(path, PATH_MARKER)) path_marker(path, r);
    long ret = sys3(SYS_access, (long)path, mode, 0);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return 0;
}

ENTRY_STUB(access, heapspec_access, "%rdx");

#define MAX_PATCHED 64
static uintptr_t g_patched[MAX_PATCHED];
static int g_npatched;
static uintptr_t g_seen_objects[MAX_MODULES];
static int g_nseen;

static int patched(uintptr_t at)
{
    for (int i = 0; i < g_npatched; i++)
        if (g_patched[i] == at) return 1;
    return 0;
}

/* A function too short for a jump (a lone `ret` at the end of .text, at -O2; ld.so's
 * _dl_debug_state): an int3 at its entry, which the SIGTRAP handler turns into our call and the
 * function's return. */
enum { TRAP_BEGIN, TRAP_END, TRAP_LINK_MAP, TRAP_TEST };
#define MAX_TRAPS 4096
static struct {
    uintptr_t at;
    int kind;
} g_traps[MAX_TRAPS];
static int g_ntraps;

/* Objects were unloaded: only ld.so's trap is sure to be still in place. */
static void forget_traps(void)
{
    int n = 0;
    for (int i = 0; i < g_ntraps; i++)
        if (g_traps[i].kind == TRAP_LINK_MAP || g_traps[i].kind == TRAP_TEST) g_traps[n++] = g_traps[i];
    g_ntraps = n;
}

static void crash_handler(int sig, siginfo_t *si, void *context);
static void link_map_changed(void);

static int trap_entry(uintptr_t at, int kind)
{
    struct sigaction old;
    for (int i = 0; i < g_ntraps; i++)
        if (g_traps[i].at == at) return 1;
    if (g_ntraps >= MAX_TRAPS || sigaction(SIGTRAP, NULL, &old) != 0) return 0;
    if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == crash_handler)) {
        if (old.sa_handler != SIG_DFL) return 0; /* the program's own: leave it */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigfillset(&sa.sa_mask);
        if (sigaction(SIGTRAP, &sa, NULL) != 0) return 0;
    }
    g_traps[g_ntraps].at = at;
    g_traps[g_ntraps].kind = kind;
    g_ntraps++;
    const uint8_t int3 = 0xcc;
    return write_code(at, &int3, 1);
}

static void hook_markers_in(const struct link_map *l)
{
    uintptr_t key = l->l_addr ^ (uintptr_t)l;
    for (int i = 0; i < g_nseen; i++)
        if (g_seen_objects[i] == key) return;
    if (g_nseen < MAX_MODULES) g_seen_objects[g_nseen++] = key;
    const char *name = l->l_name;
    if (name && name[0] == 0 && l->l_prev == NULL) name = "/proc/self/exe"; /* the program, first in the list */
    if (!name || name[0] != '/') return;
    /* glibc's own objects and heapspec's have no markers: skip reading their symbol tables */
    if (x_strstr(name, "/libc.so") || x_strstr(name, "/ld-linux") || x_strstr(name, "heapspec-preload")) return;
    struct elf_want want = {{"heapspec_test_begin", "heapspec_test_end", NULL, NULL}, {0}, {0}};
    elf_symbols(name, l->l_addr, &want);
    for (int w = 0; w < 2; w++) {
        if (!want.addr[w] || patched(want.addr[w])) continue;
        uintptr_t target = w == 0 ? (uintptr_t)heapspec_marker_begin_entry : (uintptr_t)heapspec_marker_end_entry;
        if (patch_entry(want.addr[w], want.room[w], target) || trap_entry(want.addr[w], w)) {
            if (g_npatched < MAX_PATCHED) g_patched[g_npatched++] = want.addr[w];
        } else {
            lock();
            out_failure("cannot hook a test-case marker (its code cannot be patched, and SIGTRAP is the program's)", want.names[w]);
            unlock();
        }
    }
}

/* Every object in the dynamic linker's list (which it keeps consistent whenever it calls
 * _dl_debug_state, unlike what dl_iterate_phdr shows of an object still being loaded). */
static void hook_markers(void)
{
    for (const struct link_map *l = _r_debug.r_map; l; l = l->l_next) hook_markers_in(l);
}

/* ---- exit ---- */

struct lookup {
    const char *object; /* part of the object's path */
    struct elf_want want;
};

static int find_symbols(struct dl_phdr_info *info, size_t size, void *data);

/* What libstdc++ and libc keep for the life of the process, freed as valgrind frees it at exit.
 * Found in the objects' symbol tables, not with dlsym: a failed dlsym (no libstdc++ loaded) sets
 * dlerror's state, and glibc frees the program's pending dlerror message inside that call, which
 * the model would then never see freed. The frees made by freeres are the program's. */
static void call_freeres(void)
{
    struct lookup cxx = {"/libstdc++.so", {{"_ZN9__gnu_cxx9__freeresEv", NULL, NULL, NULL}, {0}, {0}}};
    struct lookup c = {"/libc.so", {{"__libc_freeres", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &cxx);
    dl_iterate_phdr(find_symbols, &c);
    if (cxx.want.addr[0]) ((void (*)(void))cxx.want.addr[0])();
    if (c.want.addr[0]) ((void (*)(void))c.want.addr[0])();
}

/* The exit scan of this thread's stack starts at the first frame outside libc, as the GDB script's
 * exit_stack_floor(): exit()'s own frames reuse the stack main's frames used. */
static uint64_t exit_floor(const struct entry_regs *r)
{
    uint64_t pcs[64], cfas[64];
    uint32_t n = walk_stack(self_state(), r, pcs, cfas, 64, NULL);
    if (n == 0) return r->sp;
    for (uint32_t i = 0; i < n; i++) {
        struct module *m = module_for(pcs[i]);
        if (!m || !m->libc) return cfas[i];
    }
    return cfas[n - 1];
}

/* Under the lock, the modules gathered. */
static void final_dump(const char *point, uint64_t sp)
{
    send_pending();
    const uint64_t regs[15] = {0};
    if (g_mods) out_bytes(g_mods, g_modsn);
    dump(point, sp, regs, NULL);
    out_flush();
}

HIDDEN __attribute__((used, noreturn)) void heapspec_exit(int status, const struct entry_regs *r)
{
    if (g_state == ON && x_getpid() == g_pid && !__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) {
        struct thread_state *me = self_state();
        call_freeres();
        me->busy = 1;
        gather_modules();
        lock();
        g_modules_stale = 1;
        uint64_t floor = exit_floor(r);
        final_dump("exit", floor);
        unlock();
    }
    x_exit_group(status);
}

MARKER_STUB(heapspec_exit_entry, heapspec_exit, 0);

/* The host's timeout (a signal handler, or a hook on its way out): the image, then SIGKILL, as
 * the GDB backend kills a timed-out program once it has scanned it. */
static void timeout_dump(uint64_t sp)
{
    if (!__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) {
        struct thread_state *me = self_state();
        me->busy = 1;
        gather_modules();
        lock();
        final_dump("timeout", sp);
        unlock();
    }
    x_tgkill(x_getpid(), x_gettid(), SIGKILL);
    x_exit_group(137);
}

/* A timeout that arrived while this thread was inside heapspec. */
static void timeout_now(void)
{
    uint64_t sp = (uint64_t)__builtin_frame_address(0);
    timeout_dump(sp);
}

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr;
    return 1;
}

/* The program's load bias (the first object dl_iterate_phdr lists). */
static uintptr_t main_bias(void)
{
    uintptr_t bias = 0;
    dl_iterate_phdr(first_object, &bias);
    return bias;
}

/* ---- test functions (--tests): a test case from a function's entry to its return ----
 *
 * The host names the functions (matched in JavaScript against the program's symbol names). Each
 * entry gets an int3; at the trap the test case begins, the return address on the stack is
 * replaced by heapspec_test_return (the original kept on this thread's shadow stack), and the
 * function's first instruction is emulated (push of a register, endbr64) or, for any other,
 * single-stepped with the trap flag while the original byte is back in place. At the return the
 * test case ends, with the memory image of that moment, and control goes to the original return
 * address. Stack walks see the original return address wherever ours stands. A C++ exception or a
 * longjmp leaving a test function through its frame is not followed (the test case then does not
 * end there). */

#define SHADOW_MAX 128

/* What a hooked entry is: a --tests function, or GoogleTest's TestEventRepeater::OnTestStart
 * (its test begins when it returns: every listener knows then) or OnTestEnd (its test ends at
 * its entry), as the GDB backend brackets an unchanged GoogleTest suite. The host names the two
 * GoogleTest functions "@gtest-start" and "@gtest-end". */
enum { TEST_FUNCTION, GTEST_START, GTEST_END };

struct test_function {
    const char *symbol;
    const char *name;
    uintptr_t at;
    int kind;
    uint8_t code[4]; /* the entry's first bytes, before the int3 */
};
static struct test_function *g_tests;
static uint32_t g_ntests;
static char *g_tests_text;

/* The original return address for a walk that meets ours at `slot`. */
static uint64_t shadow_ra(struct thread_state *me, uint64_t slot)
{
    for (int i = me->nshadow - 1; i >= 0; i--)
        if (me->shadow[i].slot == slot) return me->shadow[i].ra;
    return 0;
}

/* Reads the host's list (at start-up, before main). */
static void load_tests(void)
{
    if (!g_tests_file[0]) return;
    int fd = x_open(g_tests_file, O_RDONLY, 0);
    if (fd < 0) return;
    struct stat st;
    if (sys3(SYS_fstat, fd, (long)&st, 0) != 0 || st.st_size <= 0) {
        x_close(fd);
        return;
    }
    g_tests_text = region((size_t)st.st_size + 1);
    long got = g_tests_text ? x_read(fd, g_tests_text, (size_t)st.st_size) : -1;
    x_close(fd);
    if (got != st.st_size) return;
    g_tests_text[got] = 0;
    uint32_t lines = 0;
    for (long i = 0; i < got; i++) lines += g_tests_text[i] == '\n';
    g_tests = region((lines + 1) * sizeof *g_tests);
    if (!g_tests) return;
    char *p = g_tests_text;
    while (*p) {
        char *line = p, *tab = NULL;
        while (*p && *p != '\n') {
            if (*p == '\t' && !tab) tab = p;
            p++;
        }
        if (*p) *p++ = 0;
        if (!tab) continue;
        *tab = 0;
        int kind = x_strcmp(tab + 1, "@gtest-start") == 0 ? GTEST_START : x_strcmp(tab + 1, "@gtest-end") == 0 ? GTEST_END : TEST_FUNCTION;
        g_tests[g_ntests++] = (struct test_function){line, tab + 1, 0, kind, {0}};
    }
}

/* Finds the listed functions not found yet in one object's symbol table. */
static void find_tests(const char *path, uintptr_t bias)
{
    int fd = x_open(path, O_RDONLY, 0);
    if (fd < 0) return;
    struct stat st;
    if (sys3(SYS_fstat, fd, (long)&st, 0) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        x_close(fd);
        return;
    }
    const uint8_t *file = x_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    x_close(fd);
    if (file == MAP_FAILED) return;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff && eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= (uint64_t)st.st_size) {
        const Elf64_Shdr *sh = (const Elf64_Shdr *)(file + eh->e_shoff);
        for (int pass = 0; pass < 2; pass++) {
            uint32_t type = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
            for (int sec = 0; sec < eh->e_shnum; sec++) {
                if (sh[sec].sh_type != type || sh[sec].sh_link >= eh->e_shnum) continue;
                if (sh[sec].sh_offset + sh[sec].sh_size > (uint64_t)st.st_size) continue;
                const Elf64_Sym *sym = (const Elf64_Sym *)(file + sh[sec].sh_offset);
                size_t count = sh[sec].sh_size / sizeof(Elf64_Sym);
                const char *strtab = (const char *)(file + sh[sh[sec].sh_link].sh_offset);
                for (size_t i = 0; i < count; i++) {
                    if (sym[i].st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC || !sym[i].st_value) continue;
                    const char *name = strtab + sym[i].st_name;
                    for (uint32_t t = 0; t < g_ntests; t++) {
                        if (g_tests[t].at || x_strcmp(name, g_tests[t].symbol) != 0) continue;
                        g_tests[t].at = bias + sym[i].st_value;
                    }
                }
            }
        }
    }
    x_munmap((void *)file, (size_t)st.st_size);
}

static int find_tests_in(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_name && x_strstr(info->dlpi_name, "/libgtest")) find_tests(info->dlpi_name, info->dlpi_addr);
    return 0;
}

/* The listed functions, in the program (and GoogleTest's own library, when it is one), each given
 * an int3 at its entry. */
static void hook_tests(void)
{
    if (!g_ntests) return;
    find_tests("/proc/self/exe", main_bias());
    dl_iterate_phdr(find_tests_in, NULL);
    for (uint32_t t = 0; t < g_ntests; t++) {
        if (!g_tests[t].at) continue;
        memcpy(g_tests[t].code, (const void *)g_tests[t].at, 4);
        if (!trap_entry(g_tests[t].at, TRAP_TEST)) {
            lock();
            out_failure("cannot hook a --tests function (its code cannot be patched, or SIGTRAP is the program's)", g_tests[t].name);
            unlock();
            g_tests[t].at = 0;
        }
    }
}

#define GTEST_NAME_MAX 256

/* The name of the GoogleTest test running on this thread ("" for none), after its shadow stack. */
static char *running_gtest(struct thread_state *me)
{
    return (char *)(me->shadow + SHADOW_MAX);
}

/* Suite.Name of a testing::TestInfo: its first two members are test_suite_name_ and name_,
 * libstdc++ std::strings ({char *p; size_t n; ...}, 32 bytes each), as the GDB backend reads them. */
static void gtest_name(const uint8_t *info, char *out, size_t cap)
{
    size_t n = 0;
    for (int part = 0; part < 2 && info; part++) {
        const char *p = *(const char *const *)(info + 32 * part);
        size_t len = *(const size_t *)(info + 32 * part + 8);
        if (part) out[n++] = '.';
        for (size_t i = 0; i < len && n + 1 < cap && p; i++) out[n++] = p[i];
    }
    out[n < cap ? n : cap - 1] = 0;
}

static struct test_function *test_at(uintptr_t at)
{
    for (uint32_t t = 0; t < g_ntests; t++)
        if (g_tests[t].at == at) return &g_tests[t];
    return NULL;
}

/* At a test function's int3 (the SIGTRAP handler): the test case begins, its return comes to us,
 * and the first instruction is carried out. */
static void test_entered(struct test_function *f, greg_t *g)
{
    struct thread_state *me = observing();
    uint64_t sp = (uint64_t)g[REG_RSP];
    if (me && !me->shadow) me->shadow = region(SHADOW_MAX * sizeof(struct shadow_frame) + GTEST_NAME_MAX);
    if (me && me->shadow && f->kind == GTEST_END) {
        char *running = running_gtest(me);
        if (running[0]) {
            /* the thread stands at the call: OnTestEnd's arguments are live */
            const uint64_t regs[15] = {0, (uint64_t)g[REG_RBX], 0, 0, (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDI], (uint64_t)g[REG_RBP], 0, 0, 0, 0,
                                       (uint64_t)g[REG_R12], (uint64_t)g[REG_R13], (uint64_t)g[REG_R14], (uint64_t)g[REG_R15]};
            test_boundary(me, running, 1, sp, regs, "rdi rsi");
            running[0] = 0;
        }
    } else if (me && me->shadow && me->nshadow < SHADOW_MAX) {
        struct shadow_frame *frame = &me->shadow[me->nshadow++];
        *frame = (struct shadow_frame){sp, *(const uint64_t *)sp, (uint32_t)(f - g_tests), {0}};
        if (f->kind == GTEST_START) gtest_name((const uint8_t *)g[REG_RSI], frame->gtest, sizeof frame->gtest);
        else test_boundary(me, f->name, 0, 0, NULL, "");
        *(uint64_t *)sp = (uint64_t)(uintptr_t)heapspec_test_return;
    }
    const uint8_t *c = f->code;
    static const int PUSH_REG[8] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI};
    static const int PUSH_REX[8] = {REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
    if (c[0] >= 0x50 && c[0] <= 0x57 && c[0] != 0x54) { /* push r64 */
        g[REG_RSP] -= 8;
        *(uint64_t *)g[REG_RSP] = (uint64_t)g[PUSH_REG[c[0] - 0x50]];
        g[REG_RIP] = (greg_t)(f->at + 1);
    } else if (c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57) { /* push r8..r15 */
        g[REG_RSP] -= 8;
        *(uint64_t *)g[REG_RSP] = (uint64_t)g[PUSH_REX[c[1] - 0x50]];
        g[REG_RIP] = (greg_t)(f->at + 2);
    } else if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) { /* endbr64 */
        g[REG_RIP] = (greg_t)(f->at + 4);
    } else if (me) {
        write_code(f->at, c, 1);
        me->stepping = f->at;
        g[REG_RIP] = (greg_t)f->at;
        g[REG_EFL] |= 0x100; /* TF: trap after the one instruction */
    }
}

/* The single step of an entry's first instruction is done: its int3 goes back. */
static int test_stepped(greg_t *g)
{
    struct thread_state *me = self_state();
    if (!me->stepping) return 0;
    const uint8_t int3 = 0xcc;
    write_code(me->stepping, &int3, 1);
    me->stepping = 0;
    g[REG_EFL] &= ~(greg_t)0x100;
    return 1;
}

/* heapspec_test_return's saved registers, lowest address first. */
struct return_regs {
    uint64_t r15, r14, r13, r12, rbp, rbx, rdx, rax;
};

/* A test function returned (through heapspec_test_return): the test case ends; returns where the
 * function was to return. */
HIDDEN __attribute__((used)) uint64_t heapspec_test_returned(const struct return_regs *r)
{
    struct thread_state *me = self_state();
    if (!me->shadow || me->nshadow == 0) x_exit_group(134); /* cannot happen: we replaced it */
    struct shadow_frame *f = &me->shadow[--me->nshadow];
    uint64_t sp = (uint64_t)(uintptr_t)(r + 1);
    const uint64_t regs[15] = {r->rax, r->rbx, 0, r->rdx, 0, 0, r->rbp, 0, 0, 0, 0, r->r12, r->r13, r->r14, r->r15};
    if (g_state == ON && g_tests[f->test].kind == GTEST_START) {
        memcpy(running_gtest(me), f->gtest, sizeof f->gtest);
        test_boundary(me, f->gtest, 0, 0, NULL, "");
    } else if (g_state == ON) {
        test_boundary(me, g_tests[f->test].name, 1, sp, regs, "rax rdx");
    }
    return f->ra;
}

__asm__(".text\n"
        ".type heapspec_test_return, @function\n"
        ".p2align 4\n"
        "heapspec_test_return:\n"
        "push %rax\n"
        "push %rdx\n"
        "push %rbx\n"
        "push %rbp\n"
        "push %r12\n"
        "push %r13\n"
        "push %r14\n"
        "push %r15\n"
        "mov %rsp, %rdi\n"
        "sub $48, %rsp\n"
        "movdqu %xmm0, 0(%rsp)\n"
        "movdqu %xmm1, 16(%rsp)\n"
        "call heapspec_test_returned\n"
        "mov %rax, %r11\n"
        "movdqu 0(%rsp), %xmm0\n"
        "movdqu 16(%rsp), %xmm1\n"
        "add $48, %rsp\n"
        "pop %r15\n"
        "pop %r14\n"
        "pop %r13\n"
        "pop %r12\n"
        "pop %rbp\n"
        "pop %rbx\n"
        "pop %rdx\n"
        "pop %rax\n"
        "jmp *%r11\n"
        ".size heapspec_test_return, .-heapspec_test_return\n");

/* ---- ends an observer could miss: exec, SIGKILL to itself, heapspec's descriptor closed ----
 *
 * memcheck sees every system call; an interposer sees only the calls made through libc's exported
 * functions. These hooks keep what the program does unchanged and make sure the host hears of it:
 * an exec or a SIGKILL the program sends itself gets the image of that moment first (as memcheck
 * reports a self-inflicted SIGKILL), and a program closing "every descriptor" leaves heapspec's
 * alone (it is CLOEXEC and far above the program's own, so the program cannot tell). What comes
 * through a raw system call is not seen: the host then fails the run, naming why. */

static long x_sys(long n, long a, long b, long c) { return sys3(n, a, b, c); }

/* The image before the process image goes: the exec'd program is not followed (as under gdb and
 * memcheck), and the run says so. */
static void before_exec(const char *path)
{
    if (g_state != ON || x_getpid() != g_pid || __atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) return;
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    gather_modules();
    lock();
    out_str("I the program exec'd ");
    out_str(path ? path : "another program");
    out_str(": heapspec classified its leaks at the exec and did not follow the new program\n");
    final_dump("exec", (uint64_t)__builtin_frame_address(0));
    unlock();
    me->busy = busy;
}

extern char **environ;

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    before_exec(path);
    return (int)x_sys(SYS_execve, (long)path, (long)argv, (long)envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    before_exec(path);
    return (int)x_sys(SYS_execve, (long)path, (long)argv, (long)environ);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    before_exec(NULL);
    return (int)sys6(SYS_execveat, fd, (long)"", (long)argv, (long)envp, AT_EMPTY_PATH, 0);
}

/* The PATH-searching and variadic forms: libc's own, found once, after our image. */
static void *libc_next(const char *name)
{
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    void *f = dlsym(RTLD_NEXT, name);
    me->busy = busy;
    return f;
}

EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec(file);
    int (*next)(const char *, char *const[]) = (int (*)(const char *, char *const[]))libc_next("execvp");
    return next ? next(file, argv) : (errno = ENOSYS, -1);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    before_exec(file);
    int (*next)(const char *, char *const[], char *const[]) = (int (*)(const char *, char *const[], char *const[]))libc_next("execvpe");
    return next ? next(file, argv, envp) : (errno = ENOSYS, -1);
}

#define MAX_EXEC_ARGS 4096
/* execl's arguments as an argv, on the stack; the last is NULL (and for execle, envp follows). */
#define GATHER_ARGS(first, list, argv, n)                                   \
    do {                                                                    \
        argv[0] = (char *)(first);                                          \
        for (n = 1; argv[n - 1] && n < MAX_EXEC_ARGS; n++) argv[n] = va_arg(list, char *); \
        if (argv[n - 1]) { errno = E2BIG; va_end(list); return -1; }        \
    } while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    va_end(list);
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    va_end(list);
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    char **envp = va_arg(list, char **);
    va_end(list);
    return execve(path, argv, envp);
}

/* SIGKILL cannot be caught: a program sending it to itself gets its image taken first. */
static void before_self_kill(void)
{
    if (g_state != ON || x_getpid() != g_pid || __atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) return;
    struct thread_state *me = self_state();
    me->busy = 1;
    gather_modules();
    lock();
    final_dump("crash", (uint64_t)__builtin_frame_address(0));
    unlock();
}

EXPORT int kill(pid_t pid, int sig)
{
    if (sig == SIGKILL && (pid == g_pid || pid == 0 || pid == -1 || pid == -(pid_t)sys3(SYS_getpgid, 0, 0, 0))) before_self_kill();
    return (int)x_sys(SYS_kill, pid, sig, 0);
}

EXPORT int raise(int sig)
{
    if (sig == SIGKILL) before_self_kill();
    int (*next)(int) = (int (*)(int))libc_next("raise");
    return next ? next(sig) : (int)x_sys(SYS_tgkill, x_getpid(), x_gettid(), sig);
}

/* heapspec's descriptor stays open whatever the program closes; closing it would report success. */
EXPORT int close(int fd)
{
    if (fd == g_fd && g_fd >= 0) return 0; /* a forked child has g_fd -1 */
    long r = x_sys(SYS_close, fd, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    long r;
    unsigned int ours = (unsigned int)g_fd;
    if (g_fd >= 0 && first <= ours && ours <= last) {
        r = ours > first ? x_sys(SYS_close_range, first, ours - 1, flags) : 0;
        if (r == 0 && ours < last) r = x_sys(SYS_close_range, ours + 1, last, flags);
    } else {
        r = x_sys(SYS_close_range, first, last, flags);
    }
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

EXPORT void closefrom(int lowfd)
{
    if (lowfd < 0) lowfd = 0;
    if (close_range((unsigned int)lowfd, ~0u, 0) == 0) return;
    for (int fd = lowfd; fd < 65536; fd++)
        if (fd != g_fd) x_sys(SYS_close, fd, 0, 0);
}

/* A dup2/dup3 onto heapspec's descriptor moves heapspec's out of the way first. */
static void keep_clear_of(int fd)
{
    if (fd != g_fd || g_fd < 0) return;
    lock();
    int moved = (int)sys3(SYS_fcntl, g_fd, F_DUPFD_CLOEXEC, g_fd + 1);
    if (moved >= 0) {
        out_flush();
        g_fd = moved;
    }
    unlock();
}

EXPORT int dup2(int old, int fd)
{
    keep_clear_of(fd);
    long r = x_sys(SYS_dup2, old, fd, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (int)r;
}

EXPORT int dup3(int old, int fd, int flags)
{
    keep_clear_of(fd);
    long r = x_sys(SYS_dup3, old, fd, flags);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (int)r;
}

/* ---- crash ---- */

static const int FATAL[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};

static void crash_handler(int sig, siginfo_t *si, void *context)
{
    ucontext_t *uc = context;
    if (sig == SIGTRAP) {
        greg_t *g = uc->uc_mcontext.gregs;
        uintptr_t pc = (uintptr_t)g[REG_RIP] - 1;
        if (si && si->si_code == TRAP_TRACE && test_stepped(g)) return;
        for (int i = 0; i < g_ntraps; i++) {
            if (g_traps[i].at != pc) continue;
            int saved_errno = errno;
            if (g_traps[i].kind == TRAP_TEST) {
                struct test_function *f = test_at(pc);
                if (f) test_entered(f, g);
                errno = saved_errno;
                return;
            }
            const struct entry_regs r = {(uint64_t)g[REG_RBX], (uint64_t)g[REG_RBP], (uint64_t)g[REG_R12], (uint64_t)g[REG_R13],
                                         (uint64_t)g[REG_R14], (uint64_t)g[REG_R15], (uint64_t)g[REG_RSP]};
            if (g_traps[i].kind == TRAP_LINK_MAP) link_map_changed();
            else heapspec_marker((const char *)g[REG_RDI], &r, g_traps[i].kind == TRAP_END);
            /* the marker's body is a return: make it */
            uint64_t sp = (uint64_t)g[REG_RSP];
            g[REG_RIP] = (greg_t)*(const uint64_t *)sp;
            g[REG_RSP] = (greg_t)(sp + 8);
            errno = saved_errno;
            return;
        }
    }
    if (g_state == ON && x_getpid() == g_pid && !__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) {
        /* crashed inside heapspec itself, with the lock held: the model cannot be trusted */
        struct thread_state *me = self_state();
        if (!me->busy) {
            me->busy = 1;
            gather_modules();
            lock();
            final_dump("crash", (uint64_t)uc->uc_mcontext.gregs[REG_RSP]);
            unlock();
        }
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    x_tgkill(x_getpid(), x_gettid(), sig); /* delivered when the handler returns */
}

/* ---- fork, dlopen ---- */

static void fork_prepare(void) { lock(); }
static void fork_parent(void) { unlock(); }
static void fork_child(void)
{
    g_lock = 0;
    g_state = DISABLED;
    x_close(g_fd);
    g_fd = -1;
}

/* ---- objects loaded and unloaded: the dynamic linker's debugger hook ---- */

/* ld.so calls _dl_debug_state() whenever its list of objects changes (gdb breaks there too): new
 * objects get their markers hooked before their constructors run, and unloading forgets what was
 * learnt about code that may be gone. Called from the SIGTRAP handler, inside dlopen/dlclose. */
static int g_unloaded;

static void forget_traps(void);

static void link_map_changed(void)
{
    if (g_state != ON || x_getpid() != g_pid) return;
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    if (_r_debug.r_state == RT_DELETE) {
        /* the objects about to go, while they are still listed: their pcs stay resolvable */
        gather_modules();
        lock();
        if (g_mods) out_bytes(g_mods, g_modsn);
        unlock();
        g_unloaded = 1;
    } else if (_r_debug.r_state == RT_CONSISTENT) {
        if (g_unloaded) {
            lock();
            forget_code();
            unlock();
            g_nseen = 0;
            g_npatched = 0;
            forget_traps();
            g_unloaded = 0;
        }
        hook_markers();
        lock();
        g_modules_stale = 1;
        out_flush();
        unlock();
    }
    me->busy = busy;
}

/* ---- start-up, once libc is ready ---- */

static void exclude_self(void)
{
    Dl_info info;
    if (!dladdr((void *)exclude_self, &info) || !info.dli_fbase) return;
    const Elf64_Ehdr *eh = info.dli_fbase;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
    uintptr_t bias = (uintptr_t)info.dli_fbase;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_W)) {
            uintptr_t lo = (bias + ph[i].p_vaddr) & ~(uintptr_t)4095;
            uintptr_t hi = (bias + ph[i].p_vaddr + ph[i].p_memsz + 4095) & ~(uintptr_t)4095;
            range_add(lo, hi);
        }
    }
}

static int find_symbols(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct lookup *l = data;
    if (info->dlpi_name && x_strstr(info->dlpi_name, l->object)) {
        elf_symbols(info->dlpi_name, info->dlpi_addr, &l->want);
        return 1;
    }
    return 0;
}

__attribute__((constructor(101))) static void heapspec_start(void)
{
    if (!ready()) return;
    struct thread_state *me = self_state();
    me->busy = 1;
    g_stopped = region(MAX_THREADS * sizeof(struct stopped));
    exclude_self();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    /* libc's _exit: the last thing exit() does */
    struct lookup libc = {"/libc.so", {{"_exit", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &libc);
    if (!libc.want.addr[0] || !patch_entry(libc.want.addr[0], libc.want.room[0], (uintptr_t)heapspec_exit_entry)) {
        lock();
        out_failure("cannot hook libc's _exit; leaks at exit will not be classified", NULL);
        unlock();
    }
    /* ld.so's debugger hook: objects loaded later (dlopen) get their markers hooked too */
    struct lookup ld = {"/ld-linux", {{"_dl_debug_state", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &ld);
    if (!ld.want.addr[0] || !trap_entry(ld.want.addr[0], TRAP_LINK_MAP)) {
        lock();
        out_failure("cannot follow dlopen (no hook in ld.so's _dl_debug_state): markers in objects loaded later are not seen", NULL);
        unlock();
    }
    hook_markers();
    load_tests();
    hook_tests();
    install_stop_handler();
    for (size_t i = 0; i < sizeof FATAL / sizeof FATAL[0]; i++) {
        struct sigaction old;
        if (sigaction(FATAL[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigfillset(&sa.sa_mask);
        sigaction(FATAL[i], &sa, NULL);
    }
    lock();
    out_flush();
    unlock();
    me->busy = 0;
}
