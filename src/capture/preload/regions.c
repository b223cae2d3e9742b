/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Our own memory: mmapped, and listed, so that memory images leave it out.
 */

#define MAX_RANGES 256
static struct { uintptr_t lo, hi; } g_ranges[MAX_RANGES];
static int g_nranges;

static void range_add(uintptr_t lo, uintptr_t hi)
{
    if (g_nranges < MAX_RANGES) {
        g_ranges[g_nranges].lo = lo;
        g_ranges[g_nranges].hi = hi;
        g_nranges++;
    }
}

static void range_remove(uintptr_t lo)
{
    for (int i = 0; i < g_nranges; i++)
        if (g_ranges[i].lo == lo) {
            g_ranges[i] = g_ranges[--g_nranges];
            return;
        }
}

static void *region(size_t size)
{
    size = (size + 4095) & ~(size_t)4095;
    void *p = x_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    range_add((uintptr_t)p, (uintptr_t)p + size);
    return p;
}

static void region_free(void *p, size_t size)
{
    size = (size + 4095) & ~(size_t)4095;
    range_remove((uintptr_t)p);
    x_munmap(p, size);
}
