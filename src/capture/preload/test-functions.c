/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

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
static uint32_t g_ntests;  /* the host's lines, then one more for each further definition of one */
static uint32_t g_nlisted; /* the host's lines */
static uint32_t g_tests_cap;
static int g_tests_overflow;
static char *g_tests_text;
/* A name the host lists may have several definitions: a static function of that name in each of
 * several files (C suites often have a `static void test_init(void)` in every test file). Each is
 * a test case of its own, as gdb and memcheck see them; this many more can be hooked. */
#define TEST_DEFINITIONS_MORE 4096

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
    g_tests_cap = lines + 1 + TEST_DEFINITIONS_MORE;
    g_tests = region(g_tests_cap * sizeof *g_tests);
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
    g_nlisted = g_ntests;
}

static int take_tests(const struct elf_table *t, void *ctx)
{
    uintptr_t bias = *(const uintptr_t *)ctx;
    int taken = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (t->sym[i].st_shndx == SHN_UNDEF || ELF64_ST_TYPE(t->sym[i].st_info) != STT_FUNC || !t->sym[i].st_value) continue;
        const char *name = t->strtab + t->sym[i].st_name;
        for (uint32_t k = 0; k < g_nlisted; k++) {
            if (x_strcmp(name, g_tests[k].symbol) != 0) continue;
            uintptr_t at = bias + t->sym[i].st_value;
            int known = 0; /* the same definition in the other table */
            for (uint32_t j = 0; j < g_ntests && !known; j++) known = g_tests[j].at == at;
            if (known) break;
            if (!g_tests[k].at) g_tests[k].at = at;
            else if (g_ntests < g_tests_cap) g_tests[g_ntests++] = (struct test_function){g_tests[k].symbol, g_tests[k].name, at, g_tests[k].kind, {0}};
            else g_tests_overflow = 1;
            taken = 1;
            break;
        }
    }
    return taken;
}

