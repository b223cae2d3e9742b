/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * The leak scan, in the process. memcheck's classification of every live block over the memory as
 * it is now, the world stopped, with the roots the host picks from an image: the host's
 * src/capture/memory-image.ts (what is heap, what is a root) and src/model/leak-scan.ts (the
 * marking) are the same rules, and still serve the GDB backend and this backend's image fallback
 * (HEAPSPEC_SCAN=image). No copy of the heap leaves the process: a V line and a 16-byte record for
 * each block that is not reachable go to the host. At 5,000,000 live blocks that is what kept the
 * host copying 280 MB and sorting and marking in JavaScript.
 */

#define SCAN_UNREACHED 0
#define SCAN_POSSIBLE 1
#define SCAN_REACHABLE 2
#define SCAN_INDIRECT 3

/* glibc maps each non-main arena's heap at a multiple of HEAP_MAX_SIZE (64 MiB on 64-bit). */
#define ARENA_ALIGNMENT (64ull << 20)
/* Bytes at the top of a thread's stack mapping that hold glibc's struct pthread. */
#define THREAD_DESCRIPTOR 2432

/* A live block in the scan's array, 12 bytes (5,000,000 blocks took 80 MB at 16): its address and
 * size as one key (address << 16 | size, or SIZE_BIG: the table's size is the size), which sorts
 * by address, and its slot in the block table (the groups and a test end's verdicts read the
 * block there, not by a probe of the table: a cache miss each, 0.1 s at 5,000,000 blocks). */
struct scan_block {
    uint64_t key;
    uint32_t slot;
} __attribute__((packed));
#define SIZE_BIG 0xFFFFu

static inline uint64_t sb_lo(const struct scan_block *b) { return b->key >> 16; }

static inline uint64_t sb_hi(const struct scan_block *b)
{
    uint64_t size = b->key & SIZE_BIG;
    return sb_lo(b) + (size == SIZE_BIG ? g_blocks[b->slot].size : size);
}

#define PIECE_HEAP 0
#define PIECE_ROOT 1
#define PIECE_LIBC 2 /* a root whose interior pointers to a chunk's end are the allocator's */

struct piece {
    uint64_t lo, hi;
    int kind;
    int mem; /* what its mapping's memory is (image.c's MEM_*) */
};

struct page_slot {
    uint64_t page; /* page number + 1; 0: empty */
    uint32_t first, last;
};

static struct {
    struct scan_block *b; /* the live blocks in address order */
    uint64_t n;
    uint8_t *state;
    uint32_t *stack; /* blocks marked, not yet scanned: each there once at most (queued) */
    uint64_t depth, stack_cap;
    uint64_t *queued; /* a bit a block: on the stack */
    int failed;      /* our memory ran out in the middle: the image instead */
    uint64_t lowest, highest;
    struct page_slot *pages;
    uint64_t pages_mask, pages_bytes;
    struct piece *pieces;
    uint64_t npieces, pieces_cap;
    uint32_t *heap_index; /* the heap pieces, in address order (indices into pieces) */
    uint32_t nheap;
} g_scan;

static inline uint64_t page_home(uint64_t page) { return (page * 0x9E3779B97F4A7C15ull) >> 20; }

static struct page_slot *page_find(uint64_t page)
{
    uint64_t at = page_home(page) & g_scan.pages_mask;
    for (;;) {
        struct page_slot *s = &g_scan.pages[at];
        if (s->page == page + 1 || s->page == 0) return s;
        at = (at + 1) & g_scan.pages_mask;
    }
}

/* The index of the block holding p (a zero-size block is hit by its start), or -1. */
static inline int64_t scan_find(uint64_t p)
{
    if (p < g_scan.lowest || p > g_scan.highest) return -1;
    struct page_slot *s = page_find(p >> 12);
    if (!s->page) return -1;
    uint64_t lo = s->first, hi = s->last;
    const struct scan_block *b = g_scan.b;
    while (lo < hi) {
        uint64_t mid = (lo + hi + 1) >> 1;
        if (sb_lo(&b[mid]) <= p) lo = mid;
        else hi = mid - 1;
    }
    uint64_t start = sb_lo(&b[lo]);
    if (start > p) return -1;
    return p == start || p < sb_hi(&b[lo]) ? (int64_t)lo : -1;
}

static void insertion_sort(struct scan_block *b, uint64_t n)
{
    for (uint64_t i = 1; i < n; i++) {
        if (b[i - 1].key <= b[i].key) continue;
        struct scan_block x = b[i];
        uint64_t k = i;
        while (k > 0 && b[k - 1].key > x.key) {
            b[k] = b[k - 1];
            k--;
        }
        b[k] = x;
    }
}

/* Sorts b[0 .. n) by the bits of their pages from `shift` up (the bits above are the same for all),
 * in place: an MSD radix sort of 8-bit digits that swaps each block into its digit's bucket
 * (American flag sort), then each bucket by the next digit; a bucket of one page, or of a few
 * blocks, by insertion. */
static void flag_sort(struct scan_block *b, uint64_t n, int shift)
{
    if (n < 32) {
        insertion_sort(b, n);
        return;
    }
    uint64_t count[256] = {0}, next[256], end[256];
    int key_shift = shift + 16; /* the key holds the address above its 16 size bits */
    for (uint64_t i = 0; i < n; i++) count[(b[i].key >> key_shift) & 255]++;
    uint64_t sum = 0;
    for (int d = 0; d < 256; d++) {
        next[d] = sum;
        sum += count[d];
        end[d] = sum;
    }
    for (int d = 0; d < 256; d++) {
        while (next[d] < end[d]) {
            struct scan_block x = b[next[d]];
            int k = (int)((x.key >> key_shift) & 255);
            while (k != d) {
                struct scan_block t = b[next[k]];
                b[next[k]++] = x;
                x = t;
                k = (int)((x.key >> key_shift) & 255);
            }
            b[next[d]++] = x;
        }
    }
    for (int d = 0; d < 256; d++) {
        struct scan_block *bucket = b + end[d] - count[d];
        if (shift > 12) flag_sort(bucket, count[d], shift - 8 > 12 ? shift - 8 : 12);
        else insertion_sort(bucket, count[d]);
    }
}

