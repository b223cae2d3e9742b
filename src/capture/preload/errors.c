/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Memory errors an allocator sees, as memcheck reports them: a free or realloc of a pointer that
 * is not a live block (a double free, an interior, stack or static pointer: memcheck's
 * InvalidFree), and a block released by the wrong family (malloc'd and deleted, new'd and freed,
 * new[]'d and deleted: MismatchedFree).
 *
 * A bad free is reported and not passed to glibc, as memcheck ignores it: the program goes on
 * with its heap intact (glibc would abort on most of them, "free(): double free detected in
 * tcache 2"), and the run's figures are memcheck's. A mismatched free is reported and done, as
 * glibc does it natively (every family is glibc's malloc underneath).
 *
 * Which allocator made a block rides in the top bits of its table entry's thread id (ALLOC_*: the
 * operator new it came from, 0 for the malloc family); the host gets it on the block's A line, so a
 * suppression's `fun:_Znwm` first frame is exact here.
 *
 * The story of a bad pointer needs the stack of the free that released it first: every free
 * records its stack (the cached walk, a few loads) in a ring of its thread's last 16,384 freed
 * blocks (threads past the 64th share rings).
 *
 * The same ring is a quarantine like memcheck's freed-blocks queue: a freed block goes back to
 * glibc only once 256 KB of its thread's later frees are held (or 16,384 of them). A ring of one's
 * own keeps threads apart: with one for the process every free wrote the line another thread had
 * just written, and a block left it into another thread's free, which took the lock of the arena
 * the first thread allocates from (8 threads on 2 cores: 0.6 s against 0.8 s with the one ring). glibc would hand the address
 * out again at once, and a stale pointer to the freed block (a cache's `last`, a list's removed
 * node) would then keep the new block reachable where memcheck, whose address is still queued,
 * calls it lost; and a free through such a pointer would free the new block. memcheck holds 20 MB
 * (--freelist-vol): past what the caches hold, that would cost the fast path 80% (a block handed
 * out cold at every malloc), where 256 KB costs a few percent (measured on the bench); and every
 * held byte is a byte more in each whole-heap image (1 MB made debugee/field/many-tests' 1,000
 * leaky test ends 40% slower, 256 KB 12%). As under
 * memcheck (--freelist-big-blocks), a block of 1,000,000 bytes or more is not held.
 *
 * The line, one per error (ids are stacks already sent):
 *   Z kind tid sid addr story   kind: invalid-free | mismatched-free; sid: the bad call's stack
 *   story: freed BASE SIZE FREE_SID ALLOC_SID   inside a recently freed block
 *          alloc BASE SIZE ALLOC_SID            inside a live block (interior, or the mismatched one)
 *          stack THREAD FRAME ENTRY_SID         on the stack of thread THREAD (1: the first), in the
 *                                               frame of the bad call's FRAME-th caller (0: the first),
 *                                               whose function's entry is ENTRY_SID's one frame
 *          data BIAS PATH                       inside a loaded object's data (PATH's symbols name it)
 *          none                                 not stack'd, malloc'd or (recently) free'd
 */

/* The allocator a block came from (the host's table has the same order). */
enum {
    ALLOC_MALLOC,      /* malloc, calloc, memalign and the rest of the malloc family */
    ALLOC_NEW,         /* _Znwm */
    ALLOC_NEW_VEC,     /* _Znam */
    ALLOC_NEW_NT,      /* _ZnwmRKSt9nothrow_t */
    ALLOC_NEW_VEC_NT,  /* _ZnamRKSt9nothrow_t */
    ALLOC_NEW_AL,      /* _ZnwmSt11align_val_t */
    ALLOC_NEW_VEC_AL,  /* _ZnamSt11align_val_t */
    ALLOC_NEW_AL_NT,   /* _ZnwmSt11align_val_tRKSt9nothrow_t */
    ALLOC_NEW_VEC_AL_NT,
    ALLOC_REALLOC,     /* realloc (and reallocarray): a Leak suppression's fun:realloc, not fun:malloc */
};

/* memcheck's three families: what releases a block must be of the family that made it. */
enum { FAMILY_MALLOC, FAMILY_NEW, FAMILY_NEW_VEC };

static inline int family_of(unsigned alloc)
{
    return alloc == ALLOC_MALLOC || alloc == ALLOC_REALLOC ? FAMILY_MALLOC : (alloc & 1) ? FAMILY_NEW : FAMILY_NEW_VEC;
}


/* Recently freed blocks: a thread's last FREED_MAX frees, a ring; those from `tail` on may still be
 * held from glibc (the quarantine), `held` bytes of them. 16,384 entries are 384 KB, which stay in
 * a core's cache; at 65,536 every third free missed it, and the ring cost a free-heavy program 6%
 * of its time (debugee/bench: 0.78 s against 0.73 s at 16,384, the same as with no ring; at 32
 * bytes an entry, 6% too). `order` tells which of two rings' frees of one address came last: the
 * low 31 bits of g_frees before it, compared by age, so two frees 2^31 frees apart may tie wrong
 * (the story then shows the earlier one's stacks). */
struct freed {
    uint64_t addr;
    uint32_t size, alloc_sid, free_sid;
    uint32_t held : 1, order : 31;
};
_Static_assert(sizeof(struct freed) == 24, "an entry is 24 bytes");
#define FREED_MAX (1u << 14)
#define QUARANTINE_BYTES 262144u /* memcheck's --freelist-vol is 20,000,000 */
#define QUARANTINE_BIG 1000000u   /* memcheck's --freelist-big-blocks */
struct quarantine {
    struct freed *ring; /* touched as it fills; the first reserved at start-up, the others mapped at their first free */
    uint64_t head;      /* frees so far: the newest is at head - 1 */
    uint64_t tail;      /* the oldest entry that may still be held */
    uint64_t held;
} __attribute__((aligned(64)));
#define QUARANTINES 64
static struct quarantine g_quarantines[QUARANTINES];
static uint64_t g_frees; /* every ring's pushes */

/* The calling thread's quarantine, under the lock: its own, else the first. */
static __attribute__((noinline)) struct quarantine *quarantine_attach(struct thread_state *me)
{
    struct quarantine *q = &g_quarantines[me->shard & (QUARANTINES - 1)];
    if (!q->ring && !(q->ring = region((size_t)FREED_MAX * sizeof(struct freed)))) q = &g_quarantines[0];
    return me->quarantine = q;
}
static inline struct quarantine *quarantine_of(struct thread_state *me)
{
    return LIKELY(me->quarantine != NULL) ? me->quarantine : quarantine_attach(me);
}

/* Blocks leaving the quarantine, gathered under the lock and handed to glibc after it: glibc's
 * free (a munmap for a big block, its arena's lock when the thread's cache is full) never runs
 * while heapspec's lock is held. Past RELEASED_MAX in one call (a big block evicting many small
 * ones) the rest are freed under the lock, which is correct, only slower. */
#define RELEASED_MAX 16
struct released {
    uint32_t n;
    void *p[RELEASED_MAX];
};

static inline void released_add(struct released *out, void *p)
{
    if (LIKELY(out->n < RELEASED_MAX)) out->p[out->n++] = p;
    else __libc_free(p);
}

/* Outside the lock: glibc gets the blocks back. Runs inside an allocator call (busy). */
static inline void released_free(struct released *out)
{
    for (uint32_t i = 0; i < out->n; i++) __libc_free(out->p[i]);
    out->n = 0;
}

/* Under the lock, inside a free: no allocation (the ring is reserved at start-up: without it
 * heapspec does not start). freed_release_oldest takes the oldest entry's block out of the
 * quarantine if it is still held, into OUT. The block at ADDR, freed by the program, is the ring's
 * now; it leaves at once (into OUT) when it is big, else when the quarantine is full. A block past
 * 4 GiB keeps its size's low half (only a story's words read it). */
static inline void freed_release_oldest(struct quarantine *q, struct released *out)
{
    struct freed *oldest = &q->ring[q->tail++ & (FREED_MAX - 1)];
    if (!oldest->held) return;
    oldest->held = 0;
    q->held -= oldest->size;
    released_add(out, (void *)oldest->addr);
    /* A block leaves the quarantine thousands of frees after it entered: its memory and its table
     * slot are cold. glibc hands it out again at the next malloc of its size (its thread cache is
     * last in, first out), which then takes that slot; and the next block to leave is freed to
     * glibc, which reads the header before it. Both are fetched now, a call ahead: on node driving
     * an addon (400,000 joins) the three misses were a fifth of the run's time, now a few percent. */
    block_prefetch(oldest->addr);
    const struct freed *next = &q->ring[q->tail & (FREED_MAX - 1)];
    if (next->held) __builtin_prefetch((const char *)next->addr - 16, 1, 3);
}

static inline void freed_push(struct thread_state *me, uint64_t addr, uint64_t size, uint32_t alloc_sid, uint32_t free_sid, struct released *out)
{
    struct quarantine *q = quarantine_of(me);
    if (UNLIKELY(q->head - q->tail == FREED_MAX)) freed_release_oldest(q, out); /* its entry is overwritten */
    uint32_t held = size < QUARANTINE_BIG;
    struct freed *f = &q->ring[q->head++ & (FREED_MAX - 1)];
    *f = (struct freed){addr, (uint32_t)size, alloc_sid, free_sid, held, (uint32_t)g_frees++ & 0x7FFFFFFFu};
    if (!held) {
        released_add(out, (void *)addr);
        return;
    }
    q->held += size;
    while (q->held > QUARANTINE_BYTES) freed_release_oldest(q, out);
}

/* In a forked child, which heapspec does not observe (its frees go straight to glibc): the blocks
 * every thread's queue still holds go back to glibc, as the program freed them. The child has its
 * forking thread alone, and glibc's malloc is usable again once fork returns. */
static void quarantines_release_all(void)
{
    for (int k = 0; k < QUARANTINES; k++) {
        struct quarantine *q = &g_quarantines[k];
        for (; q->ring && q->tail < q->head; q->tail++) {
            struct freed *f = &q->ring[q->tail & (FREED_MAX - 1)];
            if (f->held) __libc_free((void *)f->addr);
            f->held = 0;
        }
        q->held = 0;
    }
}

/* A stack id for a Z line, sent if it was not yet; the empty stack where there is none. */
static uint32_t error_sid(uint32_t sid)
{
    if (sid == UINT32_MAX) sid = empty_sid();
    if (sid != UINT32_MAX) stack_send(sid);
    return sid == UINT32_MAX ? 0 : sid;
}

static void error_head(const char *kind, struct thread_state *me, uint32_t sid, uint64_t addr)
{
    uint32_t s = error_sid(sid);
    out_str("Z ");
    out_str(kind);
    out_c(' ');
    out_dec((uint64_t)me->tid);
    out_c(' ');
    out_dec(s);
    out_c(' ');
    out_hex(addr);
}

/* A story's block: " freed BASE SIZE" or " alloc BASE SIZE". */
static void out_block(const char *what, uint64_t base, uint64_t size)
{
    out_c(' ');
    out_str(what);
    out_c(' ');
    out_hex(base);
    out_c(' ');
    out_dec(size);
    out_c(' ');
}

/* Under the lock: a block released by the wrong family. */
static __attribute__((noinline, cold)) void report_mismatch(struct thread_state *me, const struct block *b, uint32_t sid)
{
    uint32_t alloc_sid = error_sid(block_sid(b));
    error_head("mismatched-free", me, sid, b->addr);
    out_block("alloc", b->addr, b->size);
    out_dec(alloc_sid);
    out_c('\n');
}

/* Under the lock: a pointer on the calling thread's stack, in the frame of the bad call's caller
 * number k (its function holds pcs[k], its words lie from its call's stack pointer, cfas[k], up to
 * its caller's). memcheck names the frame by its function's entry line: a one-frame stack of the
 * entry (as a return address, one past it) gives the host that line. */
static int report_on_stack(struct thread_state *me, uint64_t addr, uint32_t sid, const struct entry_regs *r)
{
    if (!r || addr < r->sp || addr >= thread_hi(me)) return 0;
    uint64_t pcs[DEPTH], cfas[DEPTH];
    uint32_t n = walk_stack(me, r, pcs, cfas, DEPTH, NULL);
    uint32_t k = 0;
    while (k + 1 < n && addr >= cfas[k + 1]) k++;
    struct fde f;
    uint64_t entry = n && find_fde(pcs[k] - 1, &f) ? f.start + 1 : 0;
    uint32_t entry_sid = error_sid(stack_intern(&entry, entry ? 1 : 0));
    error_head("invalid-free", me, sid, addr);
    out_str(" stack ");
    out_dec(me == &g_spare_state ? 0 : (uint64_t)(me - g_states) + 1);
    out_c(' ');
    out_dec(k);
    out_c(' ');
    out_dec(entry_sid);
    out_c('\n');
    return 1;
}

/* A pointer into a loaded object's data: the object and its load bias, for the host to name the
 * variable from its symbols. Outside the lock (dladdr takes ld.so's, which a thread inside dlopen
 * may hold while it waits for ours); busy. Returns 0 when no object holds addr. */
static int data_story(uint64_t addr, uint64_t *bias, char *path, size_t room)
{
    Dl_info info;
    if (!dladdr((void *)(uintptr_t)addr, &info) || !info.dli_fbase) return 0;
    const Elf64_Ehdr *eh = info.dli_fbase;
    *bias = eh->e_type == ET_EXEC ? 0 : (uint64_t)(uintptr_t)info.dli_fbase;
    const char *name = info.dli_fname;
    if (!name || !*name) { /* the program itself */
        long n = sys3(SYS_readlink, (long)"/proc/self/exe", (long)path, (long)room - 1);
        path[n > 0 ? n : 0] = 0;
    } else {
        size_t n = x_strlen(name);
        if (n >= room) n = room - 1;
        memcpy(path, name, n);
        path[n] = 0;
    }
    return path[0] != 0;
}

/* Under the lock: a free or realloc of ADDR, no live block, inside a recently freed block or a
 * live one (an interior pointer), or on this thread's stack. Returns 0 when none of them holds it. */
static int report_invalid(struct thread_state *me, uint64_t addr, uint32_t sid, const struct entry_regs *r)
{
    const struct freed *last = NULL; /* the latest free of a block that held addr, in any ring */
    uint32_t last_age = 0;
    for (int k = 0; k < QUARANTINES; k++) {
        const struct quarantine *q = &g_quarantines[k];
        uint64_t oldest = q->head > FREED_MAX ? q->head - FREED_MAX : 0;
        for (uint64_t i = q->head; q->ring && i-- > oldest;) {
            const struct freed *f = &q->ring[i & (FREED_MAX - 1)];
            if (addr == f->addr || (addr > f->addr && addr < f->addr + f->size)) {
                uint32_t age = ((uint32_t)g_frees - f->order) & 0x7FFFFFFFu;
                if (!last || age < last_age) last = f, last_age = age;
                break;
            }
        }
    }
    if (last) {
        uint32_t fs = error_sid(last->free_sid), as = error_sid(last->alloc_sid);
        error_head("invalid-free", me, sid, addr);
        out_block("freed", last->addr, last->size);
        out_dec(fs);
        out_c(' ');
        out_dec(as);
        out_c('\n');
        return 1;
    }
    for (uint64_t i = 0; i < g_blocks_cap; i++) {
        const struct block *b = &g_blocks[i];
        if (b->addr && addr > b->addr && addr < b->addr + b->size) {
            uint32_t as = error_sid(block_sid(b));
            error_head("invalid-free", me, sid, addr);
            out_block("alloc", b->addr, b->size);
            out_dec(as);
            out_c('\n');
            return 1;
        }
    }
    return report_on_stack(me, addr, sid, r);
}

/* A free or realloc of a pointer that is no live block: the error (its count is the caller's).
 * Takes and drops the lock itself; busy. */
static __attribute__((noinline, cold)) void invalid_free(struct thread_state *me, uint64_t addr, uint32_t sid, const struct entry_regs *r)
{
    int locked = hook_lock();
    int told = report_invalid(me, addr, sid, r);
    hook_unlock(locked);
    if (told) return;
    uint64_t bias = 0;
    char path[512];
    int data = data_story(addr, &bias, path, sizeof path);
    locked = hook_lock();
    error_head("invalid-free", me, sid, addr);
    if (data) {
        out_str(" data ");
        out_hex(bias);
        out_c(' ');
        out_str(path);
    } else {
        out_str(" none");
    }
    out_c('\n');
    hook_unlock(locked);
}

/* Under the lock: the free of a live block's address by FAMILY: checked, remembered, recorded, and
 * the block given to the quarantine (what leaves it goes into OUT, for the caller to free after the
 * unlock). Returns 0 when ADDR is no live block (the caller reports it outside the lock and keeps
 * it from glibc). */
static inline __attribute__((always_inline)) int release(struct thread_state *me, void *p, int family, uint32_t sid, struct released *out)
{
    uint64_t addr = (uint64_t)p;
    uint64_t at = block_slot(addr);
    struct block *b = &g_blocks[at];
    if (UNLIKELY(!b->addr)) {
        g_n_frees++;
        return 0;
    }
    if (UNLIKELY(family_of(b->alloc) != family)) report_mismatch(me, b, sid);
    freed_push(me, addr, b->size, block_sid(b), sid, out);
    record_free_at(me, at);
    return 1;
}
