/* Stale pointers in reused memory, from several threads at once: each thread builds a table of
 * 480 blocks, leaks every 40th, frees the table and the rest, then allocates four buffers of the
 * table's size and writes only their first 16 bytes. The buffers reuse freed chunks whose old
 * contents point at the leaked blocks. memcheck: every leaked block is definitely lost, on every
 * run. Usage: stale-threads [THREADS] (default 6). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TABLE 480

static void *buffers[64][4];

static void *work(void *arg)
{
    long t = (long)arg;
    char **table = malloc(TABLE * sizeof *table);
    for (int i = 0; i < TABLE; i++) table[i] = malloc(16 + (size_t)(i % 7) * 4);
    for (int i = 0; i < TABLE; i++)
        if (i % 40 != 0) free(table[i]);
    free(table);
    for (int b = 0; b < 4; b++) {
        buffers[t][b] = malloc(TABLE * sizeof(char *));
        memset(buffers[t][b], 'x', 16);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 6;
    if (n < 1 || n > 64) n = 6;
    pthread_t threads[64];
    for (long t = 0; t < n; t++) pthread_create(&threads[t], NULL, work, (void *)t);
    for (int t = 0; t < n; t++) pthread_join(threads[t], NULL);
    return 0; /* the buffers stay, still reachable */
}
