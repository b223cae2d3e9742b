/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

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
    int signalled; /* sent STOP_SIGNAL (a thread that blocks it is read from the kernel instead) */
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
        if (me->busy) g_timeout.pending = 1; /* inside heapspec: it takes the image on its way out */
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
    size_t pl = x_strlen(path);
    pl += put_dec(path + pl, (uint64_t)tid);
    path[pl] = '/';
    memcpy(path + pl + 1, name, x_strlen(name) + 1);
    int fd = x_open(path, O_RDONLY, 0);
    if (fd < 0) return 0;
    long n = x_read(fd, buf, cap - 1);
    x_close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return n;
}

/* One "0x..." field of /proc/self/task/TID/syscall at *p, moving past it; 0 when it is not one. */
static int syscall_field(const char **p, uint64_t *v)
{
    while (**p == ' ') (*p)++;
    if ((*p)[0] != '0' || (*p)[1] != 'x') return 0;
    *p += 2;
    *v = parse_hex(p);
    return 1;
}

/* A thread that did not take the signal, as the kernel records it: asleep in a system call
 * ("nr arg1 .. arg6 sp pc"), its stack pointer and the six argument registers, which hold what
 * they held at the call (a buffer being read into is one); preempted outside one ("-1 sp pc"), its
 * stack pointer. Running ("running"), nothing: 0. */
static uint64_t blocked_thread_sp(struct stopped *s)
{
    char buf[256];
    if (!read_task_file(s->tid, "syscall", buf, sizeof buf)) return 0;
    const char *p = buf;
    uint64_t v, sp;
    if (p[0] == '-') {
        while (*p && *p != ' ') p++;
        return syscall_field(&p, &sp) ? sp : 0;
    }
    while (*p && *p != ' ') p++;
    static const int args[6] = {5, 4, 3, 9, 7, 8}; /* rdi rsi rdx r10 r8 r9, in regs' order */
    uint64_t regs[6];
    for (int i = 0; i < 6; i++)
        if (!syscall_field(&p, &regs[i])) return 0;
    if (!syscall_field(&p, &sp) || !syscall_field(&p, &v)) return 0;
    for (int i = 0; i < 6; i++) s->regs[args[i]] = regs[i];
    return sp;
}

/* What thread `tid` does with STOP_SIGNAL, from its status: STOP_TAKES it; STOP_BLOCKS it (its SigBlk
 * mask: Node's and libuv's worker threads block every signal); or is STOP_GONE, a zombie (a main
 * thread that called pthread_exit stays listed so while the others run) or no longer there. Waiting
 * for a thread that never answers would cost the whole deadline at every image. */
enum { STOP_TAKES, STOP_BLOCKS, STOP_GONE };
static int stop_answer(int tid)
{
    char buf[2048];
    if (!read_task_file(tid, "status", buf, sizeof buf)) return STOP_GONE;
    const char *state = x_strstr(buf, "State:");
    if (state) {
        state += 6;
        while (*state == ' ' || *state == '\t') state++;
        if (*state == 'Z' || *state == 'X') return STOP_GONE;
    }
    const char *p = x_strstr(buf, "SigBlk:");
    if (!p) return STOP_TAKES;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t mask = parse_hex(&p);
    return (mask >> (STOP_SIGNAL - 1)) & 1 ? STOP_BLOCKS : STOP_TAKES;
}

static void install_stop_handler(void)
{
    if (g_stop_installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    __sigaction(STOP_SIGNAL, &sa, &g_stop_old);
    g_stop_installed = 1;
}

/* After the first deadline, the threads sent the signal that have not come: woken but not yet run
 * (a loaded machine in CI kept one off the CPU past it; the kernel's record of a runnable thread has
 * no stack pointer, so its stack was read as a dead thread's and the block it held as lost), asleep
 * where the signal cannot wake them (uninterruptible, or stopped: the kernel's record then has
 * their stack pointer, and will do), or gone. Waits for the runnable ones, up to 10 s more: only the
 * handler gives all of a thread's registers. */
static void wait_late_threads(void)
{
    uint64_t deadline = now_ns() + 10000000000ull;
    for (;;) {
        int a = __atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE), waiting = 0;
        for (int i = 0; i < g_nstopped; i++) {
            struct stopped *s = &g_stopped[i];
            if (s->tid <= 0 || !s->signalled || __atomic_load_n(&s->arrived, __ATOMIC_ACQUIRE)) continue;
            if (stop_answer(s->tid) == STOP_GONE) s->tid = -s->tid;
            else if (!blocked_thread_sp(s)) waiting = 1;
        }
        if (!waiting || now_ns() >= deadline) return;
        struct timespec wait = {0, 10000000};
        futex_wait(&g_arrived, a, &wait);
    }
}

