/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

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

/* A boundary's lines go out within 10 ms of the last boundary flush, not at each boundary: 10,000
 * test cases made 20,000 writes, each waking the host for a few lines. A full buffer, the end, a
 * crash, a timeout's signal and exec still flush at once, so a program killed outright by another
 * process loses at most the last 10 ms of its lines. Under the lock. */
static void boundary_flush(void)
{
    static uint64_t last;
    uint64_t now = now_ns();
    if (now - last < 10000000ull) return;
    last = now;
    out_flush();
}

/* A test case begins or ends (a marker, from C or from JavaScript): the model gets every block
 * allocated before it, then the B or E line, and at an end with blocks of the test still live the
 * memory image of this moment, this thread's stack scanned from `sp` up, its registers `regs`
 * (`live`: the caller-saved ones still live, as the C line names them). An end with none of the test's blocks live needs no image: an
 * `e` line says so. */
/* `end`: 0 a begin, 1 an end, 2 an end by an exception that left the test function (no verdict
 * there: the exception is still in flight; its blocks answer at exit). */
static void test_boundary(struct thread_state *me, const char *name, int end, uint64_t sp, const uint64_t *regs, const char *live)
{
    me->busy = 1;
    lock();
    send_pending();
    peaks_send_test();
    int image = end == 1 && test_counted_live();
    out_str(end ? (image ? "E " : "e ") : "B ");
    out_dec((uint64_t)me->tid);
    out_c(' ');
    out_name(name);
    out_c('\n');
    if (image) heap_verdict("test", sp, regs, live, 0);
    g_test_running = !end;
    g_test_first_seq = g_seq;
    recent_restart();
    g_test_live = 0;
    if (!end) peaks_begin_test();
    boundary_flush();
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

/* The top of the stack mapping holding sp, less a word (the GDB script's stack_top). The mapping
 * is kept from the thread's last marker: a stack's top never moves (the main thread's grows
 * down, and a stack pointer below the kept start reads the maps again), and reading Node's maps
 * at every marker was a tenth of a script's time with 200 test cases. */
static uint64_t stack_top(struct thread_state *me, uint64_t sp)
{
    if (me->map_lo <= sp && sp < me->map_hi) return me->map_hi - 8;
    lock();
    int read = read_maps() != 0;
    const char *p = g_maps_copy.text;
    struct maps_line m;
    uint64_t top = sp;
    while (read && next_maps_line(&p, &m))
        if (m.start <= sp && sp < m.end) {
            me->map_lo = m.start;
            me->map_hi = m.end;
            top = m.end - 8;
            break;
        }
    unlock();
    return top;
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
    test_boundary(me, name, end, stack_top(me, r->sp), regs, "rdi");
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
static int install_crash_handler(int sig, int flags);
static void link_map_changed(void);

static int trap_entry(uintptr_t at, int kind)
{
    struct sigaction old;
    for (int i = 0; i < g_ntraps; i++)
        if (g_traps[i].at == at) return 1;
    if (g_ntraps >= MAX_TRAPS || __sigaction(SIGTRAP, NULL, &old) != 0) return 0;
    if (!((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == crash_handler)) {
        if (old.sa_handler != SIG_DFL) return 0; /* the program's own: leave it */
        if (install_crash_handler(SIGTRAP, 0) != 0) return 0;
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
    if (name && name[0] == 0 && l->l_prev == NULL) {
        if (g_program_unmarked) return;
        name = "/proc/self/exe"; /* the program, first in the list */
    }
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
