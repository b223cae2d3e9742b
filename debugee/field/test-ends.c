/* Test ends whose blocks the rest of the heap does or does not point into: each heapspec.h test case
 * leaves blocks live at its end in another way the preload interposer must weigh as the whole scan
 * would (scan.c's scan_own): held on the stack, by a global, by a pointer into its middle, by one
 * another, by a block of the fixture, by a stale word in a freed chunk, by another thread's stack,
 * by a big (mmapped) block, or too many to judge alone. memcheck is the reference for every figure. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

struct node {
    struct node *next;
    long value;
};

void **fixture;       /* 64 slots, allocated before the tests */
void *global_keep;     /* a test's block held by a global until the end */
char *global_middle;   /* a pointer into a block's middle: possibly lost */
void *big_keep;        /* a 1 MB block: mmapped by glibc */
volatile void *sink;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER, ready = PTHREAD_COND_INITIALIZER;
static int released, holding;

/* A thread that keeps the only pointer to its block on its own stack until released. */
static void *holder(void *arg)
{
    (void)arg;
    void *volatile mine = malloc(72);
    memset((void *)mine, 0, 72);
    pthread_mutex_lock(&lock);
    holding = 1;
    pthread_cond_signal(&ready);
    while (!released) pthread_cond_wait(&go, &lock);
    pthread_mutex_unlock(&lock);
    free((void *)mine);
    return NULL;
}

int main(void)
{
    fixture = calloc(64, sizeof *fixture);
    for (int i = 0; i < 64; i++) fixture[i] = calloc(1, 32);

    /* held on main's stack at the end (a local), freed after it */
    heapspec_test_begin("stack_keeps");
    void *volatile local = malloc(40);
    heapspec_test_end("stack_keeps");
    free((void *)local);

    /* held by a global at the end, freed at exit's doorstep */
    heapspec_test_begin("global_keeps");
    global_keep = malloc(48);
    heapspec_test_end("global_keeps");

    /* only a pointer into the middle of a zeroed block: possibly lost */
    heapspec_test_begin("middle");
    global_middle = (char *)calloc(1, 64) + 24;
    heapspec_test_end("middle");

    /* a chain dropped at its head: the head definitely lost, the rest indirectly */
    heapspec_test_begin("chain");
    {
        struct node *head = malloc(sizeof *head);
        head->next = malloc(sizeof *head);
        head->next->next = malloc(sizeof *head);
        head->next->next->next = NULL;
        head = NULL;
        sink = head;
    }
    heapspec_test_end("chain");

    /* two blocks pointing at each other, nothing else at them: a clique */
    heapspec_test_begin("cycle");
    {
        struct node *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        a->next = b;
        b->next = a;
        a = b = NULL;
        sink = a;
    }
    heapspec_test_end("cycle");

    /* the only pointer to it is in a fixture block: reachable through the heap */
    heapspec_test_begin("into_fixture");
    ((void **)fixture[5])[1] = malloc(56);
    heapspec_test_end("into_fixture");

    /* the only pointer to it was in a block freed since: a stale word in a free chunk */
    heapspec_test_begin("stale_word");
    {
        void **holder_block = calloc(1, 200);
        holder_block[10] = malloc(24);
        free(holder_block);
    }
    heapspec_test_end("stale_word");

    /* another thread holds it on its stack while the test ends */
    pthread_t t;
    heapspec_test_begin("thread_stack");
    pthread_create(&t, NULL, holder, NULL);
    pthread_mutex_lock(&lock);
    while (!holding) pthread_cond_wait(&ready, &lock);
    pthread_mutex_unlock(&lock);
    heapspec_test_end("thread_stack");
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_signal(&go);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);

    /* a big block held by a global, and in it the only pointer to a small one */
    heapspec_test_begin("big_holds");
    big_keep = calloc(1, 1 << 20);
    ((void **)big_keep)[100] = malloc(88);
    heapspec_test_end("big_holds");

    /* a big block dropped */
    heapspec_test_begin("big_lost");
    sink = malloc(1 << 20);
    sink = NULL;
    heapspec_test_end("big_lost");

    /* more blocks left than a test end judges alone */
    heapspec_test_begin("many_lost");
    for (int i = 0; i < 1100; i++) sink = malloc(8);
    sink = NULL;
    heapspec_test_end("many_lost");

    /* an empty block dropped, and one kept */
    heapspec_test_begin("zero_size");
    sink = malloc(0);
    global_keep = malloc(0);
    sink = NULL;
    heapspec_test_end("zero_size");

    printf("test-ends: %d fixture blocks\n", 64);
    return 0;
}