/* For a thread that blocks the signal and is running, not sleeping in a system call (a worker that
 * masks every signal and computes): the kernel gives no stack pointer. Its stack pointer at its
 * last allocator entry is the deepest point of its stack known to be live then: its stack is read
 * from there, not as a dead thread's (whose blocks it holds would read as lost). 0 when unknown. */
static uint64_t last_allocator_sp(int tid)
{
    uint32_t n = __atomic_load_n(&g_nstates, __ATOMIC_ACQUIRE);
    if (n > STATES_MAX) n = STATES_MAX;
    for (uint32_t i = n; i-- > 0;) /* the newest first: a tid is reused once its thread is gone */
        if (g_states[i].tid == tid) return g_states[i].last_sp;
    return 0;
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
            g_stopped[g_nstopped++] = (struct stopped){t, 0, 0, 0, {0}};
        }
    }
    x_close(dir);
    if (!g_nstopped) return;
    install_stop_handler();
    __atomic_store_n(&g_holding, 1, __ATOMIC_RELEASE);
    int sent = 0;
    for (int i = 0; i < g_nstopped; i++) {
        int answer = stop_answer(g_stopped[i].tid);
        if (answer == STOP_GONE) g_stopped[i].tid = -g_stopped[i].tid;
        if (answer != STOP_TAKES) continue; /* never comes: a blocking one is read from the kernel below */
        if (x_tgkill(g_pid, g_stopped[i].tid, STOP_SIGNAL) == 0) sent++, g_stopped[i].signalled = 1;
        else g_stopped[i].tid = -g_stopped[i].tid; /* gone */
    }
    /* the signalled threads, for half a second (the late ones after, in wait_late_threads); those
     * that block the signal, and those that did not come, are read from the kernel below */
    uint64_t deadline = now_ns() + 500000000ull;
    for (;;) {
        int a = __atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE);
        if (a >= sent) break;
        uint64_t t = now_ns();
        if (t >= deadline) break;
        struct timespec wait = {0, 10000000};
        futex_wait(&g_arrived, a, &wait);
    }
    if (__atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE) < sent) wait_late_threads();
    for (int i = 0; i < g_nstopped; i++) {
        struct stopped *s = &g_stopped[i];
        if (s->tid <= 0 || __atomic_load_n(&s->arrived, __ATOMIC_ACQUIRE)) continue;
        s->sp = blocked_thread_sp(s);
        if (!s->sp) s->sp = last_allocator_sp(s->tid);
    }
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

/* Visits the pieces of [lo, hi) outside our own memory, in address order (`first`: the piece that
 * starts at lo, for a mapping's guard page); stops at a visit that answers non-zero, and answers it.
 * The image, the own-blocks check and the scan all split a mapping so. */
typedef int (*piece_visit)(uintptr_t lo, uintptr_t hi, int first, void *ctx);

static int outside_ours(uintptr_t lo, uintptr_t hi, int first, piece_visit visit, void *ctx)
{
    if (lo >= hi) return 0;
    for (int i = 0; i < g_nranges; i++) {
        uintptr_t a = g_ranges[i].lo, b = g_ranges[i].hi;
        if (b <= lo || a >= hi) continue;
        int answer = a > lo ? outside_ours(lo, a, first, visit, ctx) : 0;
        if (answer) return answer;
        return b < hi ? outside_ours(b, hi, 0, visit, ctx) : 0;
    }
    return visit(lo, hi, first, ctx);
}

struct emit_ctx {
    int fd;
    uint64_t *offset;
    const struct maps_line *m;
    int guarded;
};

