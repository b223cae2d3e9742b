/*
 * hang.c - leaks one block, then never exits.
 *
 * Exercises: timeouts / interrupting a debugee. One 32-byte block is leaked
 * (pointer dropped), then the program sleeps forever in pause(). If it is
 * killed by a signal with a default "terminate" action (e.g. SIGINT,
 * SIGTERM), memcheck still runs its leak check and reports (verified with
 * SIGINT): 1 alloc, 0 frees, 32 bytes allocated; in use at exit 32 bytes in
 * 1 block; definitely lost 32 bytes in 1 block at leak_one (hang.c:20).
 * SIGKILL gives no report at all. Not listed in expected.json.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile sink;

__attribute__((noinline)) static void leak_one(void)
{
    char *p = malloc(32);
    memset(p, 0, 32);
    sink = p;
    sink = NULL;
}

int main(void)
{
    leak_one();
    for (;;)
        pause();
}
