/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Live blocks. Each one is "sent" (the model knows it: an A line went out) or not yet; a block not
 * yet sent that is freed before the next boundary only adds to the counts of the N line.
 */

/* Allocation orders kept in a slot: 2^43 is 8.8 trillion allocations, 61 hours at 40 million a
 * second; a run past it is told so (send_pending), never silently misordered. */
#define SEQ_BITS 43

/* A slot of the table: 24 bytes (the table is the interposer's biggest memory: 5,000,000 live
 * blocks took 512 MB at 32 bytes a slot and half load, 192 MB now). The fields keep their names,
 * so `b->addr`, `b->size` and `b->seq` read as plain numbers; the stack id goes through block_sid. */
struct block {
    uint64_t addr;          /* 0: an empty slot */
    uint64_t size : 47;     /* a block is smaller than x86-64's 47-bit user address space */
    uint64_t alloc : 4;     /* the allocator (errors.c's ALLOC_*) */
    uint64_t unsent : 1;    /* the model does not know it yet */
    uint64_t seq : SEQ_BITS; /* allocation order: blocks go out in it, so loss records tie as under gdb */
    uint64_t sid_bits : 21; /* SID_NONE: no stack */
};
#define SID_NONE ((1u << 21) - 1)
_Static_assert(sizeof(struct block) == 24, "a slot is 24 bytes");

static inline uint32_t block_sid(const struct block *b) { return b->sid_bits == SID_NONE ? UINT32_MAX : (uint32_t)b->sid_bits; }

static struct block *g_blocks;
static uint64_t g_blocks_cap, g_nblocks;
static int g_blocks_shift; /* 64 - log2(capacity) */
/* The counts of the next N line cost the hot path nothing but the bytes: a block recorded since
 * the last boundary is either live and unsent then (it goes out as an A line), or freed (it is one
 * of N's allocations and frees), or replaced unseen; so N's counts come from the blocks recorded
 * since (g_seq - g_seq_mark) less the A lines, with adjustments for the events that are no block
 * (a bad free or realloc) or a block that is none (one replaced unseen). Likewise the unsent blocks
 * are the live ones less those the model knows (g_sent_live), which change off the hot path. */
static uint64_t g_seq_mark, g_sent_live;
static int64_t g_n_allocs, g_n_frees; /* adjustments to the counts of the next N line */
static uint64_t g_n_bytes;            /* bytes of its allocations, not yet sent */

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

/* Whether a block in the table is one of the running test case's (g_test_live counts it). */
static inline int test_owns(const struct block *b) { return g_test_running && b->seq >= g_test_first_seq; }
static uint32_t *g_dirty;
static uint32_t g_ndirty;
static uint32_t g_empty_sid = UINT32_MAX;

/* The empty stack's id, interned at its first use: UINT32_MAX when there is no room for it. */
static inline uint32_t empty_sid(void)
{
    if (g_empty_sid == UINT32_MAX) g_empty_sid = stack_intern(NULL, 0);
    return g_empty_sid;
}

/* A block the model is about to learn of has a stack, the empty one if it had none. */
static inline void block_give_stack(struct block *b)
{
    if (b->sid_bits == SID_NONE) b->sid_bits = empty_sid();
}

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

/* The table grows at half full while it is under 1,048,576 slots (24 MB), at three quarters past
 * that. A page's blocks share a window of 256 slots (block_home), so a dense page fills its window
 * by itself, and near three quarters the windows of a small table overlap into runs of hundreds
 * of slots: node driving an addon (its 24,000 live blocks in 32,768 slots) probed 29 slots a
 * lookup, at half full 0.8. A big table keeps three quarters, its memory being the program's peak
 * (1,200,000 blocks fit 2,097,152 slots, 5,000,000 blocks 8,388,608, either way). */
#define BLOCKS_DENSE (1u << 20)
static inline int blocks_full(void)
{
    return g_blocks_cap < BLOCKS_DENSE ? (g_nblocks + 1) * 2 > g_blocks_cap : (g_nblocks + 1) * 4 > g_blocks_cap * 3;
}

/* A block's home slot keeps the blocks of one page together: a page's place is hashed and its
 * blocks follow in address order, so a run of allocations touches a few cache lines of the table
 * instead of one cold line each (at 5,000,000 live blocks the probe's cache miss was most of a
 * malloc's cost). */
static inline uint64_t block_home(uint64_t addr, int shift, uint64_t cap)
{
    return (((addr >> 12) * 0x9E3779B97F4A7C15ull >> shift) + ((addr >> 4) & 255)) & (cap - 1);
}

