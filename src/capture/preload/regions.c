/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Our own memory: mmapped, and listed, so that memory images leave it out.
 */

#define MAX_RANGES 256
static struct { uintptr_t lo, hi; } g_ranges[MAX_RANGES];
static int g_nranges;

/* Walks make regions too (an index that grows) while g_lock's holder may be making others: the
 * list has a lock of its own, the innermost of all. An image reads it with the world stopped and
 * without the lock: an entry is whole before the count covers it. */
static int g_ranges_lock;

static void range_add(uintptr_t lo, uintptr_t hi)
{
    mutex_lock(&g_ranges_lock);
    if (g_nranges < MAX_RANGES) {
        g_ranges[g_nranges].lo = lo;
        g_ranges[g_nranges].hi = hi;
        __atomic_store_n(&g_nranges, g_nranges + 1, __ATOMIC_RELEASE);
    }
    mutex_unlock(&g_ranges_lock);
}

static void range_remove(uintptr_t lo)
{
    mutex_lock(&g_ranges_lock);
    for (int i = 0; i < g_nranges; i++)
        if (g_ranges[i].lo == lo) {
            g_ranges[i] = g_ranges[g_nranges - 1];
            __atomic_store_n(&g_nranges, g_nranges - 1, __ATOMIC_RELEASE);
            break;
        }
    mutex_unlock(&g_ranges_lock);
}

static void *region_mapped(size_t size, int flags)
{
    size = (size + 4095) & ~(size_t)4095;
    void *p = x_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0);
    if (p == MAP_FAILED) return NULL;
    range_add((uintptr_t)p, (uintptr_t)p + size);
    return p;
}

/* Our memory, its pages touched as it is used. */
static void *region(size_t size) { return region_mapped(size, 0); }

/* A region written (or read) whole as soon as it is made: its pages come with the mmap (MAP_POPULATE)
 * instead of one fault each, which the scan's arrays took again at every scan (700 of the 5,700
 * faults of debugee/addon/entries.mjs's run). Not for the block table: a growth fills the new one
 * as it hands the old one back, and populated at once both would be mapped whole together. */
static void *region_filled(size_t size) { return region_mapped(size, MAP_POPULATE); }

static void region_free(void *p, size_t size)
{
    size = (size + 4095) & ~(size_t)4095;
    range_remove((uintptr_t)p);
    x_munmap(p, size);
}
