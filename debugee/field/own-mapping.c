/* A pool the program maps itself, right next to a large (mmapped) malloc chunk: the kernel merges the
 * two into one mapping. The only pointer to a small block lives in the pool. memcheck: the block is
 * still reachable (the pool is the program's memory, a root), and the large block too. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *big;

int main(void)
{
    big = malloc(300000); /* above the mmap threshold: a mapping of its own */
    memset(big, 0, 64);
    /* right below the chunk's mapping, else right above it (glibc's size word says where it ends),
     * else anywhere */
    char *chunk = (char *)big - 16;
    char *after = chunk + (((size_t *)big)[-1] & ~(size_t)7);
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    void **pool = mmap(chunk - 4096 * 4, 4096 * 4, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (pool == MAP_FAILED) pool = mmap(after, 4096 * 4, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (pool == MAP_FAILED) pool = mmap(NULL, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool == MAP_FAILED) return 1;
    pool[0] = malloc(77);
    memset(pool[0], 'p', 77);
    return 0;
}
