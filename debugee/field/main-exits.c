/* A main thread that leaves by pthread_exit while another thread runs the test cases: Linux keeps
 * the main thread listed, as a zombie, until the process ends, and it never takes a signal.
 * 20 test cases on the other thread, each losing one 16-byte block; the process ends when that
 * thread returns (glibc's last thread calls exit).
 * Figures: definitely lost 320 bytes in 20 blocks (the thread's TLS, 272 bytes, is heapspec's
 * default suppression heapspec-glibc-thread-dtv). Prints one line from the thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "heapspec.h"

static void *volatile sink;

static void *tests(void *arg)
{
    (void)arg;
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "lost_%d", i);
        heapspec_test_begin(name);
        sink = malloc(16);
        sink = NULL;
        heapspec_test_end(name);
    }
    printf("main-exits: 20 test cases\n");
    fflush(stdout);
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, tests, NULL)) return 1;
    pthread_exit(NULL);
}
