/* Workers that block every signal and compute: the threads a program keeps for work while its
 * main thread takes the signals. At a test case's end the worker is running, never in a system
 * call, holding the only pointer to a block in a local on its stack: the kernel then tells no one
 * its stack pointer. The first worker runs on a stack of glibc's (with its guard page); the second
 * on one the program maps itself at a multiple of 64 MiB (as for huge pages), where glibc maps its
 * arenas' heaps (glibc's own thread stacks land at such addresses too, in the holes its arenas'
 * aligned mappings leave). Built -O1, where heapspec.h's two markers are one `ret` each, side by
 * side in the program.
 * Figures by test case: held_by_worker 72 bytes in 1 block still reachable, held_by_aligned_worker
 * 40 bytes, held_by_reader 48 bytes, each in 1 block still reachable (each worker frees its block
 * after its test case); lost 16 bytes in 1 block definitely lost. Prints one line. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "heapspec.h"

static volatile int holding, released;
static void *volatile sink;

static void *worker(void *size)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    void *volatile mine = malloc((size_t)size);
    memset((void *)mine, 0, (size_t)size);
    holding = 1;
    while (!released) {
    }
    free((void *)mine);
    return NULL;
}

/* One test case: a worker started with `attr`, holding a block of `size` bytes at its end. */
static int held(const char *name, const pthread_attr_t *attr, size_t size)
{
    pthread_t t;
    holding = released = 0;
    heapspec_test_begin(name);
    if (pthread_create(&t, attr, worker, (void *)size)) return 1;
    while (!holding) {
    }
    heapspec_test_end(name);
    released = 1;
    return pthread_join(t, NULL);
}

/* A worker that blocks every signal and sleeps in a read system call (made with syscall(), as
 * programs make the calls libc has no wrapper for) into a block it allocated for it: while it
 * sleeps, only its registers hold the block's address (the call's argument, and a callee-saved
 * one), its stack nothing. */
static int pipe_fds[2];

static void *reader(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    char *buf;
    holding = 1;
    if (syscall(SYS_read, pipe_fds[0], buf = malloc(48), 48) < 0) return NULL;
    free(buf);
    return NULL;
}

#define ALIGN (64ul << 20)
#define STACK (8ul << 20)

/* STACK bytes at a multiple of ALIGN: twice ALIGN mapped, all but the aligned stack unmapped. */
static void *aligned_stack(void)
{
    char *p = mmap(NULL, 2 * ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *at = (char *)(((unsigned long)p + ALIGN - 1) & ~(ALIGN - 1));
    if (at > p) munmap(p, (size_t)(at - p));
    munmap(at + STACK, (size_t)(p + 2 * ALIGN - (at + STACK)));
    return at;
}

int main(void)
{
    pthread_attr_t attr;
    void *stack = aligned_stack();
    if (!stack || pthread_attr_init(&attr) || pthread_attr_setstack(&attr, stack, STACK)) return 1;
    if (held("held_by_worker", NULL, 72) || held("held_by_aligned_worker", &attr, 40)) return 1;

    pthread_t t;
    holding = 0;
    if (pipe(pipe_fds)) return 1;
    heapspec_test_begin("held_by_reader");
    if (pthread_create(&t, NULL, reader, NULL)) return 1;
    while (!holding) {
    }
    usleep(100000); /* asleep in read() by now */
    heapspec_test_end("held_by_reader");
    if (write(pipe_fds[1], "x", 1) != 1 || pthread_join(t, NULL)) return 1;

    heapspec_test_begin("lost");
    sink = malloc(16);
    sink = NULL;
    heapspec_test_end("lost");
    printf("busy-worker: done\n");
    return 0;
}