static int blocks_grow(void)
{
    uint64_t cap = g_blocks_cap ? g_blocks_cap * 2 : 1 << 12; /* 96 KB, touched as it fills: a small heap probes at a low load */
    struct block *tab = region(cap * sizeof(struct block));
    if (!tab) return 0;
    int bits = __builtin_ctzll(cap);
    /* The old table goes back to the kernel as it is read, 4,096 slots (24 pages) at a time: at
     * 5,000,000 blocks both whole would be 288 MB at once, beside the program's heap. */
    for (uint64_t i = 0; i < g_blocks_cap; i++) {
        if (g_blocks[i].addr) {
            uint64_t at = block_home(g_blocks[i].addr, 64 - bits, cap);
            while (tab[at].addr) at = (at + 1) & (cap - 1);
            tab[at] = g_blocks[i];
        }
        if (((i + 1) & 4095) == 0) x_munmap(&g_blocks[i + 1 - 4096], 4096 * sizeof(struct block));
    }
    if (g_blocks) region_free(g_blocks, g_blocks_cap * sizeof(struct block));
    g_blocks = tab;
    g_blocks_cap = cap;
    g_blocks_shift = 64 - bits;
    return 1;
}

/* Under the lock, inside an allocator call (a free's quarantine): the cache line where a block at
 * ADDR would be looked for first, fetched on its way. Calls nothing; a prefetch never faults. */
static inline __attribute__((always_inline)) void block_prefetch(uint64_t addr)
{
    if (g_blocks) __builtin_prefetch(&g_blocks[block_home(addr, g_blocks_shift, g_blocks_cap)], 1, 3);
}

static inline uint64_t block_slot(uint64_t addr)
{
    uint64_t at = block_home(addr, g_blocks_shift, g_blocks_cap);
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
        uint64_t home = block_home(g_blocks[i].addr, g_blocks_shift, g_blocks_cap);
        /* move i into the hole unless its home lies cyclically in (hole, i] */
        if ((i > hole && (home <= hole || home > i)) || (i < hole && home <= hole && home > i)) {
            g_blocks[hole] = g_blocks[i];
            hole = i;
        }
    }
    g_blocks[hole].addr = 0;
    g_nblocks--;
}

/* The seq of the first block allocated since the last batch: every unsent block's is at or above it. */
static uint64_t g_batch_from;

/* The addresses allocated since the last test boundary (the seq g_recent_from), while they fit: the
 * unsent blocks, and a test end's own blocks, are found among them rather than in the whole table
 * (300 test cases over a fixture of 100,000 live blocks read 6 MB of table three times at each
 * leaky end). g_nrecent counts on past RECENT_MAX: then the table is read. An address allocated
 * twice is listed twice. */
#define RECENT_MAX 4096
static uint64_t g_recent[RECENT_MAX];
static uint64_t g_recent_slots[RECENT_MAX]; /* send_pending's: the listed blocks it sends, each once */
static uint64_t g_nrecent, g_recent_from;

/* Whether g_recent lists every block allocated since the seq `from`. */
static inline int recent_covers(uint64_t from) { return !g_all_events && g_nrecent <= RECENT_MAX && g_recent_from <= from; }

/* A test boundary is past: the list starts anew. Under the lock. */
static inline void recent_restart(void)
{
    g_nrecent = 0;
    g_recent_from = g_seq;
}

/* Objects mode with the observed objects known by their path ends (runNode's default): a block
 * without a frame of one is none of the run's figures, and the host never needs it. The scan here
 * judges the whole heap, and its V line names only the observed blocks; the block's allocation and
 * free go out in its stack's counts (n lines), as they do for a block freed before a boundary.
 * Node's 24,000 start-up blocks went out as records at the first boundary and came back as F lines
 * at exit, a tail of the host's work after the program had ended. Not with memory images for the
 * host (it scans them with its model), nor when every event goes out; g_send_all sends them too
 * (a scan that falls back on an image). */
static int g_send_all;
static inline int kept_back(const struct block *b)
{
    return g_by_stack && g_observe[0] && !g_scan_image && !g_all_events && !g_send_all && !stack_observed(block_sid(b));
}

/* A block about to go out in a batch: its stack's S line goes first. */
static inline void batch_stack(struct block *b)
{
    block_give_stack(b);
    stack_send(block_sid(b));
}

/* A block's record in the batch: the model knows it from now on. */
static inline void batch_sent(const struct block *b)
{
    out_batch_block(b->addr, b->size, b->seq, block_sid(b), b->alloc);
    g_sent_live++;
    g_n_bytes -= b->size;
    tally(block_sid(b), -1, 0, -(int64_t)b->size);
}

/* Before a boundary: every block the model does not know yet, and the counts. The blocks go out as
 * one binary batch (protocol.c's out_batch_*), in the table's order with their seqs, which give
 * the host the allocation order: no sort here, and no text line per block (5 million blocks were
 * seconds of formatting and parsing). Their stacks' S lines come first. */
