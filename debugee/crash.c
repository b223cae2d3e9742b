/*
 * crash.c - leaks, then dies of SIGSEGV.
 *
 * Exercises: two blocks (128 and 256 bytes) whose pointers are dropped, then
 * a store through a NULL pointer (volatile, so the compiler must emit it).
 * The process is killed by SIGSEGV (no exit code). memcheck still runs its
 * leak check when the client dies of a signal.
 * Hand count: 2 allocs, 0 frees, 384 bytes; definitely lost 384 bytes in
 * 2 blocks.
 *
 * Expected memcheck figures:
 *   total heap usage: 2 allocs, 0 frees, 384 bytes allocated
 *   in use at exit:   384 bytes in 2 blocks
 *   definitely lost:  384 bytes in 2 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: signal SIGSEGV
 *   loss records (memcheck's order; first frame in this file):
 *     definite 128 bytes in 1 blocks at leak (crash.c:30)
 *     definite 256 bytes in 1 blocks at leak (crash.c:30)
 */
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

__attribute__((noinline)) static void leak(size_t n)
{
    char *p = malloc(n);
    memset(p, 0, n);
    sink = p;
    sink = NULL;
}

__attribute__((noinline)) static void boom(void)
{
    int *volatile bad = NULL;
    *bad = 42;                       /* SIGSEGV */
}

int main(void)
{
    leak(128);
    leak(256);
    boom();
    return 0;
}
