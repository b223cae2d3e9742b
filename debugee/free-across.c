/*
 * free-across.c - a block freed on one thread and freed again on another, in a program whose
 * threads each free blocks of their own meanwhile (each thread keeps its own record of its last
 * frees: the second free's story must come from the other thread's).
 *
 *   [freed_elsewhere]  main allocates 40 bytes; a worker frees them (in release); main frees
 *                      them again: "Address 0x... is 0 bytes inside a block of size 40 free'd",
 *                      at release, the block alloc'd at main
 *   [freed_here]       a worker allocates 56 bytes and frees them; main frees them again, after
 *                      two other workers freed 100 blocks each
 * Every block is freed and nothing leaks. stdout "free-across: done\n", exit code 0.
 * Not for native runs: glibc aborts at the first double free.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "heapspec.h"

static void *volatile shared;

__attribute__((noinline)) static void release(void *p) { free(p); }

static void *free_shared(void *arg)
{
    (void)arg;
    release(shared);
    return NULL;
}

static void *make_and_free(void *arg)
{
    (void)arg;
    shared = malloc(56);
    release(shared);
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) free(malloc(56));
    return NULL;
}

static int on_thread(void *(*fn)(void *))
{
    pthread_t t;
    return pthread_create(&t, NULL, fn, NULL) || pthread_join(t, NULL);
}

int main(void)
{
    heapspec_test_begin("freed_elsewhere");
    shared = malloc(40);
    if (on_thread(free_shared)) return 2;
    free(shared);
    heapspec_test_end("freed_elsewhere");
    heapspec_test_begin("freed_here");
    if (on_thread(make_and_free) || on_thread(churn) || on_thread(churn)) return 2;
    free(shared);
    heapspec_test_end("freed_here");
    if (write(1, "free-across: done\n", 18) != 18) return 1;
    return 0;
}
