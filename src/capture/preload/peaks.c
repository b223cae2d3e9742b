/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Peaks: the high-water marks of live heap bytes, kept here because the host sees only the counts
 * of the blocks freed between two boundaries. Two are kept: the whole heap's (the run's peak, and
 * the most it held while each test case ran) and that of the running test case's own blocks.
 * Each knows which allocation stacks held its bytes at the peak, without copying a table at each
 * new peak (a growing heap sets one at nearly every allocation): it keeps the live bytes and
 * blocks of each stack now, and the changes made since the peak; the stacks at the peak are now
 * less those changes. When the changes outnumber twice the stacks in use the snapshot is made
 * once (now less the changes) and nothing more is logged until the next peak, so the cost stays
 * a few stores per event, amortized. Every function here runs inside an allocator call, under
 * the lock: none allocates (regions are mmapped) or takes another lock.
 *
 * The series: the whole heap's live bytes against the count of allocator events (allocations and
 * frees, as the model counts them), in at most SERIES_MAX points, each the most bytes live in its
 * span of events; when full, neighbours merge and spans double. The host samples the same way
 * from the events of the other backends, so the same program draws the same series.
 */

struct site_live {
    int64_t bytes, blocks;
};
struct site_change {
    uint32_t row;
    int32_t blocks;
    int64_t bytes;
};

#define PEAK_ROWS (STACKS_MAX + 1) /* a row per stack, the last for blocks with no stack */
#define PEAK_LOG_MIN 4096

struct peak {
    struct site_live *live;  /* per row, now */
    struct site_live *snap;  /* per row, at the peak, once made (frozen) */
    uint32_t *stamp;         /* the generation a row was last reset in */
    uint32_t *touched;       /* rows used in this generation, in first-use order */
    uint32_t ntouched, nsnap, gen;
    struct site_change *log; /* changes since the peak, while not frozen */
    uint64_t nlog, log_cap;
    int frozen;
    int64_t total, peak;
};

static struct peak g_heap_peak; /* every block, for the whole run */
static struct peak g_own_peak;  /* the running test case's own blocks */
static int64_t g_test_heap_peak; /* the whole heap's most while the test case runs */
static int g_peaks;             /* kept (see peaks_init) */
static uint64_t g_events;       /* allocations and frees of known blocks: the series' x */

#define SERIES_MAX 512
static uint64_t g_series_x[SERIES_MAX];
static int64_t g_series_y[SERIES_MAX];
static uint32_t g_series_n;
static uint64_t g_series_width = 1;

static int peak_init(struct peak *p)
{
    p->live = region((size_t)PEAK_ROWS * sizeof(struct site_live));
    p->snap = region((size_t)PEAK_ROWS * sizeof(struct site_live));
    p->stamp = region((size_t)PEAK_ROWS * sizeof(uint32_t));
    p->touched = region((size_t)PEAK_ROWS * sizeof(uint32_t));
    p->log_cap = PEAK_LOG_MIN;
    p->log = region(p->log_cap * sizeof(struct site_change));
    p->gen = 1;
    p->frozen = 1; /* the peak of nothing: no rows */
    return p->live && p->snap && p->stamp && p->touched && p->log;
}

/* Called once at start-up, before the first allocation is recorded. `wanted`: not when every event
 * is sent (the host keeps them then) nor when counts go out by stack (the host leaves peaks out). */
static void peaks_init(int wanted)
{
    g_peaks = wanted && peak_init(&g_heap_peak) && peak_init(&g_own_peak);
}

/* The snapshot at the peak: now less the changes since, in reverse. */
static void peak_freeze(struct peak *p)
{
    if (p->frozen) return;
    for (uint32_t i = 0; i < p->ntouched; i++) p->snap[p->touched[i]] = p->live[p->touched[i]];
    for (uint64_t i = p->nlog; i-- > 0;) {
        p->snap[p->log[i].row].bytes -= p->log[i].bytes;
        p->snap[p->log[i].row].blocks -= p->log[i].blocks;
    }
    p->nsnap = p->ntouched;
    p->nlog = 0;
    p->frozen = 1;
}

static __attribute__((noinline)) void peak_log_full(struct peak *p)
{
    if (p->log_cap < PEAK_LOG_MIN + 2 * (uint64_t)p->ntouched) {
        struct site_change *bigger = region(2 * p->log_cap * sizeof(struct site_change));
        if (bigger) {
            memcpy(bigger, p->log, p->nlog * sizeof(struct site_change));
            region_free(p->log, p->log_cap * sizeof(struct site_change));
            p->log = bigger;
            p->log_cap *= 2;
            return;
        }
    }
    peak_freeze(p);
}

static uint32_t g_empty_sid; /* blocks.c's: the empty stack's id, once interned */

