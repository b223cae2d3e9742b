/*
 * free-errors.c - frees of pointers that are no live block, each inside a test case but two.
 *
 * Each once, in this order (test case in brackets):
 *   [double_free]    free() of a 16-byte block already freed
 *   [stack_free]     free() of a local array: "Address 0x... is on thread 1's stack",
 *                    "in frame #1, created by stack_free (free-errors.c:N)"
 *   [static_free]    free() of g_static + 8: 8 bytes inside data symbol "g_static"
 *   [interior_free]  free() of a 32-byte block's p + 8 (then the block itself)
 *   [realloc_freed]  realloc() of a freed 24-byte block to 48 (returns NULL), then of a freed
 *                    20-byte block to 0
 *   [threaded]       a second thread's double free, while the test runs on the first
 *   (no test case)   a double free after the last test case
 * Every block is freed and nothing leaks. stdout "free-errors: done\n", exit code 0.
 *
 * Expected memcheck figures (valgrind 3.19, Debian 12):
 *   total heap usage: 8 allocs, 15 frees, 444 bytes allocated
 *     (the program's 5 blocks of 16, 32, 24 and 20 bytes, the first bad realloc's 48 bytes, and
 *     the second thread's 272-byte TLS block; every free() call counts as a free, the bad ones
 *     too, a bad realloc as an allocation and a free, and a bad realloc to 0 as a free)
 *   in use at exit: 0 bytes in 0 blocks
 *   errors: 8 InvalidFree, one per case above (two in realloc_freed)
 *
 * Natively glibc aborts at the first double free ("free(): double free detected in tcache 2");
 * under memcheck, and under heapspec's preload and gdb backends, the bad frees are reported and
 * ignored and the program runs to its end.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "heapspec.h"

static char g_static[32];
static void *volatile launder; /* keeps the compiler from seeing (and warning about) the bad frees */

static void *hide(void *p)
{
    launder = p;
    return launder;
}

__attribute__((noinline)) static void double_free(void)
{
    char *p = malloc(16);
    free(p);
    free(hide(p));
}

__attribute__((noinline)) static void stack_free(void)
{
    int local[4] = {0};
    free(hide(local));
}

__attribute__((noinline)) static void static_free(void)
{
    free(hide(g_static + 8));
}

__attribute__((noinline)) static void interior_free(void)
{
    char *p = malloc(32);
    free(hide(p + 8));
    free(p);
}

__attribute__((noinline)) static void realloc_freed(void)
{
    char *p = malloc(24);
    free(p);
    if (realloc(hide(p), 48) != NULL)
        _exit(3);
    p = malloc(20);
    free(p);
    if (realloc(hide(p), 0) != NULL) /* memcheck's free(p): a free, no allocation */
        _exit(3);
}

static void *worker(void *arg)
{
    (void)arg;
    double_free();
    return NULL;
}

int main(void)
{
    pthread_t t;
    heapspec_test_begin("double_free");
    double_free();
    heapspec_test_end("double_free");
    heapspec_test_begin("stack_free");
    stack_free();
    heapspec_test_end("stack_free");
    heapspec_test_begin("static_free");
    static_free();
    heapspec_test_end("static_free");
    heapspec_test_begin("interior_free");
    interior_free();
    heapspec_test_end("interior_free");
    heapspec_test_begin("realloc_freed");
    realloc_freed();
    heapspec_test_end("realloc_freed");
    heapspec_test_begin("threaded");
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    heapspec_test_end("threaded");
    double_free();
    if (write(1, "free-errors: done\n", 18) != 18)
        return 1;
    return 0;
}
