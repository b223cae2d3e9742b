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
    uint32_t sid = stack_of(me, r); /* no lock: threads walk side by side */
    int locked = hook_lock();
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
    uint32_t sid = stack_of(me, r);
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