static void send_pending(void)
{
    uint64_t unsent = g_all_events ? 0 : g_nblocks - g_sent_live;
    /* by stack, the counts go out in n lines instead (and blocks kept back stay unsent) */
    if (!g_all_events && !g_by_stack) {
        /* every block recorded since the last boundary that is not sent now was freed or replaced */
        uint64_t recorded = g_seq - g_seq_mark - unsent;
        g_n_allocs += (int64_t)recorded;
        g_n_frees += (int64_t)recorded;
        g_seq_mark = g_seq;
    }
    if (unsent && recent_covers(g_batch_from)) {
        /* the listed blocks still unsent, each once */
        uint64_t n = 0;
        for (uint64_t i = 0; i < g_nrecent; i++) {
            uint64_t at = block_slot(g_recent[i]);
            struct block *b = &g_blocks[at];
            if (!b->addr || !b->unsent || kept_back(b)) continue;
            batch_stack(b);
            b->unsent = 0;
            g_recent_slots[n++] = at;
        }
        out_batch_begin(n, g_batch_from, g_seq);
        for (uint64_t i = 0; i < n; i++) batch_sent(&g_blocks[g_recent_slots[i]]);
    } else if (unsent) {
        uint64_t n = 0;
        for (uint64_t i = 0; i < g_blocks_cap; i++) {
            struct block *b = &g_blocks[i];
            if (!b->addr || !b->unsent || kept_back(b)) continue;
            batch_stack(b);
            n++;
        }
        out_batch_begin(n, g_batch_from, g_seq);
        for (uint64_t i = 0; i < g_blocks_cap; i++) {
            struct block *b = &g_blocks[i];
            if (!b->addr || !b->unsent || kept_back(b)) continue;
            b->unsent = 0;
            batch_sent(b);
        }
    }
    g_batch_from = g_seq;
    static int told_seq;
    if (UNLIKELY(g_seq >> SEQ_BITS) && !told_seq) {
        told_seq = 1;
        out_failure("more than 2^43 allocations", "blocks allocated past it lose their allocation order and their test case");
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
        out_dec((uint64_t)g_n_allocs);
        out_c(' ');
        out_dec((uint64_t)g_n_frees);
        out_c(' ');
        out_dec(g_n_bytes);
        out_c('\n');
        g_n_allocs = g_n_frees = g_n_bytes = 0;
    }
}

static inline int tid(void) { return self_state()->tid; }

static __attribute__((noinline)) void send_alloc(struct thread_state *me, uint64_t addr, size_t size, uint32_t sid, unsigned alloc)
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
    if (alloc) {
        out_c(' ');
        out_dec(alloc);
    }
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

/* peaks.c's, which reads the blocks (defined after this part) */
static inline void peaks_alloc(uint64_t size, int own);
static inline void peaks_free(const struct block *b, int own, int event);

/* Under the lock. `alloc`: the allocator (errors.c's ALLOC_*). With one line per event the table
 * is kept too (every block already sent), for the checks of errors.c. */
static inline __attribute__((always_inline)) void record_alloc(struct thread_state *me, void *p, size_t size, uint32_t sid, unsigned alloc)
{
    uint64_t addr = (uint64_t)p;
    if (UNLIKELY(blocks_full()) && !blocks_grow()) {
        if (g_all_events) send_alloc(me, addr, size, sid, alloc);
        return;
    }
    uint64_t at = block_slot(addr);
    if (g_blocks[at].addr) { /* the model never saw it freed: keep the newer one */
        if (g_blocks[at].unsent) {
            g_n_allocs--; /* neither freed nor sent: the blocks recorded since count it */
            g_n_frees--;
            g_n_bytes -= g_blocks[at].size;
            tally(block_sid(&g_blocks[at]), -1, 0, -(int64_t)g_blocks[at].size);
        } else {
            g_sent_live--;
        }
        int own = test_owns(&g_blocks[at]);
        if (own) g_test_live--;
        peaks_free(&g_blocks[at], own, 0);
        g_nblocks--;
    }
    if (g_test_running) g_test_live++;
    if (UNLIKELY(g_all_events)) {
        g_blocks[at] = (struct block){.addr = addr, .size = size, .alloc = alloc, .seq = g_seq++, .sid_bits = sid};
        g_nblocks++;
        g_sent_live++;
        send_alloc(me, addr, size, sid, alloc);
        return;
    }
    g_blocks[at] = (struct block){.addr = addr, .size = size, .alloc = alloc, .unsent = 1, .seq = g_seq++, .sid_bits = sid};
    g_nblocks++;
    uint64_t listed = g_nrecent++;
    if (listed < RECENT_MAX) g_recent[listed] = addr;
    g_n_bytes += size;
    tally(sid, 1, 0, (int64_t)size);
    peaks_alloc(size, g_test_running);
}

