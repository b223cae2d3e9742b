/* A thread's own malloc arena, as glibc lays it out (a heap_info, the arena's malloc_state, then
 * the chunks): the thread allocates four blocks and frees two of them, one into its tcache (200
 * bytes) and one into the arena's bins (2000 bytes, above the tcache's limit), then prints the
 * four addresses and waits for its stdin to close, so a test can read its memory meanwhile.
 * Usage: thread-arena < PIPE */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *work(void *arg)
{
    (void)arg;
    char *live = malloc(100);
    char *cached = malloc(200);
    char *binned = malloc(2000);
    char *guard = malloc(50); /* keeps the binned chunk from merging into the top chunk */
    free(cached);
    free(binned);
    printf("%p %p %p %p\n", (void *)live, (void *)cached, (void *)binned, (void *)guard);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    free(live);
    free(guard);
    return NULL;
}

int main(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, work, NULL) != 0) return 1;
    pthread_join(thread, NULL);
    return 0;
}
