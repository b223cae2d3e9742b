/* Memory a program reserves and mostly never writes (Node reserves 80 MB so and writes a tenth of
 * it): a 256 MB private anonymous mapping holds the only pointers to two test cases' blocks, one on
 * a page far into it, one on a page the program then discards (MADV_DONTNEED: it reads as zeros
 * again). memcheck: the first is still reachable, the second definitely lost (24 bytes).
 *
 * `pte` prints whether the process's page tables grew across the test cases by more than the
 * pages written need: a scan that reads the whole mapping maps the kernel's zero page into every
 * page it never wrote (512 KB of page tables for 256 MB), which the program can see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "heapspec.h"

#define RESERVED (256ul << 20)

/* VmPTE of /proc/self/status, in kB; -1 when it cannot be read. */
static long page_tables(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmPTE: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int pte = argc > 1 && strcmp(argv[1], "pte") == 0;
    char *reserved = mmap(NULL, RESERVED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) return 1;
    long before = page_tables();

    heapspec_test_begin("far");
    void *kept = malloc(40);
    memset(kept, 'k', 40);
    *(void **)(reserved + (200ul << 20) + 8) = kept;
    heapspec_test_end("far");

    heapspec_test_begin("discarded");
    void *dropped = malloc(24);
    memset(dropped, 'd', 24);
    char *page = reserved + (100ul << 20);
    *(void **)page = dropped;
    madvise(page, 4096, MADV_DONTNEED);
    dropped = NULL;
    heapspec_test_end("discarded");

    long after = page_tables();
    if (pte) printf("page tables: %s\n", before < 0 || after < 0 ? "unknown" : after - before > 64 ? "grew" : "as they were");
    printf("untouched: done\n");
    return 0;
}