/* Under the lock, with one line per event: a block the model learns of by its own line (R). */
static void block_put(struct thread_state *me, void *p, size_t size, uint32_t sid, unsigned alloc)
{
    uint64_t addr = (uint64_t)p;
    if (blocks_full() && !blocks_grow()) return;
    uint64_t at = block_slot(addr);
    if (g_blocks[at].addr) {
        g_nblocks--;
        if (test_owns(&g_blocks[at])) g_test_live--;
    } else {
        g_sent_live++;
    }
    if (g_test_running) g_test_live++;
    g_blocks[at] = (struct block){.addr = addr, .size = size, .alloc = alloc, .seq = g_seq++, .sid_bits = sid};
    g_nblocks++;
}

/* Under the lock: the free of the live block in slot `at`. */
static inline __attribute__((always_inline)) void record_free_at(struct thread_state *me, uint64_t at)
{
    struct block *b = &g_blocks[at];
    uint64_t addr = b->addr;
    int own = test_owns(b);
    if (own) g_test_live--;
    peaks_free(b, own, 1);
    if (b->unsent) {
        tally(block_sid(b), 0, 1, 0);
        block_delete(at);
        return;
    }
    g_sent_live--;
    block_delete(at);
    send_free(me, addr);
}

/* ---- the running test case's own live blocks (a test end's scan, its image and its peak sites) ---- */

#define OWN_MAX 1024 /* more of the test's blocks live: the whole image (the check's sort is quadratic) */

struct own_block {
    uint64_t lo, hi; /* [address, address + size); a zero-size block is hit by its start */
};
static struct own_block *g_own; /* OWN_MAX of them, in our own memory */
static int g_nown;
static uint64_t g_own_min, g_own_max; /* the first's start, the last's end */

/* The running test's next live block from *i on (the recent list's, while it holds every one
 * allocated since the test began, else the table's), or NULL past the last; in objects mode with
 * the observed objects known (modules.c), only those with a frame of one of them. */
static struct block *test_block_next(uint64_t *i)
{
    int listed = recent_covers(g_test_first_seq);
    uint64_t n = listed ? g_nrecent : g_blocks_cap;
    for (; *i < n; (*i)++) {
        struct block *b = &g_blocks[listed ? block_slot(g_recent[*i]) : *i];
        if (!b->addr || b->seq < g_test_first_seq || !stack_observed(block_sid(b))) continue;
        (*i)++;
        return b;
    }
    return NULL;
}

/* Whether the test case has a block live that the run's figures count: any of its blocks, or in
 * objects mode one with an observed object's frame. A Node script's test cases leave V8's and
 * Node's blocks live at every end; none of them is the addon's, and the end needs no scan. */
static int test_counted_live(void)
{
    if (g_test_live <= 0) return 0;
    if (!g_observe[0]) return 1;
    uint64_t i = 0;
    return test_block_next(&i) != NULL;
}

/* The test's own live blocks (those test_block_next gives), sorted by address, in g_own; 0 when
 * there are none or too many. */
static int own_blocks(void)
{
    g_nown = 0;
    if (!g_test_running || g_test_live <= 0 || (!g_observe[0] && g_test_live > OWN_MAX)) return 0;
    if (!g_own && !(g_own = region(OWN_MAX * sizeof *g_own))) return 0;
    struct block *b;
    for (uint64_t i = 0; (b = test_block_next(&i));) {
        struct own_block o = {b->addr, b->addr + b->size};
        int k = g_nown;
        while (k > 0 && g_own[k - 1].lo > o.lo) k--;
        if (k > 0 && g_own[k - 1].lo == o.lo) continue; /* listed twice */
        if (g_nown == OWN_MAX) return 0;
        memmove(&g_own[k + 1], &g_own[k], (size_t)(g_nown - k) * sizeof *g_own);
        g_own[k] = o;
        g_nown++;
    }
    g_own_min = g_nown ? g_own[0].lo : 0;
    g_own_max = g_nown ? g_own[g_nown - 1].hi : 0;
    return g_nown > 0;
}

/* The own block `w` points into, or -1. */
static inline int own_index(uint64_t w)
{
    int lo = 0, hi = g_nown - 1;
    if (w < g_own_min || w > g_own_max) return -1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (g_own[mid].lo <= w) lo = mid;
        else hi = mid - 1;
    }
    return g_own[lo].lo <= w && (w < g_own[lo].hi || w == g_own[lo].lo) ? lo : -1;
}

/* Whether `w` points into one of the test's own blocks. */
static inline int into_own(uint64_t w) { return own_index(w) >= 0; }
