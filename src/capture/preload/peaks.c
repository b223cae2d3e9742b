/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Peaks: the high-water marks of live heap bytes, kept here because the host sees only the counts
 * of the blocks freed between two boundaries. Two are kept: the whole heap's (the run's peak, and
 * the most it held while each test case ran) and that of the running test case's own blocks.
 *
 * Each knows which stacks held its bytes at the peak, at the cost of a compare per event: the
 * blocks live at the peak are those allocated before it (by allocation order, the block table's
 * seq) that are live now, or that were freed since; so only the frees since the peak of blocks
 * older than it are logged, and the sites are found from the table and the log when asked (at a
 * test case's end, at exit; then folded into a snapshot, and logging stops until the next peak).
 * The log holds at most the blocks live at the peak: a growing heap sets a new peak at nearly
 * every allocation and copies nothing, and a heap that churns below its peak logs nothing once
 * the blocks older than the peak are gone. Every function here runs under the lock, inside an
 * allocator call or at a boundary: none allocates (regions are mmapped) or takes another lock.
 *
 * The series: the whole heap's live bytes against the count of allocator events (allocations and
 * frees, as the model counts them), in at most SERIES_MAX points, each the most bytes live in its
 * span of events; when full, neighbours merge and spans double. The host samples the same way
 * from the events of the other backends (src/model/peaks.ts), so one program draws one series.
 */

struct freed_block {
    uint64_t seq, size;
    uint32_t sid;
};
struct site_live {
    uint32_t sid;
    int64_t bytes, blocks;
};

#define PEAK_LOG_MIN 4096

struct peak {
    int64_t total, peak;
    uint64_t peak_seq;       /* blocks with a smaller seq (and at least `first`) were live at the peak */
    int frozen;              /* the sites are in `snap`, nothing is logged */
    struct freed_block *log; /* frees since the peak of blocks older than it */
    uint64_t nlog, log_cap;
    struct site_live *snap;
    uint32_t nsnap, snap_cap;
};

static struct peak g_heap_peak;  /* every block, for the whole run */
static struct peak g_own_peak;   /* the running test case's own blocks */
static int64_t g_test_heap_peak; /* the whole heap's most while the test case runs */
static int g_peaks;              /* kept (see peaks_init) */
static uint64_t g_events;        /* allocations and frees of known blocks: the series' x */

/* Per stack, while sites are gathered: bytes and blocks, and the stacks with any (in first-seen order). */
static struct site_live *g_site_acc;
static uint32_t *g_site_seen;
static uint32_t g_nsite_seen;

#define SERIES_MAX 512
static uint64_t g_series_x[SERIES_MAX];
static int64_t g_series_y[SERIES_MAX];
static uint32_t g_series_n;
static uint64_t g_series_width = 1;
static uint64_t g_series_next = 1; /* the event that starts the next point (the first: 1) */
static int64_t g_series_cur;       /* the last point's most, kept here until the next point starts */

static int peak_init(struct peak *p)
{
    p->log_cap = PEAK_LOG_MIN;
    p->log = region(p->log_cap * sizeof(struct freed_block));
    p->frozen = 1; /* the peak of nothing: no sites */
    return p->log != NULL;
}

/* Called once at start-up, before the first allocation is recorded. `wanted`: not when every event
 * is sent (the host keeps them then) nor when counts go out by stack (the host leaves peaks out). */
static void peaks_init(int wanted)
{
    g_site_acc = wanted ? region((size_t)STACKS_MAX * sizeof(struct site_live)) : NULL;
    g_site_seen = wanted ? region((size_t)STACKS_MAX * sizeof(uint32_t)) : NULL;
    g_peaks = g_site_acc && g_site_seen && peak_init(&g_heap_peak) && peak_init(&g_own_peak);
}

static void site_add(uint32_t sid, uint64_t size)
{
    if (sid == UINT32_MAX && (sid = empty_sid()) == UINT32_MAX) return; /* no room for the empty stack: left out */
    struct site_live *s = &g_site_acc[sid];
    if (s->blocks == 0) g_site_seen[g_nsite_seen++] = sid;
    s->bytes += (int64_t)size;
    s->blocks++;
}