static inline __attribute__((always_inline)) void peak_change(struct peak *p, uint32_t sid, int64_t bytes, int32_t blocks)
{
    /* a block with no stack gets the empty stack's id when it is sent: its row is that one's */
    uint32_t row = LIKELY(sid != UINT32_MAX) ? sid : g_empty_sid != UINT32_MAX ? g_empty_sid : STACKS_MAX;
    if (UNLIKELY(p->stamp[row] != p->gen)) {
        p->stamp[row] = p->gen;
        p->live[row] = (struct site_live){0, 0};
        p->touched[p->ntouched++] = row;
    }
    /* a full log is dealt with before this change, which the snapshot must not hold */
    if (UNLIKELY(p->nlog == p->log_cap) && !p->frozen) peak_log_full(p);
    p->live[row].bytes += bytes;
    p->live[row].blocks += blocks;
    p->total += bytes;
    if (p->total > p->peak) {
        p->peak = p->total;
        p->frozen = 0;
        p->nlog = 0;
        return;
    }
    if (p->frozen) return;
    p->log[p->nlog++] = (struct site_change){row, blocks, bytes};
}

/* A new generation: no rows, nothing live (a test case begins). */
static void peak_reset(struct peak *p)
{
    p->gen++;
    p->ntouched = p->nsnap = 0;
    p->nlog = 0;
    p->frozen = 1;
    p->total = p->peak = 0;
}

static __attribute__((noinline)) void series_append(int64_t bytes)
{
    if (g_series_n == SERIES_MAX) {
        for (uint32_t i = 0; i < SERIES_MAX / 2; i++) {
            g_series_x[i] = g_series_x[2 * i];
            int64_t a = g_series_y[2 * i], b = g_series_y[2 * i + 1];
            g_series_y[i] = a > b ? a : b;
        }
        g_series_n = SERIES_MAX / 2;
        g_series_width *= 2;
        if (g_events < g_series_x[g_series_n - 1] + g_series_width) {
            if (bytes > g_series_y[g_series_n - 1]) g_series_y[g_series_n - 1] = bytes;
            return;
        }
    }
    g_series_x[g_series_n] = g_events;
    g_series_y[g_series_n] = bytes;
    g_series_n++;
}

static inline __attribute__((always_inline)) void series_note(void)
{
    int64_t bytes = g_heap_peak.total;
    g_events++;
    if (LIKELY(g_series_n > 0) && g_events < g_series_x[g_series_n - 1] + g_series_width) {
        if (bytes > g_series_y[g_series_n - 1]) g_series_y[g_series_n - 1] = bytes;
        return;
    }
    series_append(bytes);
}

/* A block joins the live set (`own`: the running test case made it). */
static inline __attribute__((always_inline)) void peaks_alloc(uint32_t sid, uint64_t size, int own)
{
    if (!g_peaks) return;
    if (UNLIKELY(sid == UINT32_MAX) && g_empty_sid == UINT32_MAX) g_empty_sid = stack_intern(NULL, 0);
    peak_change(&g_heap_peak, sid, (int64_t)size, 1);
    if (g_heap_peak.total > g_test_heap_peak) g_test_heap_peak = g_heap_peak.total;
    if (own) peak_change(&g_own_peak, sid, (int64_t)size, 1);
    series_note();
}

/* A block leaves it; `event`: a free the model counts (not a block replaced unseen). */
static inline __attribute__((always_inline)) void peaks_free(uint32_t sid, uint64_t size, int own, int event)
{
    if (!g_peaks) return;
    peak_change(&g_heap_peak, sid, -(int64_t)size, -1);
    if (own) peak_change(&g_own_peak, sid, -(int64_t)size, -1);
    if (event) series_note();
}

/* "p sid bytes blocks" for every stack live at `p`'s peak. */
static void peak_send_sites(struct peak *p)
{
    peak_freeze(p);
    for (uint32_t i = 0; i < p->nsnap; i++) {
        uint32_t row = p->touched[i];
        struct site_live s = p->snap[row];
        if (s.blocks <= 0) continue;
        if (row == STACKS_MAX) continue; /* no stack, and no room for the empty one */
        uint32_t sid = row;
        stack_send(sid);
        out_str("p ");
        out_dec(sid);
        out_c(' ');
        out_dec((uint64_t)s.bytes);
        out_c(' ');
        out_dec((uint64_t)s.blocks);
        out_c('\n');
    }
}

/* Before a test case's end (or a begin that ends it, or the exit): "P bytes heapBytes" and its sites. */
static void peaks_send_test(int running)
{
    if (!g_peaks || !running) return;
    out_str("P ");
    out_dec((uint64_t)g_own_peak.peak);
    out_c(' ');
    out_dec((uint64_t)g_test_heap_peak);
    out_c('\n');
    peak_send_sites(&g_own_peak);
}

/* A test case begins: its own blocks start from none, the heap's most from what is live now. */
static void peaks_begin_test(void)
{
    peak_reset(&g_own_peak);
    g_test_heap_peak = g_heap_peak.total;
}

/* At the end of the process: "Q bytes" and the run's sites, then "G width x y...", the series. */
static void peaks_send_run(int running)
{
    if (!g_peaks) return;
    peaks_send_test(running);
    out_str("Q ");
    out_dec((uint64_t)g_heap_peak.peak);
    out_c('\n');
    peak_send_sites(&g_heap_peak);
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
