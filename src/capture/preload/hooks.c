/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

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
static void tests_left(struct thread_state *me, uint64_t sp);

/* A test function this thread was inside may have been left without returning (test-functions.c). */
static inline __attribute__((always_inline)) void check_tests_left(struct thread_state *me, const struct entry_regs *r)
{
    if (UNLIKELY(me->nshadow != 0)) tests_left(me, r->sp);
}
/* A timeout came while a thread was inside heapspec. Every hook reads it on its way out: it has a
 * cache line of its own, not one a free writes under the lock (the quarantine's counts were beside it). */
static struct {
    volatile int pending;
    char pad[60];
} __attribute__((aligned(64))) g_timeout;

/* The calling thread's state when its allocations are the program's, else NULL. */
static inline struct thread_state *observing(void)
{
    if (UNLIKELY(g_state != ON) && !ready()) return NULL;
    struct thread_state *me = single_threaded() ? g_first : self_state(); /* ON: g_first is set */
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

static inline __attribute__((always_inline)) void note_block(struct thread_state *me, void *p, size_t size, const struct entry_regs *r, unsigned alloc)
{
    check_tests_left(me, r);
    me->busy = 1;
    uint32_t sid = stack_of(me, r); /* no lock: threads walk side by side */
    int locked = hook_lock();
    record_alloc(me, p, size, sid, alloc);
    hook_unlock(locked);
    me->busy = 0;
    if (UNLIKELY(g_timeout.pending)) timeout_now();
}

static inline __attribute__((always_inline)) void note_alloc(struct thread_state *me, void *p, size_t size, const struct entry_regs *r)
{
    note_block(me, p, size, r, ALLOC_MALLOC);
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
    if (g_blocks) {
        struct block *b = &g_blocks[block_slot((uint64_t)p)];
        if (b->addr == (uint64_t)p) return b->size;
    }
    return malloc_usable_size(p);
}

/* A free, delete or delete[] (FAMILY) of p: checked against the block table, kept from glibc when
 * p is no live block, else held in the quarantine (errors.c). */
static inline __attribute__((always_inline)) void release_checked(struct thread_state *me, void *p, int family, const struct entry_regs *r)
{
    check_tests_left(me, r);
    me->busy = 1;
    uint32_t sid = stack_of(me, r); /* no lock: threads walk side by side */
    struct released out;
    out.n = 0;
    int locked = hook_lock();
    int live = release(me, p, family, sid, &out);
    hook_unlock(locked);
    released_free(&out);
    if (UNLIKELY(!live)) invalid_free(me, (uint64_t)p, error_stack(me, r, sid), r);
    me->busy = 0;
    if (UNLIKELY(g_timeout.pending)) timeout_now();
}

static inline __attribute__((always_inline)) void dealloc(void *p, int family, const struct entry_regs *r)
{
    struct thread_state *me;
    if (!p) return;
    if ((me = observing())) release_checked(me, p, family, r);
    else __libc_free(p);
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
        release_checked(me, old, FAMILY_MALLOC, r);
        return NULL;
    }
    check_tests_left(me, r);
    me->busy = 1;
    uint32_t sid = stack_of(me, r); /* no lock: threads walk side by side */
    int locked = hook_lock();
    size_t keep = 0;
    if (old) {
        struct block *b = g_blocks ? &g_blocks[block_slot((uint64_t)old)] : NULL;
        if (UNLIKELY(b && !b->addr)) {
            /* memcheck counts it as an allocation and a free, and returns NULL */
            g_n_allocs++;
            g_n_frees++;
            g_n_bytes += n;
            hook_unlock(locked);
            invalid_free(me, (uint64_t)old, error_stack(me, r, sid), r);
            me->busy = 0;
            return NULL;
        }
        if (UNLIKELY(b && family_of(b->alloc) != FAMILY_MALLOC)) {
            report_mismatch(me, b, sid);
            b->alloc = ALLOC_MALLOC; /* once: its release below is realloc's own */
        }
        keep = block_size(old);
    }
    hook_unlock(locked);
    void *p = __libc_malloc(n);
    if (!p) { /* a failed realloc leaves the old block alone; errno is malloc's */
        me->busy = 0;
        return NULL;
    }
    if (keep > n) keep = n;
    if (keep) memcpy(p, old, keep);
    scrub((char *)p + keep, n - keep);
    struct released out;
    out.n = 0;
    locked = hook_lock();
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
        /* the table follows, without lines of its own */
        if (old) {
            uint64_t at = block_slot((uint64_t)old);
            if (g_blocks[at].addr) {
                freed_push(me, (uint64_t)old, g_blocks[at].size, block_sid(&g_blocks[at]), sid, &out);
                if (test_owns(&g_blocks[at])) g_test_live--;
                block_delete(at);
            } else {
                released_add(&out, old);
            }
        }
        block_put(me, p, n, sid, ALLOC_REALLOC);
    } else {
        /* the model's reallocate: a free of the old block and an allocation of the new */
        if (old) release(me, old, FAMILY_MALLOC, sid, &out);
        record_alloc(me, p, n, sid, ALLOC_REALLOC);
    }
    hook_unlock(locked);
    released_free(&out);
    me->busy = 0;
    if (UNLIKELY(g_timeout.pending)) timeout_now();
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