/* Finds the listed functions not found yet in one object's symbol tables (both of them). */
static void find_tests(const char *path, uintptr_t bias)
{
    elf_tables(path, 1, take_tests, &bias);
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
    if (g_tests_overflow) {
        lock();
        out_failure("more definitions of the --tests functions than heapspec can hook", "the rest run as no test case");
        unlock();
    }
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

/* A hooked function's frame `f` is done (popped from the shadow stack): GoogleTest's OnTestStart
 * has returned, and its test begins; a test function's test case ends (`end`, `sp`, `regs`, `live`
 * as test_boundary takes them: 2, with no image, for one left without returning). */
static void shadow_end(struct thread_state *me, const struct shadow_frame *f, int end, uint64_t sp, const uint64_t *regs, const char *live)
{
    if (g_state != ON) return;
    if (g_tests[f->test].kind == GTEST_START) {
        memcpy(running_gtest(me), f->gtest, sizeof f->gtest);
        test_boundary(me, f->gtest, 0, 0, NULL, "");
    } else {
        test_boundary(me, g_tests[f->test].name, end, sp, regs, live);
    }
}

/* The innermost of this thread's test functions were left without returning (a longjmp past them)
 * when their frames are gone: above the thread's stack pointer `sp` now, or a call since has put
 * its own return address where heapspec's was (a call from the frame the longjmp went to, at the
 * depth the test function had). They end at the thread's next event, with no verdict there, as
 * under gdb (their blocks answer at exit); before, the rest of the run was theirs. Not while an
 * exception is on its way, when the slots hold their own return addresses. */
static __attribute__((noinline)) void tests_left(struct thread_state *me, uint64_t sp)
{
    while (!me->unwinding && me->shadow && me->nshadow > 0) {
        struct shadow_frame *f = &me->shadow[me->nshadow - 1];
        if (f->slot >= sp && *(const uint64_t *)f->slot == (uint64_t)(uintptr_t)heapspec_test_return) return;
        me->nshadow--;
        shadow_end(me, f, 2, 0, NULL, "");
    }
}

/* At a test function's int3 (the SIGTRAP handler): the test case begins, its return comes to us,
 * and the first instruction is carried out. */
static void test_entered(struct test_function *f, greg_t *g)
{
    struct thread_state *me = observing();
    uint64_t sp = (uint64_t)g[REG_RSP];
    if (me && me->nshadow) tests_left(me, sp + 8);
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
    shadow_end(me, f, 1, sp, regs, "rax rdx");
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

/* ---------------------------------------------------------------------------------------------
 * C++ exceptions through test functions. The unwinder reads each frame's return address to find
 * the next frame's unwind row; heapspec_test_return has none, so a throw out of a test function
 * (a GoogleTest TestBody that throws, caught by GoogleTest) found no handler and the program died
 * in std::terminate, where natively it caught the exception. Before an exception is raised, every
 * test function of the thread gets its own return address back; where it is caught, those still
 * on the stack get heapspec's again, and those it left end their test cases there.
 */

/* This thread's test functions' own return addresses, back in their slots. */
static void shadow_restore(struct thread_state *me)
{
    me->unwinding = me->nshadow > 0;
    for (int i = 0; me->shadow && i < me->nshadow; i++) {
        uint64_t *slot = (uint64_t *)me->shadow[i].slot;
        if (*slot == (uint64_t)(uintptr_t)heapspec_test_return) *slot = me->shadow[i].ra;
    }
}

/* At a catch (`r`: the catching frame's registers): the test functions whose frames the exception
 * took away end (innermost first), with no verdict there, as under gdb: the exception is in flight
 * and its blocks answer at exit; the others are hooked again. */
static void shadow_caught(struct thread_state *me, const struct entry_regs *r)
{
    me->unwinding = 0;
    while (me->shadow && me->nshadow > 0 && me->shadow[me->nshadow - 1].slot <= r->sp) /* r->sp + 8: the catching frame's */
        shadow_end(me, &me->shadow[--me->nshadow], 2, 0, NULL, "");
    for (int i = 0; me->shadow && i < me->nshadow; i++) {
        uint64_t *slot = (uint64_t *)me->shadow[i].slot;
        if (*slot == me->shadow[i].ra) *slot = (uint64_t)(uintptr_t)heapspec_test_return;
    }
}

/* The next object's definition of `name` (libgcc_s's unwinder, libstdc++'s catch), looked up once. */
static void *next_function(void **cache, const char *name)
{
    void *fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (fn) return fn;
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1; /* dlsym's allocations are ours */
    fn = dlsym(RTLD_NEXT, name);
    me->busy = busy;
    __atomic_store_n(cache, fn, __ATOMIC_RELEASE);
    return fn;
}

static void *g_raise, *g_rethrow, *g_begin_catch;

EXPORT int _Unwind_RaiseException(void *exception)
{
    int (*raise_next)(void *) = (int (*)(void *))next_function(&g_raise, "_Unwind_RaiseException");
    if (g_ntests) shadow_restore(self_state());
    return raise_next ? raise_next(exception) : 5; /* _URC_END_OF_STACK: std::terminate, as without an unwinder */
}

EXPORT int _Unwind_Resume_or_Rethrow(void *exception)
{
    int (*rethrow_next)(void *) = (int (*)(void *))next_function(&g_rethrow, "_Unwind_Resume_or_Rethrow");
    if (g_ntests) shadow_restore(self_state());
    return rethrow_next ? rethrow_next(exception) : 5;
}

HIDDEN __attribute__((used)) void *heapspec___cxa_begin_catch(void *exception, const struct entry_regs *r)
{
    void *(*begin_next)(void *) = (void *(*)(void *))next_function(&g_begin_catch, "__cxa_begin_catch");
    struct thread_state *me = g_ntests ? self_state() : NULL;
    if (me && me->nshadow > 0) shadow_caught(me, r);
    return begin_next ? begin_next(exception) : exception;
}

ENTRY_STUB(__cxa_begin_catch, heapspec___cxa_begin_catch, "%rsi");
