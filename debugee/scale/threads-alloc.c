/* Threads allocating: T threads (argument 1, default 1) share PAIRS malloc/free pairs (argument 2,
 * default 4,000,000) through two call sites, each keeping a ring of 64 blocks live; each thread
 * then loses 8 blocks of 40 bytes (their addresses kept only xor-ed).
 * Figures: definitely lost 320 * T bytes in 8 * T blocks.
 * Usage: threads-alloc [THREADS (at most 128)] [PAIRS] */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static uintptr_t hidden[128 * 8];
static long per_thread;

__attribute__((noinline)) static void *small(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *large(size_t n) { return malloc(n + 256); }

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    void *ring[64] = {0};
    for (long i = 0; i < per_thread; i++) {
        free(ring[i & 63]);
        ring[i & 63] = (i & 3) ? small(16 + (size_t)(i & 15) * 8) : large((size_t)(i & 31));
    }
    for (int i = 0; i < 64; i++) free(ring[i]);
    for (int i = 0; i < 8; i++) hidden[t * 8 + i] = (uintptr_t)small(40) ^ 0x5a5a5a5a5a5a5a5aull;
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = argc > 1 ? atol(argv[1]) : 1;
    long pairs = argc > 2 ? atol(argv[2]) : 4000000;
    if (threads < 1 || threads > 128) return 2;
    per_thread = pairs / threads;
    pthread_t id[128];
    for (long t = 0; t < threads; t++) pthread_create(&id[t], NULL, worker, (void *)(intptr_t)t);
    for (long t = 0; t < threads; t++) pthread_join(id[t], NULL);
    return 0;
}