/* Sorts the blocks by address, in their own array (a second one would be 16 bytes more a block, at
 * the program's peak). The block table keeps a page's blocks together and in address order
 * (blocks.c's block_home), so the blocks come out page by page and only their pages need sorting;
 * the insertion sorts put right the few a collision moved within their page. */
static void scan_sort(void)
{
    uint64_t n = g_scan.n, lowest = UINT64_MAX, highest = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t lo = sb_lo(&g_scan.b[i]);
        if (lo < lowest) lowest = lo;
        if (lo > highest) highest = lo;
    }
    uint64_t differ = (lowest ^ highest) >> 12;
    if (!differ) {
        insertion_sort(g_scan.b, n);
        return;
    }
    int top = 63 - __builtin_clzll(differ) + 12; /* the highest page bit that differs */
    flag_sort(g_scan.b, n, top - 7 > 12 ? top - 7 : 12);
}

/* The pages the blocks cover, each with the first and last block on it (blocks do not overlap, so
 * the last block starting at or below an address on a page is among that page's). */
static int scan_pages(void)
{
    uint64_t pages = 0;
    int64_t seen = -1;
    for (uint64_t i = 0; i < g_scan.n; i++) {
        uint64_t lo = sb_lo(&g_scan.b[i]), hi = sb_hi(&g_scan.b[i]);
        int64_t from = (int64_t)(lo >> 12), to = (int64_t)((hi > lo ? hi - 1 : lo) >> 12);
        if (from <= seen) from = seen + 1;
        if (to >= from) pages += (uint64_t)(to - from + 1);
        if (to > seen) seen = to;
    }
    uint64_t size = 16;
    while (size < pages * 2) size *= 2;
    g_scan.pages_bytes = size * sizeof(struct page_slot);
    g_scan.pages = region_filled(g_scan.pages_bytes);
    if (!g_scan.pages) return 0;
    g_scan.pages_mask = size - 1;
    for (uint64_t i = 0; i < g_scan.n; i++) {
        uint64_t lo = sb_lo(&g_scan.b[i]), hi = sb_hi(&g_scan.b[i]);
        uint64_t last = (hi > lo ? hi - 1 : lo) >> 12;
        for (uint64_t page = lo >> 12; page <= last; page++) {
            struct page_slot *s = page_find(page);
            if (!s->page) {
                s->page = page + 1;
                s->first = (uint32_t)i;
            }
            s->last = (uint32_t)i;
        }
    }
    return 1;
}

/* Doubles an array in our own memory (`*cap` elements of `size` bytes, `used` of them kept; none
 * yet: `first` of them); 0 when the memory cannot be had. */
static int grow_array(void **array, uint64_t *cap, uint64_t used, size_t size, uint64_t first)
{
    uint64_t bigger_cap = *cap ? *cap * 2 : first;
    void *bigger = region(bigger_cap * size);
    if (!bigger) return 0;
    if (*array) {
        memcpy(bigger, *array, used * size);
        region_free(*array, *cap * size);
    }
    *array = bigger;
    *cap = bigger_cap;
    return 1;
}

static int piece_push(uint64_t lo, uint64_t hi, int kind, int mem)
{
    if (lo >= hi) return 1;
    if (g_scan.npieces == g_scan.pieces_cap && !grow_array((void **)&g_scan.pieces, &g_scan.pieces_cap, g_scan.npieces, sizeof(struct piece), 4096)) {
        g_scan.failed = 1; /* not a piece of another kind: the image instead */
        return 0;
    }
    g_scan.pieces[g_scan.npieces++] = (struct piece){lo, hi, kind, mem};
    return 1;
}

