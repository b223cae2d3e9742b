/*
 * tests.c - a native test suite with several test cases, for per-test attribution.
 *
 * Each test case is bracketed by heapspec.h's markers (or, built with -DNO_MARKERS as
 * tests-nomarkers, found by name with --tests '^test_'). Per test case:
 *   test_clean        1 alloc, 1 free, 100 bytes; no leak
 *   test_leaks_two    2 allocs, 0 frees, 96 bytes; definite 96 bytes in 2 blocks (tests.c: leak)
 *   test_indirect     3 allocs, 0 frees, 96 bytes; definite 32 in 1, indirect 64 in 2
 *   test_thread_leak  a helper thread leaks 64 bytes: definite 64 in 1 (plus glibc's own
 *                     pthread_create allocation, freed when the thread is joined)
 *   test_keeps        1 alloc of 200 kept in a global: reachable, not a leak
 *   test_frees_kept   frees the block test_keeps kept: 1 free, no leak of its own
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifndef NO_MARKERS
#include "heapspec.h"
#define BEGIN(name) heapspec_test_begin(name)
#define END(name) heapspec_test_end(name)
#else
#define BEGIN(name)
#define END(name)
#endif

struct node {
    struct node *next;
    char payload[24];
};

static void *kept;

__attribute__((noinline)) static void *leak(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

__attribute__((noinline)) void test_clean(void)
{
    void *p = malloc(100);
    memset(p, 0, 100);
    free(p);
}

__attribute__((noinline)) void test_leaks_two(void)
{
    leak(48);
    leak(48);
}

__attribute__((noinline)) static struct node *node_new(struct node *next)
{
    struct node *n = malloc(sizeof *n);
    n->next = next;
    return n;
}

__attribute__((noinline)) void test_indirect(void)
{
    struct node *volatile head = node_new(node_new(node_new(NULL)));
    head = NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    leak(64);
    return NULL;
}

__attribute__((noinline)) void test_thread_leak(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
}

__attribute__((noinline)) void test_keeps(void)
{
    kept = malloc(200);
}

__attribute__((noinline)) void test_frees_kept(void)
{
    free(kept);
    kept = NULL;
}

#define RUN(fn)              \
    do {                     \
        BEGIN(#fn);          \
        fn();                \
        END(#fn);            \
    } while (0)

int main(void)
{
    RUN(test_clean);
    RUN(test_leaks_two);
    RUN(test_indirect);
    RUN(test_thread_leak);
    RUN(test_keeps);
    RUN(test_frees_kept);
    return 0;
}
