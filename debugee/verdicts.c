/*
 * verdicts.c - test cases written the natural way, for the rule that a test case answers for
 * every block it allocated that is lost at its end or at exit (debugee/README of issue 13).
 * Per test case:
 *   scope_leak     markers in main around `p = strdup(...)`: main's local still points at the
 *                  15-byte block when the test ends; by exit it is lost: definite 15 in 1
 *   spawn_join     starts and joins two threads that free what they allocate: no leak of any
 *                  kind; glibc's DTV for the first thread (possibly lost at the test's end,
 *                  freed at exit) is its own bookkeeping, suppressed by default
 *   user_suppressed  leaks 40 bytes from known_leak(): definite, unless a suppression names it
 *   clean          allocates and frees: nothing
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

static void *work(void *arg)
{
    char *p = malloc(32);
    memset(p, 0, 32);
    free(p);
    return arg;
}

__attribute__((noinline)) void *known_leak(void)
{
    char *p = malloc(40);
    memset(p, 7, 40);
    return p;
}

int main(void)
{
    char *p;

    heapspec_test_begin("scope_leak");
    p = strdup("held by main's");
    heapspec_test_end("scope_leak");

    heapspec_test_begin("spawn_join");
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        pthread_create(&t, NULL, work, NULL);
        pthread_join(t, NULL);
    }
    heapspec_test_end("spawn_join");

    heapspec_test_begin("user_suppressed");
    known_leak();
    heapspec_test_end("user_suppressed");

    heapspec_test_begin("clean");
    free(malloc(10));
    heapspec_test_end("clean");

    p = NULL;
    return p != NULL;
}
