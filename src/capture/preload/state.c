/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * State.
 */

enum { OFF, STARTING, ON, DISABLED };
static volatile int g_state = OFF;
static int g_fd = -1;              /* the protocol, CLOEXEC, far from the program's descriptors */
static int g_pid;
static int g_all_events;           /* one line per event (memdump.txt) instead of counts */
static int g_scan_image;           /* memory images for the host to scan, not the scan in the process */
static int g_scan_whole;           /* the scan of the whole heap at every test end (scan.c's scan_own skipped) */
/* Only blocks allocated with an observed object's frame on the stack are the run's figures (objects
 * mode), and no observed object is loaded yet: no walk can find one of its frames, so allocations
 * and frees take no stack (lifecycle.c's observed_check opens the gate as one arrives). */
static int g_walks_gated;
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
    uintptr_t map_lo, map_hi; /* the mapping that held its stack pointer at its last JavaScript marker */
    uintptr_t last_sp;  /* its stack pointer at its last allocator entry (image.c's stop_world) */
    /* test functions this thread is inside (their return addresses replaced by ours), innermost
     * last; allocated on the first one */
    struct shadow_frame *shadow;
    int nshadow;
    uintptr_t stepping; /* a test function's entry whose first instruction is being single-stepped */
    uint32_t shard;     /* which thread to allocate it is, counting from 0: its stack-cache shard (unwind.c) */
    struct cache_shard *cache;     /* its shard, once attached (unwind.c) */
    struct cache_shard *own_cache; /* the same when no other thread shares it, else NULL */
    struct quarantine *quarantine; /* its freed-blocks queue, once attached (errors.c) */
    int unwinding;      /* a C++ exception is on its way: its test functions' slots hold their own return addresses */
    int nothrow;        /* inside libstdc++'s nothrow operator new, which calls the throwing one (hooks.c) */
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
    s->last_sp = 0;
    s->shadow = NULL;
    s->nshadow = 0;
    s->stepping = 0;
    s->shard = i;
    s->cache = NULL;
    s->own_cache = NULL;
    s->quarantine = NULL;
    s->unwinding = 0;
    s->nothrow = 0;
    pthread_setspecific(g_key, s);
    return s;
}

static inline struct thread_state *self_state(void)
{
    if (single_threaded() && g_first) return g_first;
    struct thread_state *s = pthread_getspecific(g_key);
    return LIKELY(s != NULL) ? s : new_state();
}

/* A futex mutex: 0 free, 1 held, 2 held with waiters. g_lock is held for about 50 cycles at a
 * time (recording one block), so a waiter on a machine of several cores first watches the lock for
 * a while (reading it, without writing its cache line) and sleeps only past that: sleeping at once
 * made every contended event two system calls and a context switch, which were most of what a
 * second thread cost (debugee/scale/threads-alloc 2: 1.1-1.3 s against 0.4-0.6 s watching; 8
 * threads on 2 cores, 1.4 s against 0.7 s). With one core the holder cannot run while its waiter
 * watches: there the waiter sleeps at once. */
#define SPIN_WAITS 200 /* pauses: a few microseconds, about what a sleep and a wake-up cost */
static int g_spin_waits;   /* SPIN_WAITS with more than one core to run on, else 0 (start-up) */

static void mutex_lock_slow(int *m)
{
    for (int i = 0; i < g_spin_waits; i++) {
        __builtin_ia32_pause();
        int expected = 0;
        if (__atomic_load_n(m, __ATOMIC_RELAXED) == 0 && __atomic_compare_exchange_n(m, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    }
    while (__atomic_exchange_n(m, 2, __ATOMIC_ACQUIRE) != 0) futex_wait(m, 2, NULL);
}

/* Whether the process may run on more than one core (its affinity mask). */
static int several_cores(void)
{
    uint64_t mask[16] = {0};
    long n = sys3(SYS_sched_getaffinity, 0, sizeof mask, (long)mask);
    int cores = 0;
    for (long i = 0; i < n / 8 && cores < 2; i++) cores += __builtin_popcountll(mask[i]);
    return n <= 0 || cores > 1;
}
static inline void mutex_lock(int *m)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(m, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) mutex_lock_slow(m);
}
static inline int mutex_trylock(int *m)
{
    int expected = 0;
    return __atomic_compare_exchange_n(m, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
static inline void mutex_unlock(int *m)
{
    if (__atomic_exchange_n(m, 0, __ATOMIC_RELEASE) == 2) futex_wake(m, 1);
}

/* The locks, and their order (a thread holding one may take only those after it):
 *   g_lock         orders every event of every thread (the model needs them in one order): the
 *                  block table, the counts, the protocol writer, test-case state, images;
 *   a cache shard  (unwind.c) a shared stack-cache shard (threads past the 64th), held across a
 *                  walk that may fill it;
 *   g_unwind_lock  (cfi.c) adding a rule row, the module table;
 *   g_stacks_lock  (stacks.c) interning a stack.
 * The walk itself takes none: an allocator hook walks its caller's stack before it takes g_lock,
 * so threads walk at the same time and hold g_lock only to record the block (about 50 cycles a
 * hold on threads-alloc 8). Nor does glibc's allocator run under g_lock: a block leaving the
 * freed-blocks queue is gathered into the caller's struct released (errors.c) and freed after the
 * unlock, so an evicted block's free (its arena's lock) or a big block's (a munmap) never holds up
 * the other threads. No signal handler
 * of ours takes any of them while the thread it interrupts may hold it (the hooks run busy, and a
 * stopped thread holds only locks the stopping one never needs while it holds the world stopped). */
static int g_lock;
static inline void lock(void) { mutex_lock(&g_lock); }
static inline void unlock(void) { mutex_unlock(&g_lock); }

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