HIDDEN __attribute__((used)) void heapspec_free(void *p, const struct entry_regs *r) { dealloc(p, FAMILY_MALLOC, r); }

ENTRY_STUB(free, heapspec_free, "%rsi");

/* ---------------------------------------------------------------------------------------------
 * C++'s operator new and delete, as memcheck replaces them: libstdc++'s call malloc and free, and
 * its new[] and delete[] only jump to new and delete, so only here can a block's family be known.
 * An allocation that fails goes to libstdc++'s own operator (its new-handler loop, its bad_alloc);
 * the block it makes then gets its family here.
 */

static inline int nothrow_new(unsigned alloc)
{
    return alloc == ALLOC_NEW_NT || alloc == ALLOC_NEW_VEC_NT || alloc == ALLOC_NEW_AL_NT || alloc == ALLOC_NEW_VEC_AL_NT;
}

/* libstdc++'s `name`, looked up with the thread busy (dlsym may allocate). */
static void *libstdcxx_function(struct thread_state *me, const char *name)
{
    int busy = me->busy;
    me->busy = 1;
    void *fn = dlsym(RTLD_NEXT, name);
    me->busy = busy;
    return fn;
}

typedef void (*new_handler_fn)(void);

/* A failed throwing operator new that libstdc++'s nothrow one called: the throwing one's loop (the
 * program's new-handler, then the allocation again), but where that would throw std::bad_alloc
 * when no handler is left, NULL, which the nothrow operator returns as it would have returned
 * after catching the bad_alloc: that exception is a 136-byte block, allocated and freed inside the
 * call, that memcheck's nothrow new never makes. A bad_alloc the handler throws itself goes on to
 * the nothrow operator's catch through these frames, as natively. */
static __attribute__((noinline, cold)) void *nothrow_retry(struct thread_state *me, size_t n, size_t align, unsigned alloc, const struct entry_regs *r)
{
    new_handler_fn (*get_handler)(void) = (new_handler_fn (*)(void))libstdcxx_function(me, "_ZSt15get_new_handlerv");
    for (;;) {
        new_handler_fn handler = get_handler ? get_handler() : NULL;
        if (!handler) return NULL;
        handler();
        void *p = align ? __libc_memalign(align, n) : __libc_malloc(n);
        if (p) {
            struct thread_state *now;
            if ((now = observing())) {
                scrub(p, n);
                note_block(now, p, n, r, alloc);
            }
            return p;
        }
    }
}

static __attribute__((noinline, cold)) void *libstdcxx_new(const char *name, size_t n, size_t align, unsigned alloc, const struct entry_regs *r)
{
    struct thread_state *me = self_state();
    int nothrow = nothrow_new(alloc);
    if (me->nothrow && !nothrow) {
        me->nothrow = 0; /* its first call: the handler's own operator new calls are the program's */
        return nothrow_retry(me, n, align, alloc, r);
    }
    void *fn = libstdcxx_function(me, name);
    void *p = NULL;
    if (fn) {
        me->nothrow = nothrow;
        p = align ? ((void *(*)(size_t, size_t))fn)(n, align) : ((void *(*)(size_t))fn)(n);
        me->nothrow = 0;
    } else if (!nothrow) {
        static const char msg[] = "heapspec: operator new failed and libstdc++'s, which would throw, is not loaded\n";
        x_write(2, msg, sizeof msg - 1);
        x_tgkill(x_getpid(), x_gettid(), SIGABRT);
        x_exit_group(134);
    }
    if (p && observing()) {
        int locked = hook_lock();
        struct block *b = g_blocks ? &g_blocks[block_slot((uint64_t)p)] : NULL;
        if (b && b->addr) b->alloc = alloc;
        hook_unlock(locked);
    }
    return p;
}

/* memcheck counts the size asked for (new of 0 bytes is a block of 0). */
static inline __attribute__((always_inline)) void *new_block(size_t n, size_t align, unsigned alloc, const char *name, const struct entry_regs *r)
{
    void *p = align ? __libc_memalign(align, n) : __libc_malloc(n);
    if (UNLIKELY(!p)) return libstdcxx_new(name, n, align, alloc, r);
    struct thread_state *me;
    if ((me = observing())) {
        scrub(p, n);
        note_block(me, p, n, r, alloc);
    }
    return p;
}