/* The sites at `p`'s peak into its snapshot: the blocks of seq in [first, peak_seq) live now (the
 * table is read only when `table`: none of them may be live) or freed since. */
static void peak_freeze(struct peak *p, uint64_t first, int table)
{
    if (p->frozen) return;
    g_nsite_seen = 0;
    /* a test case's blocks live now are its own blocks: found without reading the whole table */
    int own = table && p == &g_own_peak && first == g_test_first_seq && own_blocks();
    for (int i = 0; own && i < g_nown; i++) {
        struct block *b = &g_blocks[block_slot(g_own[i].lo)];
        if (b->seq < p->peak_seq) site_add(block_sid(b), b->size);
    }
    for (uint64_t i = 0; table && !own && i < g_blocks_cap; i++) {
        struct block *b = &g_blocks[i];
        if (b->addr && b->seq >= first && b->seq < p->peak_seq) site_add(block_sid(b), b->size);
    }
    for (uint64_t i = 0; i < p->nlog; i++)
        if (p->log[i].seq >= first) site_add(p->log[i].sid, p->log[i].size);
    if (g_nsite_seen > p->snap_cap) {
        uint32_t cap = g_nsite_seen * 2;
        struct site_live *bigger = region((size_t)cap * sizeof(struct site_live));
        if (bigger) {
            if (p->snap) region_free(p->snap, (size_t)p->snap_cap * sizeof(struct site_live));
            p->snap = bigger;
            p->snap_cap = cap;
        }
    }
    p->nsnap = 0;
    for (uint32_t i = 0; i < g_nsite_seen; i++) {
        struct site_live *s = &g_site_acc[g_site_seen[i]];
        if (p->nsnap < p->snap_cap) p->snap[p->nsnap++] = (struct site_live){g_site_seen[i], s->bytes, s->blocks};
        s->bytes = s->blocks = 0;
    }
    p->nlog = 0;
    p->frozen = 1;
}

/* A bigger log; without room for one, the snapshot now (a pass over the table). */
static __attribute__((noinline)) void peak_log_full(struct peak *p, uint64_t first)
{
    struct freed_block *bigger = region(2 * p->log_cap * sizeof(struct freed_block));
    if (!bigger) {
        peak_freeze(p, first, 1);
        return;
    }
    memcpy(bigger, p->log, p->nlog * sizeof(struct freed_block));
    region_free(p->log, p->log_cap * sizeof(struct freed_block));
    p->log = bigger;
    p->log_cap *= 2;
}

/* A new peak of `p`: the blocks before `next_seq` (the seq the next block will get) are its. */
static inline __attribute__((always_inline)) void peak_set(struct peak *p, uint64_t next_seq)
{
    p->peak = p->total;
    p->peak_seq = next_seq;
    p->frozen = 0;
    p->nlog = 0;
}

/* A block of `p`'s leaves (`first`: the oldest seq `p` counts). */
static inline __attribute__((always_inline)) void peak_shrink(struct peak *p, const struct block *b, uint64_t first)
{
    p->total -= (int64_t)b->size;
    if (p->frozen || b->seq >= p->peak_seq) return;
    if (UNLIKELY(p->nlog == p->log_cap)) {
        peak_log_full(p, first);
        if (p->frozen) return;
    }
    p->log[p->nlog++] = (struct freed_block){b->seq, b->size, block_sid(b)};
}

/* A test case begins: its own blocks start from none, the heap's most from what is live now. */
static void peaks_begin_test(void)
{
    g_own_peak.total = g_own_peak.peak = 0;
    g_own_peak.nlog = g_own_peak.nsnap = 0;
    g_own_peak.frozen = 1;
    g_test_heap_peak = g_heap_peak.total;
}