/* The first block at or above addr. */
static uint64_t first_block_at(uint64_t addr)
{
    uint64_t lo = 0, hi = g_scan.n;
    while (lo < hi) {
        uint64_t mid = (lo + hi) >> 1;
        if (sb_lo(&g_scan.b[mid]) < addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Whether the name is libc's (memory-image.ts: /\/libc[.-][^/]*\.so/ or /\/libc\.so/). */
static int is_libc(const char *name, size_t len)
{
    for (size_t i = 0; i + 5 <= len; i++) {
        if (memcmp(name + i, "/libc", 5) != 0) continue;
        size_t at = i + 5;
        if (at + 3 <= len && memcmp(name + at, ".so", 3) == 0) return 1;
        if (at >= len || (name[at] != '.' && name[at] != '-')) continue;
        for (size_t k = at + 1; k + 3 <= len && name[k] != '/'; k++)
            if (memcmp(name + k, ".so", 3) == 0) return 1;
    }
    return 0;
}

/* The stack pointer of the thread running on [lo, hi): this one's first, then the stopped ones', as
 * the image lists them; 0 when none. */
static uint64_t piece_thread_sp(uint64_t lo, uint64_t hi, uint64_t sp)
{
    if (sp >= lo && sp < hi) return sp;
    for (int i = 0; i < g_nstopped; i++) {
        struct stopped *s = &g_stopped[i];
        if (s->tid <= 0 || (!s->arrived && !s->sp)) continue;
        if (s->sp >= lo && s->sp < hi) return s->sp;
    }
    return 0;
}

/* Reads a word of our own memory that may not be readable: 0 then. */
static int read_word(uint64_t addr, uint64_t *w)
{
    struct iovec local = {w, 8}, remote = {(void *)addr, 8};
    return sys6(SYS_process_vm_readv, g_pid, (long)&local, 1, (long)&remote, 1, 0) == 8;
}

/* memory-image.ts's mmappedChunks: the mmapped malloc chunks holding the blocks in [lo, hi), pushed
 * as heap with the memory between them as roots; 0 when some block there is no such chunk (then
 * the whole mapping is malloc's). */
static int push_mmapped_chunks(uint64_t lo, uint64_t hi, uint64_t first, int mem)
{
    uint64_t covered = lo;
    uint64_t mark = g_scan.npieces;
    for (uint64_t i = first; i < g_scan.n && sb_lo(&g_scan.b[i]) < hi; i++) {
        uint64_t block = sb_lo(&g_scan.b[i]), size, padding;
        if (block < covered || block - 16 < lo || !read_word(block - 8, &size) || !read_word(block - 16, &padding) || (size & 2) == 0) goto none;
        uint64_t start = block - 16 - padding;
        uint64_t end = start + (size & ~(uint64_t)7);
        if (start < covered || end > hi || end <= block || start > block) goto none;
        if (!piece_push(covered, start, PIECE_ROOT, mem) || !piece_push(start, end, PIECE_HEAP, mem)) goto none;
        covered = end;
    }
    if (!piece_push(covered, hi, PIECE_ROOT, mem)) goto none;
    return 1;
none:
    g_scan.npieces = mark;
    return 0;
}

/* One piece of a writable mapping (what is left of it around our own memory): memory-image.ts's
 * memoryImage decides what it is. */
/* Whether the piece [lo, ...) of mapping `m` is an arena of malloc's: heap whatever blocks it holds.
 * [heap], or an anonymous mapping at a multiple of 64 MiB that no thread runs on and that starts
 * with a heap_info (glibc's header of an arena's heap: its arena, then its size). A thread's stack
 * lands at such an address too: an arena's aligned mapping leaves aligned holes, and a new thread's
 * stack fills one (1 run in 20 of debugee/field/busy-worker). Read as heap, the blocks only its
 * stack held read as lost. */
static int piece_is_arena(uint64_t lo, const struct maps_line *m, uint64_t sp)
{
    if (m->name_len == 6 && memcmp(m->name, "[heap]", 6) == 0) return 1;
    if (m->name_len != 0 || lo % ARENA_ALIGNMENT != 0 || piece_thread_sp(m->start, m->end, sp)) return 0;
    uint64_t arena, size;
    return read_word(lo, &arena) && arena && read_word(lo + 16, &size) && size && size <= ARENA_ALIGNMENT;
}

/* Where a root piece [lo, hi) of mapping `m` starts to be read (`guarded`: its first piece, of a
 * guarded mapping): a stack from its thread's stack pointer up. */
static uint64_t piece_root_from(uint64_t lo, uint64_t hi, int guarded, const struct maps_line *m, uint64_t sp)
{
    uint64_t tsp = piece_thread_sp(lo, hi, sp);
    if (tsp) return tsp;
    /* a guarded anonymous mapping no thread runs on: a dead thread's stack that glibc keeps for
     * reuse; only its thread descriptor is a root */
    if (m->name_len == 0 && guarded) return hi - lo > THREAD_DESCRIPTOR ? hi - THREAD_DESCRIPTOR : lo;
    return lo;
}

static int scan_piece(uint64_t lo, uint64_t hi, int guarded, const struct maps_line *m, uint64_t sp)
{
    if (lo >= hi) return 1;
    int mem = maps_memory(m);
    int arena = piece_is_arena(lo, m, sp);
    uint64_t first = first_block_at(lo);
    int holds = first < g_scan.n && sb_lo(&g_scan.b[first]) < hi;
    if (!arena && holds && push_mmapped_chunks(lo, hi, first, mem)) return 1;
    if (arena || holds) return piece_push(lo, hi, PIECE_HEAP, mem);
    return piece_push(piece_root_from(lo, hi, guarded, m, sp), hi, is_libc(m->name, m->name_len) ? PIECE_LIBC : PIECE_ROOT, mem);
}

struct scan_ctx {
    const struct maps_line *m;
    int guarded;
    uint64_t sp;
};

/* A piece of a writable mapping outside our own memory (outside_ours): non-zero when our memory for
 * it could not be had. */
static int scan_visit(uintptr_t lo, uintptr_t hi, int first, void *ctx)
{
    struct scan_ctx *c = ctx;
    return !scan_piece(lo, hi, first && c->guarded, c->m, c->sp);
}

/* Whether [lo, hi) lies inside one heap piece (the image would hold its bytes). */
static int in_heap(uint64_t lo, uint64_t hi)
{
    uint32_t a = 0, b = g_scan.nheap;
    if (!b) return 0;
    b--;
    if (lo < g_scan.pieces[g_scan.heap_index[0]].lo) return 0;
    while (a < b) {
        uint32_t mid = (a + b + 1) >> 1;
        if (g_scan.pieces[g_scan.heap_index[mid]].lo <= lo) a = mid;
        else b = mid - 1;
    }
    return hi <= g_scan.pieces[g_scan.heap_index[a]].hi;
}

/* ---------------------------------------------------------------------------------------------
 * Vtables, for memcheck's multipleinheritance heuristic: an address is one when it lies in a
 * readable mapping of a file and, of the words from it (at most 21, and not the mapping's last), the
 * first two that are not null point into executable mappings of files; a word pointing anywhere
 * else first says no (mc_leakcheck.c's aligned_ptr_above_page0_is_vtable_addr). The file mappings
 * come from the scan's copy of the maps, once a scan; the answers are kept for the scan, by address.
 */

#define FILE_MAPS_MAX 8192
#define VTABLE_WORDS 21
#define VTABLE_CACHE 1024

static struct file_map {
    uint64_t lo, hi;
    uint8_t readable, executable;
} g_file_maps[FILE_MAPS_MAX];
static int g_nfile_maps = -1; /* -1: not read for this scan */
static struct { uint64_t addr; uint8_t answer; } g_vtable_cache[VTABLE_CACHE]; /* answer: 0 unknown, 1 no, 2 yes */

/* Forgets the file mappings and the answers: the scan's maps are read again. */
static void vtables_forget(void)
{
    g_nfile_maps = -1;
    memset(g_vtable_cache, 0, sizeof g_vtable_cache);
}

static void file_maps_read(void)
{
    g_nfile_maps = 0;
    const char *p = g_maps_copy.text;
    struct maps_line m;
    while (p && g_nfile_maps < FILE_MAPS_MAX && next_maps_line(&p, &m)) {
        if (m.name_len == 0 || m.name[0] != '/') continue;
        g_file_maps[g_nfile_maps++] = (struct file_map){m.start, m.end, m.perms[0] == 'r', m.perms[2] == 'x'};
    }
}

/* The file mapping holding addr, or NULL. */
static const struct file_map *file_map_of(uint64_t addr)
{
    if (g_nfile_maps < 0) file_maps_read();
    int a = 0, b = g_nfile_maps - 1;
    while (a <= b) {
        int mid = (a + b) >> 1;
        if (addr < g_file_maps[mid].lo) b = mid - 1;
        else if (addr >= g_file_maps[mid].hi) a = mid + 1;
        else return &g_file_maps[mid];
    }
    return NULL;
}

static int is_vtable(uint64_t addr)
{
    uint64_t slot = ((addr >> 3) * 0x9E3779B97F4A7C15ull) >> 54;
    if (g_vtable_cache[slot].addr == addr && g_vtable_cache[slot].answer) return g_vtable_cache[slot].answer == 2;
    int yes = 0;
    const struct file_map *m = file_map_of(addr);
    if (m && m->readable) {
        /* memcheck's last word: the mapping's last byte less a word */
        uint64_t last = addr + 8 * (VTABLE_WORDS - 1);
        if (last > m->hi - 1 - 8) last = m->hi - 1 - 8;
        uint64_t words[VTABLE_WORDS];
        size_t n = last >= addr ? (size_t)((last - addr) / 8 + 1) : 0;
        struct iovec local = {words, n * 8}, remote = {(void *)addr, n * 8};
        /* a word that cannot be read (past the file's end) stops memcheck's check too: no */
        if (n && sys6(SYS_process_vm_readv, g_pid, (long)&local, 1, (long)&remote, 1, 0) == (long)(n * 8)) {
            int functions = 0;
            for (size_t k = 0; k < n && functions < 2; k++) {
                if (!words[k]) continue;
                const struct file_map *f = file_map_of(words[k]);
                if (!f || !f->executable) break;
                functions++;
            }
            yes = functions == 2;
        }
    }
    g_vtable_cache[slot].addr = addr;
    g_vtable_cache[slot].answer = yes ? 2 : 1;
    return yes;
}

/* memcheck's heuristics (all on by default): interior pointers that C++ and common C idioms make. */
static int heuristic(uint64_t p, uint64_t lo, uint64_t hi)
{
    uint64_t size = hi - lo;
    const uint64_t *w = (const uint64_t *)lo;
    if (p == lo + 24) {
        /* std::string (old ABI): length, capacity, refcount, then the characters */
        if (24 + w[1] + 1 == size && w[0] <= w[1]) return 1;
    }
    if (p == lo + 8) {
        uint64_t first = w[0];
        if (first > 0 && (size - 8 == first || (size - 8) % first == 0)) return 1; /* length64, new[] */
    }
    /* multipleinheritance: a pointer to a base class's part of an object after the first, each
     * part starting with its vtable pointer */
    if (p % 8 == 0 && p + 8 <= hi && size >= 8) {
        uint64_t inner = *(const uint64_t *)p, first = w[0];
        if (inner % 8 == 0 && inner >= 4096 && first % 8 == 0 && first >= 4096 && is_vtable(inner) && is_vtable(first)) return 1;
    }
    return 0;
}

/* The mark stack holds each block once at most: a block marked again while it waits there (possibly
 * reached, then reached from its start) is scanned once, in the state it has when its turn comes,
 * as memcheck's mark stack does. So it never holds more than every block: its room is reserved
 * for all of them and touched only as deep as it goes (5,000,000 blocks a table points to took it
 * to 32 MB by doubling, with the old and new copies mapped together at each step). */
static int scan_stack_reserve(uint64_t blocks)
{
    g_scan.stack_cap = blocks;
    g_scan.stack = region(blocks * sizeof(uint32_t));
    g_scan.queued = region_filled((blocks + 63) / 64 * 8);
    return g_scan.stack && g_scan.queued;
}

static inline void scan_push(uint64_t i)
{
    uint64_t bit = 1ull << (i & 63);
    if (g_scan.queued[i >> 6] & bit) return;
    g_scan.queued[i >> 6] |= bit;
    g_scan.stack[g_scan.depth++] = (uint32_t)i;
}

static inline uint32_t scan_pop(void)
{
    uint32_t i = g_scan.stack[--g_scan.depth];
    g_scan.queued[i >> 6] &= ~(1ull << (i & 63));
    return i;
}

static inline void scan_reach(uint64_t p, int prior_definite)
{
    int64_t i = scan_find(p);
    if (i < 0) return;
    uint8_t current = g_scan.state[i];
    if (current == SCAN_REACHABLE) return;
    const struct scan_block *b = &g_scan.b[i];
    uint64_t lo = sb_lo(b);
    int via_start = p == lo || heuristic(p, lo, sb_hi(b));
    if (via_start && prior_definite) {
        g_scan.state[i] = SCAN_REACHABLE;
        scan_push((uint64_t)i);
    } else if (current == SCAN_UNREACHED) {
        g_scan.state[i] = SCAN_POSSIBLE;
        scan_push((uint64_t)i);
    }
}

/* The aligned words of [lo, hi): the first, and how many. */
static inline const uint64_t *words_of(uint64_t lo, uint64_t hi, uint64_t *count)
{
    uint64_t first = (lo + 7) & ~(uint64_t)7;
    *count = hi >= first + 8 ? (hi - first) / 8 : 0;
    return (const uint64_t *)first;
}

static void scan_drain(void)
{
    while (g_scan.depth > 0) {
        uint32_t i = scan_pop();
        uint64_t lo = sb_lo(&g_scan.b[i]), hi = sb_hi(&g_scan.b[i]);
        if (!in_heap(lo, hi)) continue;
        int definite = g_scan.state[i] == SCAN_REACHABLE;
        uint64_t count;
        const uint64_t *w = words_of(lo, hi, &count);
        for (uint64_t k = 0; k < count; k++)
            if (w[k] < (1ull << 48)) scan_reach(w[k], definite);
    }
}

/* The chunk end of a block (memory-image.ts's chunkEnd), or 0 when it is mmapped or unknown. */
static uint64_t chunk_end(const struct scan_block *b)
{
    uint64_t lo = sb_lo(b);
    if (!in_heap(lo - 8, lo)) return 0;
    uint64_t header = ((const uint64_t *)lo)[-1];
    if (header & 2) return 0;
    return lo - 16 + (header & ~(uint64_t)7);
}

/* Marks from a buffer of a root piece's words (read_words; ctx: the piece). */
static int mark_from_root(const uint64_t *w, size_t n, uintptr_t at, void *ctx)
{
    (void)at;
    const struct piece *r = ctx;
    for (size_t k = 0; k < n; k++) {
        uint64_t p = w[k];
        if (p >= (1ull << 48) || p < g_scan.lowest || p > g_scan.highest) continue;
        if (r->kind == PIECE_LIBC) {
            int64_t i = scan_find(p);
            if (i >= 0 && p != sb_lo(&g_scan.b[i]) && chunk_end(&g_scan.b[i]) == p) continue;
        }
        scan_reach(p, 1);
        if (g_scan.depth) scan_drain();
    }
    return 0;
}

/* Marks from a root piece; the whole piece is left out when some of it cannot be read, as the image
 * leaves it out. */
static void scan_root(struct piece *r)
{
    /* first whether it can all be read: a page at a time, when it maps a file */
    for (uint64_t at = (r->lo + 7) & ~(uint64_t)7; (r->mem & MEM_FILE) && at < r->hi; at = (at | 4095) + 1) {
        uint64_t w;
        if (!read_word(at & ~(uint64_t)7, &w)) return;
    }
    read_words(r->lo, r->hi, r->mem, mark_from_root, r);
}

/* Cliques: each unreached block, in address order, claims the unreached blocks it points to. */
static void scan_cliques(void)
{
    for (uint64_t leader = 0; leader < g_scan.n; leader++) {
        if (g_scan.state[leader] != SCAN_UNREACHED) continue;
        g_scan.depth = 0;
        scan_push(leader);
        while (g_scan.depth > 0) {
            const struct scan_block *b = &g_scan.b[scan_pop()];
            uint64_t lo = sb_lo(b), hi = sb_hi(b);
            if (!in_heap(lo, hi)) continue;
            uint64_t count;
            const uint64_t *w = words_of(lo, hi, &count);
            for (uint64_t k = 0; k < count; k++) {
                if (w[k] >= (1ull << 48)) continue;
                int64_t j = scan_find(w[k]);
                if (j < 0 || (uint64_t)j == leader || g_scan.state[j] != SCAN_UNREACHED) continue;
                g_scan.state[j] = SCAN_INDIRECT;
                scan_push((uint64_t)j);
            }
        }
    }
}

static void scan_release(uint64_t blocks_cap)
{
    if (g_scan.b) region_free(g_scan.b, blocks_cap * sizeof(struct scan_block));
    if (g_scan.state) region_free(g_scan.state, blocks_cap);
    if (g_scan.stack) region_free(g_scan.stack, g_scan.stack_cap * sizeof(uint32_t));
    if (g_scan.queued) region_free(g_scan.queued, (g_scan.stack_cap + 63) / 64 * 8);
    if (g_scan.pages) region_free(g_scan.pages, g_scan.pages_bytes);
    if (g_scan.pieces) region_free(g_scan.pieces, g_scan.pieces_cap * sizeof(struct piece));
    if (g_scan.heap_index) region_free(g_scan.heap_index, g_scan.pieces_cap * sizeof(uint32_t));
    memset(&g_scan, 0, sizeof g_scan);
}

/* The callee-saved registers' places in a T line's order (rbx rbp r12-r15), and the named ones. */
static int register_live(int k, const char *at_call)
{
    static const char *const names[15] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
    if (!at_call) return 1;
    if (k == 1 || k == 6 || k >= 11) return 1;
    size_t len = x_strlen(names[k]);
    for (const char *p = at_call; *p;) {
        const char *e = p;
        while (*e && *e != ' ') e++;
        if ((size_t)(e - p) == len && memcmp(p, names[k], len) == 0) return 1;
        p = *e ? e + 1 : e;
    }
    return 0;
}

/* The registers as roots: this thread's live ones (`regs`, `at_call` as for dump()), and every
 * stopped thread's. */
static inline void registers_reach(const uint64_t *regs, const char *at_call, void (*reach)(uint64_t p, int prior_definite))
{
    for (int k = 0; k < 15; k++)
        if (register_live(k, at_call) && regs[k] < (1ull << 48)) reach(regs[k], 1);
    for (int i = 0; i < g_nstopped; i++) {
        struct stopped *s = &g_stopped[i];
        if (s->tid <= 0 || (!s->arrived && !s->sp)) continue;
        for (int k = 0; k < 15; k++)
            if (s->regs[k] < (1ull << 48)) reach(s->regs[k], 1);
    }
}

/* The blocks the model does not know yet, grouped by stack, allocator and kind (a U line's records). */
struct group {
    uint32_t sid;
    uint16_t alloc;
    uint16_t state;
    uint64_t blocks, bytes, first_seq;
};

static struct {
    struct group *g;
    uint32_t *index; /* group + 1, open-addressed by key */
    uint64_t n, cap; /* cap: a power of two, index slots; at most cap / 2 groups */
} g_groups;

/* A group's first index slot, before the mask. The stack id sits in the key's low bits: a product
 * carries a bit only upwards, and with it above bit 32 the slots (bits 20 and up) of 100,000 stacks
 * of one kind fell in 64 runs, each probed end to end. */
static inline uint64_t group_home(uint32_t sid, uint16_t alloc, uint16_t state)
{
    uint64_t key = (uint64_t)state << 48 | (uint64_t)alloc << 32 | sid;
    return (key * 0x9E3779B97F4A7C15ull) >> 20;
}

static void groups_release(void)
{
    if (g_groups.g) region_free(g_groups.g, g_groups.cap / 2 * sizeof(struct group));
    if (g_groups.index) region_free(g_groups.index, g_groups.cap * sizeof(uint32_t));
    memset(&g_groups, 0, sizeof g_groups);
}

static int groups_grow(void)
{
    uint64_t cap = g_groups.cap ? g_groups.cap * 2 : 4096;
    struct group *g = region(cap / 2 * sizeof *g);
    uint32_t *index = region(cap * sizeof *index);
    if (!g || !index) {
        if (g) region_free(g, cap / 2 * sizeof *g);
        if (index) region_free(index, cap * sizeof *index);
        return 0;
    }
    for (uint64_t i = 0; i < g_groups.n; i++) {
        g[i] = g_groups.g[i];
        uint64_t at = group_home(g[i].sid, g[i].alloc, g[i].state) & (cap - 1);
        while (index[at]) at = (at + 1) & (cap - 1);
        index[at] = (uint32_t)i + 1;
    }
    uint64_t n = g_groups.n;
    groups_release();
    g_groups.g = g;
    g_groups.index = index;
    g_groups.cap = cap;
    g_groups.n = n;
    return 1;
}

static int group_add(const struct block *b, uint8_t state)
{
    if (2 * (g_groups.n + 1) > g_groups.cap && !groups_grow()) return 0;
    uint16_t alloc = (uint16_t)b->alloc;
    uint32_t sid = block_sid(b);
    uint64_t at = group_home(sid, alloc, state) & (g_groups.cap - 1);
    for (;; at = (at + 1) & (g_groups.cap - 1)) {
        uint32_t k = g_groups.index[at];
        if (!k) break;
        struct group *g = &g_groups.g[k - 1];
        if (g->sid == sid && g->alloc == alloc && g->state == state) {
            g->blocks++;
            g->bytes += b->size;
            if (b->seq < g->first_seq) g->first_seq = b->seq;
            return 1;
        }
    }
    g_groups.g[g_groups.n] = (struct group){sid, alloc, state, 1, b->size, b->seq};
    g_groups.index[at] = (uint32_t)++g_groups.n;
    return 1;
}

/* The blocks the model does not know, grouped (U line), instead of one record each in a batch: at
 * the end, with no test case running, the host needs their sums by stack and kind alone. They then
 * count as sent, and the counts' N line follows. 0 when our memory for it could not be had (nothing
 * is sent then). */
static int send_groups(void)
{
    /* each block is counted as sent as it is grouped, as the batch would have (the N line counts
     * the rest); the V line leaves it out (0x80): the U line tells of it */
    uint64_t sent = 0;
    for (uint64_t i = 0; i < g_scan.n; i++) {
        struct block *b = &g_blocks[g_scan.b[i].slot];
        if (!b->unsent) continue;
        block_give_stack(b);
        if (!group_add(b, g_scan.state[i])) goto undo;
        b->unsent = 0;
        g_sent_live++;
        g_n_bytes -= b->size;
        g_scan.state[i] |= 0x80;
        sent++;
    }
    for (uint64_t i = 0; i < g_groups.n; i++) stack_send(g_groups.g[i].sid);
    out_str("U ");
    out_dec(g_groups.n);
    out_c(' ');
    out_dec(g_batch_from);
    out_c(' ');
    out_dec(g_seq);
    out_c('\n');
    for (uint64_t i = 0; i < g_groups.n; i++) out_bytes((const char *)&g_groups.g[i], sizeof(struct group));
    groups_release();
    /* send_pending counts the blocks recorded since the last boundary less those unsent: these
     * were unsent when it would have counted them */
    g_seq_mark += sent;
    send_pending();
    return 1;
undo:
    /* nothing was sent: the blocks counted so far are unsent again, for the image */
    for (uint64_t i = 0; i < g_scan.n; i++) {
        if (!(g_scan.state[i] & 0x80)) continue;
        struct block *b = &g_blocks[g_scan.b[i].slot];
        b->unsent = 1;
        g_sent_live--;
        g_n_bytes += b->size;
        g_scan.state[i] &= 0x7f;
    }
    groups_release();
    return 0;
}

/* The scan and the V line, the world stopped (see dump() for the arguments; `grouped`: the blocks
 * not sent yet go out grouped first, see send_groups): 0 when our own memory for it could not be
 * had (the caller takes the image instead). Under the lock. */
static int scan_verdict(const char *point, uint64_t sp, const uint64_t *regs, const char *at_call, int grouped)
{
    int final = x_strcmp(point, "test") != 0;
    uint64_t cap = g_nblocks + 1;
    if (g_blocks_cap > UINT32_MAX) return 0; /* a slot beyond a scan_block's: the image then */
    /* the roots are read with process_vm_readv, which a seccomp policy may refuse: the image then */
    uint64_t probe;
    if (!read_word((uint64_t)&cap, &probe) || probe != cap) return 0;
    g_scan.b = region_filled(cap * sizeof(struct scan_block));
    if (!g_scan.b) goto fail;
    for (uint64_t i = 0; i < g_blocks_cap; i++) {
        const struct block *b = &g_blocks[i];
        if (b->addr) g_scan.b[g_scan.n++] = (struct scan_block){b->addr << 16 | (b->size < SIZE_BIG ? b->size : SIZE_BIG), (uint32_t)i};
    }
    if (g_scan.n) {
        scan_sort();
        g_scan.lowest = sb_lo(&g_scan.b[0]);
        for (uint64_t i = 0; i < g_scan.n; i++)
            if (sb_hi(&g_scan.b[i]) > g_scan.highest) g_scan.highest = sb_hi(&g_scan.b[i]);
        if (!scan_pages()) goto fail;
    }
    if (!(g_scan.state = region_filled(cap)) || !scan_stack_reserve(cap)) goto fail;
    /* every allocation of ours is made: the maps now show what the scan reads */
    if (!grow_array((void **)&g_scan.pieces, &g_scan.pieces_cap, 0, sizeof(struct piece), 4096) || !read_maps()) goto fail;
    vtables_forget();
    struct writable_maps w = {g_maps_copy.text, 0, ""};
    struct maps_line m;
    int guarded;
    while (next_writable(&w, &m, &guarded))
        if (outside_ours(m.start, m.end, 1, scan_visit, &(struct scan_ctx){&m, guarded, sp})) goto fail;
    g_scan.heap_index = region(g_scan.pieces_cap * sizeof(uint32_t));
    if (!g_scan.heap_index) goto fail;
    for (uint32_t i = 0; i < g_scan.npieces; i++) /* the maps are in address order, and so the pieces */
        if (g_scan.pieces[i].kind == PIECE_HEAP) g_scan.heap_index[g_scan.nheap++] = i;
    if (g_scan.n) {
        for (uint32_t i = 0; i < g_scan.npieces; i++)
            if (g_scan.pieces[i].kind != PIECE_HEAP) scan_root(&g_scan.pieces[i]);
        if (!final) {
            /* at the end of the process memcheck scans no registers: its threads are gone */
            registers_reach(regs, at_call, scan_reach);
            scan_drain();
        }
        scan_cliques();
    }
    if (g_scan.failed) goto fail;
    if (grouped && !send_groups()) goto fail;
    /* the blocks that are not reachable (at a test end: the running test case's alone); none the
     * host was never sent (blocks.c's kept_back: every other one went out before the scan) */
    uint64_t lost = 0;
    for (uint64_t i = 0; i < g_scan.n; i++) {
        if (g_by_stack && g_blocks[g_scan.b[i].slot].unsent) g_scan.state[i] = SCAN_REACHABLE;
        if (g_scan.state[i] == SCAN_REACHABLE) continue;
        if (g_scan.state[i] & 0x80) g_scan.state[i] = SCAN_REACHABLE;
        else if (!final && g_blocks[g_scan.b[i].slot].seq < g_test_first_seq) g_scan.state[i] = SCAN_REACHABLE;
        else lost++;
    }
    out_str("V ");
    out_str(point);
    out_c(' ');
    out_dec(lost);
    out_c('\n');
    for (uint64_t i = 0; i < g_scan.n; i++) {
        if (g_scan.state[i] == SCAN_REACHABLE) continue;
        uint64_t record[2] = {sb_lo(&g_scan.b[i]), g_scan.state[i]};
        out_bytes((const char *)record, sizeof record);
    }
    scan_release(cap);
    return 1;
fail:
    scan_release(cap);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * A test end judged by its own blocks. The whole scan sorts and marks every live block (300 test
 * cases over a fixture of 100,000 live blocks spent 13 ms at each leaky end on that), but the V
 * line of a test end tells of the test case's own live blocks alone, and their kinds depend on the
 * rest of the heap only through the words outside them that point into them. So the writable
 * memory is read once for such words, and each one found is weighed as the whole scan would weigh
 * it: in a root (a stack from its thread's stack pointer up, a file's data, libc's with its rule
 * for chunk ends, a mapping that holds no block) it marks the block from there, as do the
 * registers; in a heap piece it is the word of a block the whole scan may or may not reach, and
 * the whole scan decides (it does too where a mapping cannot be read, or the test left more than
 * OWN_MAX blocks). The marking and the cliques then run among the own blocks alone: no chain into
 * them passes through another block, and a clique from one of them that passes through other
 * unreached blocks comes back into none of them. The world stopped, under the lock.
 */

#define OWN_PENDING 1024 /* words found in anonymous mappings, weighed once it is known whether a block lies there */
#define OWN_PIECES 64

static uint8_t g_own_state[OWN_MAX];
static uint16_t g_own_stack[2 * OWN_MAX]; /* each block is pushed at most once per state it reaches */
static int g_own_depth;
static struct {
    uint64_t word;
    int piece;
    int root; /* at or above where the whole scan would read the piece as a root */
} g_own_pending[OWN_PENDING];
static int g_npending;
/* Where words in malloc's arenas point into own blocks: each is weighed by the whole scan when it
 * lies inside a live block (one the whole scan may reach), and is nothing when it lies in free
 * memory or the allocator's headers, which the whole scan never reads (a freed temporary that held
 * the block sent every third leaky test end of a Node addon to the whole scan). In address order
 * once the walk is done. */
static uint64_t g_own_heap_words[OWN_PENDING];
static int g_nheap_words;
static struct { uint64_t lo, hi; } g_own_pieces[OWN_PIECES];
static int g_nown_pieces;

static inline void own_reach(uint64_t p, int prior_definite)
{
    int i = own_index(p);
    if (i < 0 || g_own_state[i] == SCAN_REACHABLE) return;
    const struct own_block *b = &g_own[i];
    int via_start = p == b->lo || heuristic(p, b->lo, b->hi);
    if (via_start && prior_definite) g_own_state[i] = SCAN_REACHABLE;
    else if (g_own_state[i] == SCAN_UNREACHED) g_own_state[i] = SCAN_POSSIBLE;
    else return;
    g_own_stack[g_own_depth++] = (uint16_t)i;
}

static void own_drain(void)
{
    while (g_own_depth > 0) {
        int i = g_own_stack[--g_own_depth];
        int definite = g_own_state[i] == SCAN_REACHABLE;
        uint64_t count;
        const uint64_t *w = words_of(g_own[i].lo, g_own[i].hi, &count);
        for (uint64_t k = 0; k < count; k++)
            if (w[k] < (1ull << 48)) own_reach(w[k], definite);
    }
}

/* An own block's chunk end (chunk_end's, for libc's words): its header is in the heap it lies in. */
static uint64_t own_chunk_end(const struct own_block *b)
{
    uint64_t header;
    if (!read_word(b->lo - 8, &header) || (header & 2)) return 0;
    return b->lo - 16 + (header & ~(uint64_t)7);
}

struct own_piece {
    int kind;       /* PIECE_HEAP: any word into an own block sends the end to the whole scan */
    int pending;    /* anonymous: it may hold blocks (g_own_pieces index) */
    uint64_t from;  /* a root from here up */
};

static int own_words(const uint64_t *w, size_t n, uintptr_t at, void *ctx)
{
    const struct own_piece *piece = ctx;
    for (size_t k = 0; k < n; k++) {
        uint64_t p = w[k];
        if (LIKELY(p < g_own_min || p > g_own_max)) continue;
        int j = own_index(p);
        if (j < 0) continue;
        uint64_t where = at + 8 * k;
        if (into_own(where)) continue; /* an own block's word: the marking's to follow */
        if (piece->kind == PIECE_HEAP) {
            if (g_nheap_words == OWN_PENDING) return 1;
            g_own_heap_words[g_nheap_words++] = where;
            continue;
        }
        if (piece->pending >= 0) {
            if (g_npending == OWN_PENDING) return 1;
            g_own_pending[g_npending++] = (typeof(g_own_pending[0])){p, piece->pending, where >= piece->from};
            continue;
        }
        if (where < piece->from) continue;
        if (piece->kind == PIECE_LIBC && p != g_own[j].lo && own_chunk_end(&g_own[j]) == p) continue;
        own_reach(p, 1);
        own_drain();
    }
    return 0;
}

/* A piece of a writable mapping outside our memory, as scan_piece would take it: non-zero when the
 * whole scan must decide. */
static int own_visit(uintptr_t lo, uintptr_t hi, int first, void *ctx)
{
    const struct scan_ctx *c = ctx;
    const struct maps_line *m = c->m;
    if (lo >= hi) return 0;
    if (piece_is_arena(lo, m, c->sp)) {
        /* anonymous memory, read in place as the whole scan reads its blocks */
        uint64_t count;
        const uint64_t *words = words_of(lo, hi, &count);
        return own_words(words, count, (uintptr_t)words, &(struct own_piece){PIECE_HEAP, -1, lo});
    }
    uint64_t from = piece_root_from(lo, hi, first && c->guarded, m, c->sp);
    if (m->name_len == 0) {
        /* a block there makes it heap (or its chunks): known after the whole walk */
        if (g_nown_pieces == OWN_PIECES) return 1;
        int at = g_nown_pieces++;
        g_own_pieces[at].lo = lo;
        g_own_pieces[at].hi = hi;
        return read_words(lo, hi, maps_memory(m), own_words, &(struct own_piece){PIECE_ROOT, at, from}) != 0;
    }
    /* a file's or a named mapping: malloc's blocks are never there */
    int kind = is_libc(m->name, m->name_len) ? PIECE_LIBC : PIECE_ROOT;
    return read_words(from, hi, maps_memory(m), own_words, &(struct own_piece){kind, -1, from}) != 0;
}

/* Whether one of the arena words found lies in [lo, hi). */
static int heap_word_within(uint64_t lo, uint64_t hi)
{
    int a = 0, b = g_nheap_words;
    while (a < b) {
        int mid = (a + b) >> 1;
        if (g_own_heap_words[mid] < lo) a = mid + 1;
        else b = mid;
    }
    return a < g_nheap_words && g_own_heap_words[a] < hi;
}

/* The words found in anonymous mappings and arenas: 0 when one of those mappings holds a block (the
 * whole scan then: that mapping is heap), or an arena's word lies in a live block. */
static int own_weigh_pending(void)
{
    if (!g_npending && !g_nheap_words) return 1;
    for (int i = 1; i < g_nheap_words; i++) {
        uint64_t x = g_own_heap_words[i];
        int k = i;
        for (; k > 0 && g_own_heap_words[k - 1] > x; k--) g_own_heap_words[k] = g_own_heap_words[k - 1];
        g_own_heap_words[k] = x;
    }
    uint8_t found[OWN_PIECES] = {0};
    for (int i = 0; i < g_npending; i++) found[g_own_pending[i].piece] = 1;
    for (uint64_t i = 0; i < g_blocks_cap; i++) {
        uint64_t a = g_blocks[i].addr;
        if (!a) continue;
        if (g_nheap_words && heap_word_within(a, a + g_blocks[i].size)) return 0;
        for (int k = 0; k < g_nown_pieces; k++)
            if (found[k] && a >= g_own_pieces[k].lo && a < g_own_pieces[k].hi) return 0;
    }
    for (int i = 0; i < g_npending; i++) {
        if (!g_own_pending[i].root) continue;
        own_reach(g_own_pending[i].word, 1);
        own_drain();
    }
    return 1;
}

/* The test end's V line from its own blocks (see above): 0 when the whole scan must decide. */
static int scan_own(uint64_t sp, const uint64_t *regs, const char *at_call)
{
    if (!own_blocks()) return 0;
    memset(g_own_state, SCAN_UNREACHED, (size_t)g_nown);
    g_own_depth = g_npending = g_nheap_words = g_nown_pieces = 0;
    if (!read_maps()) return 0;
    vtables_forget();
    struct writable_maps w = {g_maps_copy.text, 0, ""};
    struct maps_line m;
    int guarded;
    while (next_writable(&w, &m, &guarded))
        if (outside_ours(m.start, m.end, 1, own_visit, &(struct scan_ctx){&m, guarded, sp})) return 0;
    if (!own_weigh_pending()) return 0;
    registers_reach(regs, at_call, own_reach);
    own_drain();
    /* scan_cliques among them */
    for (int leader = 0; leader < g_nown; leader++) {
        if (g_own_state[leader] != SCAN_UNREACHED) continue;
        g_own_depth = 0;
        g_own_stack[g_own_depth++] = (uint16_t)leader;
        while (g_own_depth > 0) {
            const struct own_block *b = &g_own[g_own_stack[--g_own_depth]];
            uint64_t count;
            const uint64_t *words = words_of(b->lo, b->hi, &count);
            for (uint64_t k = 0; k < count; k++) {
                int j = own_index(words[k]);
                if (j < 0 || j == leader || g_own_state[j] != SCAN_UNREACHED) continue;
                g_own_state[j] = SCAN_INDIRECT;
                g_own_stack[g_own_depth++] = (uint16_t)j;
            }
        }
    }
    /* every one of them, the reachable too: the host then needs no search of its table for them */
    out_str("V test ");
    out_dec((uint64_t)g_nown);
    out_str(" own\n");
    for (int i = 0; i < g_nown; i++) {
        uint64_t record[2] = {g_own[i].lo, g_own_state[i]};
        out_bytes((const char *)record, sizeof record);
    }
    return 1;
}

/* Whether the end can send the blocks the model does not know grouped (see send_groups): with no
 * test case running (its blocks would answer to it one by one), and counts kept here (the peaks). */
static int ends_grouped(void) { return !g_scan_image && !g_test_running && g_peaks && !g_by_stack && !g_all_events; }

/* What a boundary or the end sends the host of the heap: the scan's verdict, or (HEAPSPEC_SCAN=image,
 * or when the scan could not get its memory) the memory image. `grouped`: the caller left the
 * blocks not sent yet for the scan to send grouped (ends_grouped). */
static void heap_verdict(const char *point, uint64_t sp, const uint64_t *regs, const char *at_call, int grouped)
{
    if (!g_scan_image) {
        stop_world();
        int test = x_strcmp(point, "test") == 0;
        int done = (test && !g_scan_whole && scan_own(sp, regs, at_call)) || scan_verdict(point, sp, regs, at_call, grouped);
        resume_world();
        if (done) return;
    }
    if (grouped) send_pending();
    if (g_by_stack) {
        /* the host scans the image with its model: the blocks kept back go out now */
        g_send_all = 1;
        send_pending();
        g_send_all = 0;
    }
    dump(point, sp, regs, at_call);
}