static int emit_piece(uintptr_t lo, uintptr_t hi, int first, void *ctx)
{
    struct emit_ctx *e = ctx;
    emit_mapping(e->fd, e->offset, lo, hi, e->m->perms, first && e->guarded, e->m->name, e->m->name_len);
    return 0;
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

/* A walk of the writable mappings an image holds (all but [vvar] and [vsyscall]) in a copy of the
 * maps, in address order. */
struct writable_maps {
    const char *p;
    uintptr_t previous_end;
    char previous_perms[5];
};

/* The next one, and whether it lies right above a PROT_NONE page (how glibc guards a thread's stack). */
static int next_writable(struct writable_maps *w, struct maps_line *m, int *guarded)
{
    while (next_maps_line(&w->p, m)) {
        *guarded = w->previous_end == m->start && starts_with(w->previous_perms, "---");
        w->previous_end = m->end;
        memcpy(w->previous_perms, m->perms, 5);
        if (m->perms[0] != 'r' || m->perms[1] != 'w') continue;
        if ((m->name_len == 6 && memcmp(m->name, "[vvar]", 6) == 0) || (m->name_len == 10 && memcmp(m->name, "[vsyscall]", 10) == 0)) continue;
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * A test case's own image. At a test end the host needs the kinds of the test's own live blocks
 * alone. When no word outside them (in any writable mapping, a stack from its thread's stack pointer
 * up, or a register) points into one of them, no chain from the roots reaches them, and no other
 * block claims them: their kinds are those of the scan among themselves. The image is then their
 * bytes alone (a K line says so), not a copy of the whole heap. The check reads more than the scan
 * would (free chunks, allocator headers): a stale word there only costs the whole image. The
 * test's own blocks are blocks.c's own_blocks.
 */

static char g_words_buf[1 << 16];

/* What a writable mapping's memory is, for reading it (maps_memory). */
#define MEM_FILE 1      /* it maps a file: some of it may not be readable (past the file's end) */
#define MEM_ZERO_FILL 2 /* private and anonymous: a page never written (or discarded) reads as zeros */

static int maps_memory(const struct maps_line *m)
{
    if (m->name_len > 0 && m->name[0] == '/') return MEM_FILE;
    /* [heap], [stack], [anon:NAME] and unnamed ones; not [anon_shmem:NAME] (shared) */
    int anonymous = m->name_len == 0 || (m->name_len == 6 && memcmp(m->name, "[heap]", 6) == 0) || (m->name_len == 7 && memcmp(m->name, "[stack]", 7) == 0) ||
                    (m->name_len > 6 && memcmp(m->name, "[anon:", 6) == 0);
    return anonymous && m->perms[3] == 'p' ? MEM_ZERO_FILL : 0;
}

/* Reads the aligned words of [lo, hi) of our own memory a buffer at a time, through
 * process_vm_readv, which fails where a plain read would fault (a file mapping past its end), and
 * hands each buffer to `visit` (its words, how many, the address of the first); stops at a visit
 * that answers non-zero, and answers it; -1 when some of it cannot be read. With the world stopped
 * (one buffer serves every caller). */
typedef int (*words_visit)(const uint64_t *w, size_t n, uintptr_t at, void *ctx);

static int read_all_words(uintptr_t lo, uintptr_t hi, words_visit visit, void *ctx)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    while (lo + 8 <= hi) {
        size_t n = hi - lo > sizeof g_words_buf ? sizeof g_words_buf : (hi - lo) & ~(size_t)7;
        struct iovec local = {g_words_buf, n}, remote = {(void *)lo, n};
        if (sys6(SYS_process_vm_readv, g_pid, (long)&local, 1, (long)&remote, 1, 0) != (long)n) return -1;
        int answer = visit((const uint64_t *)g_words_buf, n / 8, lo, ctx);
        if (answer) return answer;
        lo += n;
    }
    return 0;
}

#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define PAGEMAP_MIN (256u << 10) /* smaller ranges are read whole: a look at the page table costs a few system calls */
static uint64_t g_pagemap[512];

/* read_all_words over the pages of [lo, hi) that hold something: memory MEM_ZERO_FILL, whose pages
 * that are neither in memory nor swapped out were never written and read as zeros, which point at
 * nothing (memcheck reads them and finds nothing). Node reserves 80 MB of such memory and writes a
 * tenth of it: read whole, each scan read all of it and mapped every page it had not touched. The
 * page table is /proc/self/pagemap's; without it, everything is read. */
static int read_written_words(uintptr_t lo, uintptr_t hi, words_visit visit, void *ctx)
{
    int fd = x_open("/proc/self/pagemap", O_RDONLY, 0);
    if (fd < 0) return read_all_words(lo, hi, visit, ctx);
    int answer = 0;
    uintptr_t at = lo; /* read up to here */
    while (at < hi && !answer) {
        uint64_t page = at >> 12, last = (hi - 1) >> 12;
        uint64_t n = last - page + 1 > 512 ? 512 : last - page + 1;
        if (sys6(SYS_pread64, fd, (long)g_pagemap, (long)(n * 8), (long)(page * 8), 0, 0) != (long)(n * 8)) {
            answer = read_all_words(at, hi, visit, ctx);
            break;
        }
        uintptr_t chunk_end = (page + n) << 12 < hi ? (page + n) << 12 : hi;
        for (uint64_t k = 0; k < n && !answer;) {
            if (!(g_pagemap[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))) {
                k++;
                continue;
            }
            uint64_t first = k;
            while (k < n && (g_pagemap[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))) k++;
            uintptr_t from = (page + first) << 12, to = (page + k) << 12;
            answer = read_all_words(from > at ? from : at, to < hi ? to : hi, visit, ctx);
        }
        at = chunk_end;
    }
    x_close(fd);
    return answer;
}

/* The words of [lo, hi) of memory of the kind `mem` (MEM_*), as read_all_words reads them. */
static int read_words(uintptr_t lo, uintptr_t hi, int mem, words_visit visit, void *ctx)
{
    if ((mem & MEM_ZERO_FILL) && hi > lo && hi - lo >= PAGEMAP_MIN) return read_written_words(lo, hi, visit, ctx);
    return read_all_words(lo, hi, visit, ctx);
}

/* Whether a word outside the own blocks points into one. */
static int words_point_into_own(const uint64_t *w, size_t n, uintptr_t at, void *ctx)
{
    (void)ctx;
    for (size_t k = 0; k < n; k++) {
        if (!into_own(w[k])) continue;
        if (into_own(at + 8 * k)) continue; /* a word inside an own block: theirs to weigh */
        return 1;
    }
    return 0;
}

/* Whether a word of a piece points into an own block; one that cannot be read counts as one that
 * does (then the whole image is taken). */
static int piece_points_into_own(uintptr_t lo, uintptr_t hi, int first, void *ctx)
{
    (void)first;
    (void)ctx;
    return read_all_words(lo, hi, words_point_into_own, NULL) != 0;
}

/* Whether the test's own blocks are apart from the rest of the process (see above): the world is
 * stopped, `sp` and `regs` are this thread's. Under the lock. */
static int own_apart(uint64_t sp, const uint64_t *regs)
{
    if (!own_blocks()) return 0;
    for (int k = 0; k < 15; k++)
        if (into_own(regs[k])) return 0;
    for (int i = 0; i < g_nstopped; i++)
        for (int k = 0; k < 15; k++)
            if (g_stopped[i].tid > 0 && into_own(g_stopped[i].regs[k])) return 0;
    if (!read_maps()) return 0;
    struct writable_maps w = {g_maps_copy.text, 0, ""};
    struct maps_line m;
    int guarded;
    while (next_writable(&w, &m, &guarded)) {
        uintptr_t from = m.start;
        /* a stack below its thread's stack pointer is dead, as the host's scan has it */
        if (sp >= m.start && sp < m.end) from = sp;
        for (int i = 0; i < g_nstopped; i++) {
            uint64_t tsp = g_stopped[i].sp;
            if (g_stopped[i].tid > 0 && tsp >= m.start && tsp < m.end) from = tsp;
        }
        if (outside_ours(from, m.end, 1, piece_points_into_own, NULL)) return 0;
    }
    return 1;
}

/* The own image: the test's blocks' bytes, a W line each (K first). */
static void emit_own(int fd)
{
    out_str("K\n");
    uint64_t offset = 0;
    for (int i = 0; i < g_nown; i++)
        emit_mapping(fd, &offset, g_own[i].lo, g_own[i].hi, "rw-p", 0, "", 0);
}

/* The files' mappings that are not writable, for the host's test of vtables (memcheck's
 * multipleinheritance heuristic): a file's data made read-only after its relocations (RELRO, right
 * below the same file's writable data, where vtables are) in the image, as a W line with its r--p;
 * the rest (code, read-only data: the file's own bytes) as w lines, with their offsets in the file. */
static void emit_files(int fd, uint64_t *offset)
{
    const char *p = g_maps_copy.text;
    struct maps_line m, next;
    int more = next_maps_line(&p, &m);
    while (more) {
        more = next_maps_line(&p, &next);
        if (m.name_len > 0 && m.name[0] == '/' && !(m.perms[0] == 'r' && m.perms[1] == 'w')) {
            int relro = more && starts_with(m.perms, "r--") && starts_with(next.perms, "rw") && next.start == m.end && same_name(&m, &next);
            if (relro) emit_mapping(fd, offset, m.start, m.end, m.perms, 0, m.name, m.name_len);
            else {
                out_str("w ");
                out_hex(m.start);
                out_c(' ');
                out_hex(m.end);
                out_c(' ');
                out_str(m.perms);
                out_c(' ');
                out_hex(m.offset);
                out_c(' ');
                out_bytes(m.name, m.name_len);
                out_c('\n');
            }
        }
        m = next;
    }
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
    at += put_dec(path + at, (uint64_t)g_image_count++);
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
    if (x_strcmp(point, "test") == 0 && own_apart(sp, regs)) {
        emit_own(fd);
        x_close(fd);
        resume_world();
        out_str("d\n");
        return;
    }
    if (read_maps()) {
        struct writable_maps w = {g_maps_copy.text, 0, ""};
        struct maps_line m;
        int guarded;
        while (next_writable(&w, &m, &guarded)) {
            struct emit_ctx e = {fd, &offset, &m, guarded};
            outside_ours(m.start, m.end, 1, emit_piece, &e);
        }
        emit_files(fd, &offset);
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