/* Event g_events starts a point: after a merge (when full) it may fall in the last one instead. */
static __attribute__((noinline)) void series_append(int64_t bytes)
{
    if (g_series_n > 0) g_series_y[g_series_n - 1] = g_series_cur;
    if (g_series_n == SERIES_MAX) {
        for (uint32_t i = 0; i < SERIES_MAX / 2; i++) {
            g_series_x[i] = g_series_x[2 * i];
            int64_t a = g_series_y[2 * i], b = g_series_y[2 * i + 1];
            g_series_y[i] = a > b ? a : b;
        }
        g_series_n = SERIES_MAX / 2;
        g_series_width *= 2;
        g_series_next = g_series_x[g_series_n - 1] + g_series_width;
        g_series_cur = g_series_y[g_series_n - 1];
        if (g_events < g_series_next) {
            if (bytes > g_series_cur) g_series_cur = bytes;
            return;
        }
    }
    g_series_x[g_series_n] = g_events;
    g_series_n++;
    g_series_cur = bytes;
    g_series_next = g_events + g_series_width;
}

/* One more event, `bytes` live after it; `grew`: an allocation (only one can raise a point's most). */
static inline __attribute__((always_inline)) void series_note(int64_t bytes, int grew)
{
    if (LIKELY(++g_events < g_series_next)) {
        if (grew && bytes > g_series_cur) g_series_cur = bytes;
        return;
    }
    series_append(bytes);
}

/* A block joins the live set (`own`: the running test case made it). */
static inline __attribute__((always_inline)) void peaks_alloc(uint64_t size, int own)
{
    if (!g_peaks) return;
    int64_t total = g_heap_peak.total += (int64_t)size;
    /* the run's peak is never below the test case's: one compare in the common case */
    if (UNLIKELY(total > g_test_heap_peak)) {
        g_test_heap_peak = total;
        if (total > g_heap_peak.peak) peak_set(&g_heap_peak, g_seq);
    }
    if (own && (g_own_peak.total += (int64_t)size) > g_own_peak.peak) peak_set(&g_own_peak, g_seq);
    series_note(total, 1);
}

/* A block leaves it (`own`: the running test case made it; `event`: a free the model counts, not a
 * block replaced unseen). */
static inline __attribute__((always_inline)) void peaks_free(const struct block *b, int own, int event)
{
    if (!g_peaks) return;
    peak_shrink(&g_heap_peak, b, 0);
    if (own) peak_shrink(&g_own_peak, b, g_test_first_seq);
    if (event) series_note(g_heap_peak.total, 0);
}

/* "p sid bytes blocks" for every stack live at `p`'s peak. */
static void peak_send_sites(struct peak *p, uint64_t first, int table)
{
    peak_freeze(p, first, table);
    for (uint32_t i = 0; i < p->nsnap; i++) {
        stack_send(p->snap[i].sid);
        out_str("p ");
        out_dec(p->snap[i].sid);
        out_c(' ');
        out_dec((uint64_t)p->snap[i].bytes);
        out_c(' ');
        out_dec((uint64_t)p->snap[i].blocks);
        out_c('\n');
    }
}

/* Before a test case's end (or a begin that ends it, or the exit): "P bytes heapBytes" and its
 * sites. The table is read only when some of its blocks are live. */
static void peaks_send_test(void)
{
    if (!g_peaks || !g_test_running) return;
    out_str("P ");
    out_dec((uint64_t)g_own_peak.peak);
    out_c(' ');
    out_dec((uint64_t)g_test_heap_peak);
    out_c('\n');
    peak_send_sites(&g_own_peak, g_test_first_seq, g_test_live != 0);
}

/* At the end of the process: "Q bytes" and the run's sites, then "G width x y...", the series. */
static void peaks_send_run(void)
{
    if (!g_peaks) return;
    peaks_send_test();
    out_str("Q ");
    out_dec((uint64_t)g_heap_peak.peak);
    out_c('\n');
    peak_send_sites(&g_heap_peak, 0, 1);
    if (g_series_n > 0) g_series_y[g_series_n - 1] = g_series_cur;
    out_str("G ");
    out_dec(g_series_width);
    for (uint32_t i = 0; i < g_series_n; i++) {
        out_c(' ');
        out_dec(g_series_x[i]);
        out_c(' ');
        out_dec((uint64_t)g_series_y[i]);
    }
    out_c('\n');
}
