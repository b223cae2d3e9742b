/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Stacks: interned, each sent once (S line) before the first block that uses it.
 */

struct stack {
    uint64_t hash;
    uint32_t n;
    uint32_t sent;
    uint64_t pcs[DEPTH];
    /* by-stack counting (g_by_stack): blocks of this stack counted but not sent since the last
     * boundary, and whether it is on the dirty list */
    int64_t allocs, frees, bytes;
    uint32_t dirty;
    /* objects mode: whether a frame is in an observed object, as of g_observed_gen (modules.c):
     * the generation times two, plus one when it is; 0 not yet known */
    uint32_t observed;
};

#define STACKS_MAX ((1u << 21) - 1) /* ids fit a block's 21 bits, with one value left for "none" */
static struct stack *g_stacks;   /* reserved, touched as it grows */
static uint32_t g_nstacks;
static uint32_t *g_stack_index;  /* open addressing: sid + 1, 0 empty */
static uint32_t g_stack_index_cap;

static uint64_t hash_pcs(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int stack_index_grow(void)
{
    uint32_t cap = g_stack_index_cap ? g_stack_index_cap * 2 : 4096;
    uint32_t *index = region(cap * sizeof(uint32_t));
    if (!index) return 0;
    for (uint32_t sid = 0; sid < g_nstacks; sid++) {
        uint32_t at = (uint32_t)(g_stacks[sid].hash & (cap - 1));
        while (index[at]) at = (at + 1) & (cap - 1);
        index[at] = sid + 1;
    }
    if (g_stack_index) region_free(g_stack_index, g_stack_index_cap * sizeof(uint32_t));
    g_stack_index = index;
    g_stack_index_cap = cap;
    return 1;
}

/* The id of a stack, interning it when new; UINT32_MAX when the tables are full. Walks call it
 * with no other lock held (or a cache shard's); a stack's pcs never change once it has an id, and
 * the ids reach g_lock's side through g_lock, so only the table's index needs g_stacks_lock. */
static int g_stacks_lock;
static uint32_t stack_find_or_add(const uint64_t *pcs, uint32_t n);
static uint32_t stack_intern(const uint64_t *pcs, uint32_t n)
{
    mutex_lock(&g_stacks_lock);
    uint32_t sid = stack_find_or_add(pcs, n);
    mutex_unlock(&g_stacks_lock);
    return sid;
}

static uint32_t stack_find_or_add(const uint64_t *pcs, uint32_t n)
{
    uint64_t h = hash_pcs(pcs, n);
    if ((g_nstacks + 1) * 2 > g_stack_index_cap && !stack_index_grow()) return UINT32_MAX;
    uint32_t at = (uint32_t)(h & (g_stack_index_cap - 1));
    for (;;) {
        uint32_t e = g_stack_index[at];
        if (!e) break;
        struct stack *s = &g_stacks[e - 1];
        if (s->hash == h && s->n == n && memcmp(s->pcs, pcs, n * sizeof(uint64_t)) == 0) return e - 1;
        at = (at + 1) & (g_stack_index_cap - 1);
    }
    if (g_nstacks >= STACKS_MAX) return UINT32_MAX;
    uint32_t sid = g_nstacks++;
    struct stack *s = &g_stacks[sid];
    s->hash = h;
    s->n = n;
    s->sent = 0;
    if (n) memcpy(s->pcs, pcs, n * sizeof(uint64_t));
    g_stack_index[at] = sid + 1;
    return sid;
}

static void stack_send(uint32_t sid)
{
    /* no stack (the table was full when one was needed): nothing to define, and no slot to read */
    if (sid >= STACKS_MAX) return;
    struct stack *s = &g_stacks[sid];
    if (s->sent) return;
    s->sent = 1;
    out_str("S ");
    out_dec(sid);
    for (uint32_t i = 0; i < s->n; i++) {
        out_c(' ');
        out_hex(s->pcs[i]);
    }
    out_c('\n');
}