#define NEW_HOOK(sym, alloc)                                                                              \
    HIDDEN __attribute__((used)) void *heapspec_##sym(size_t n, const struct entry_regs *r)              \
    {                                                                                                     \
        return new_block(n, 0, alloc, #sym, r);                                                           \
    }                                                                                                     \
    ENTRY_STUB(sym, heapspec_##sym, "%rsi")
#define NEW_HOOK_NT(sym, alloc, plain)                                                                    \
    HIDDEN __attribute__((used)) void *heapspec_##sym(size_t n, const void *nt, const struct entry_regs *r) \
    {                                                                                                     \
        (void)nt;                                                                                         \
        return new_block(n, 0, alloc, #plain, r);                                                         \
    }                                                                                                     \
    ENTRY_STUB(sym, heapspec_##sym, "%rdx")
#define NEW_HOOK_AL(sym, alloc)                                                                           \
    HIDDEN __attribute__((used)) void *heapspec_##sym(size_t n, size_t align, const struct entry_regs *r) \
    {                                                                                                     \
        return new_block(n, align, alloc, #sym, r);                                                       \
    }                                                                                                     \
    ENTRY_STUB(sym, heapspec_##sym, "%rdx")
#define NEW_HOOK_AL_NT(sym, alloc, plain)                                                                 \
    HIDDEN __attribute__((used)) void *heapspec_##sym(size_t n, size_t align, const void *nt, const struct entry_regs *r) \
    {                                                                                                     \
        (void)nt;                                                                                         \
        return new_block(n, align, alloc, #plain, r);                                                     \
    }                                                                                                     \
    ENTRY_STUB(sym, heapspec_##sym, "%rcx")

/* The nothrow forms fall back on the throwing ones' handler loop only through libstdc++'s own
 * nothrow operator, which catches what the throwing one throws (nothrow_retry). */
NEW_HOOK(_Znwm, ALLOC_NEW);
NEW_HOOK(_Znam, ALLOC_NEW_VEC);
NEW_HOOK_NT(_ZnwmRKSt9nothrow_t, ALLOC_NEW_NT, _ZnwmRKSt9nothrow_t);
NEW_HOOK_NT(_ZnamRKSt9nothrow_t, ALLOC_NEW_VEC_NT, _ZnamRKSt9nothrow_t);
NEW_HOOK_AL(_ZnwmSt11align_val_t, ALLOC_NEW_AL);
NEW_HOOK_AL(_ZnamSt11align_val_t, ALLOC_NEW_VEC_AL);
NEW_HOOK_AL_NT(_ZnwmSt11align_val_tRKSt9nothrow_t, ALLOC_NEW_AL_NT, _ZnwmSt11align_val_tRKSt9nothrow_t);
NEW_HOOK_AL_NT(_ZnamSt11align_val_tRKSt9nothrow_t, ALLOC_NEW_VEC_AL_NT, _ZnamSt11align_val_tRKSt9nothrow_t);

/* Every delete takes the pointer first; the rest (a size, an alignment, nothrow) changes nothing
 * here but where the stub passes the saved registers. */
#define DELETE_HOOK(sym, family, regs_arg, ...)                                                  \
    HIDDEN __attribute__((used)) void heapspec_##sym(void *p, __VA_ARGS__ const struct entry_regs *r) \
    {                                                                                            \
        dealloc(p, family, r);                                                                   \
    }                                                                                            \
    ENTRY_STUB(sym, heapspec_##sym, regs_arg)

DELETE_HOOK(_ZdlPv, FAMILY_NEW, "%rsi", );
DELETE_HOOK(_ZdaPv, FAMILY_NEW_VEC, "%rsi", );
DELETE_HOOK(_ZdlPvm, FAMILY_NEW, "%rdx", size_t a1,);
DELETE_HOOK(_ZdaPvm, FAMILY_NEW_VEC, "%rdx", size_t a1,);
DELETE_HOOK(_ZdlPvRKSt9nothrow_t, FAMILY_NEW, "%rdx", const void *a1,);
DELETE_HOOK(_ZdaPvRKSt9nothrow_t, FAMILY_NEW_VEC, "%rdx", const void *a1,);
DELETE_HOOK(_ZdlPvSt11align_val_t, FAMILY_NEW, "%rdx", size_t a1,);
DELETE_HOOK(_ZdaPvSt11align_val_t, FAMILY_NEW_VEC, "%rdx", size_t a1,);
DELETE_HOOK(_ZdlPvmSt11align_val_t, FAMILY_NEW, "%rcx", size_t a1, size_t a2,);
DELETE_HOOK(_ZdaPvmSt11align_val_t, FAMILY_NEW_VEC, "%rcx", size_t a1, size_t a2,);
DELETE_HOOK(_ZdlPvSt11align_val_tRKSt9nothrow_t, FAMILY_NEW, "%rcx", size_t a1, const void *a2,);
DELETE_HOOK(_ZdaPvSt11align_val_tRKSt9nothrow_t, FAMILY_NEW_VEC, "%rcx", size_t a1, const void *a2,);
