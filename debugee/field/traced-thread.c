/* A worker stopped by a tracer while a test case ends: a debugger or a profiler the program runs
 * (a crash reporter attaching to a hung thread, say) holds one of its threads in a ptrace stop. No
 * signal reaches that thread until the tracer lets it go, and the kernel keeps its stack pointer.
 * The worker holds the only pointer to its block in a local of its own frame; the program's child
 * seizes it (PTRACE_SEIZE, PTRACE_INTERRUPT), holds it stopped across the test case's end, and
 * lets it go after it, or after SECONDS (argument 1, default 2), whichever comes first (under
 * memcheck, whose threads take turns, the program waits for that). Where the worker cannot be
 * seized (the program runs under a debugger already) it runs on: the figures are the same.
 * Usage: traced-thread [SECONDS]
 * Figures by test case: beside_traced 56 bytes in 1 block still reachable (the worker frees it
 * after the test case); lost 16 bytes in 1 block definitely lost. Prints one line. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "heapspec.h"

static volatile int holding, released, worker_tid;
static void *volatile sink;

static void *worker(void *arg)
{
    (void)arg;
    void *volatile mine = malloc(56);
    memset((void *)mine, 0, 56);
    worker_tid = (int)syscall(SYS_gettid);
    holding = 1;
    while (!released) {
    }
    free((void *)mine);
    return NULL;
}

/* The tracer, in the program's child: seizes thread `tid`, stops it, says so on `told` (one byte:
 * 's' stopped, 'n' not), and lets it go when `go` is written or closed, or after `ms`. */
static void tracer(int tid, int told, int go, int ms)
{
    char said = 'n';
    int status;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0 && waitpid(tid, &status, __WALL) == tid) said = 's';
    if (write(told, &said, 1) != 1) _exit(1);
    struct pollfd p = {go, POLLIN, 0};
    poll(&p, 1, ms);
    if (said == 's') ptrace(PTRACE_DETACH, tid, 0, 0);
    _exit(0);
}

int main(int argc, char **argv)
{
    int ms = argc > 1 ? atoi(argv[1]) * 1000 : 2000;
    int told[2], go[2];
    if (pipe(told) || pipe(go)) return 1;
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); /* Yama's ptrace_scope 1 lets only a parent trace */
    pthread_t t;
    heapspec_test_begin("beside_traced");
    if (pthread_create(&t, NULL, worker, NULL)) return 1;
    while (!holding) {
    }
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) tracer(worker_tid, told[1], go[0], ms);
    char said;
    if (read(told[0], &said, 1) != 1) return 1;
    if (getenv("TRACED_THREAD_SAY")) fprintf(stderr, "traced-thread: %s\n", said == 's' ? "stopped" : "not stopped");
    heapspec_test_end("beside_traced");
    if (write(go[1], "x", 1) != 1 || waitpid(child, NULL, 0) != child) return 1;
    released = 1;
    if (pthread_join(t, NULL)) return 1;

    heapspec_test_begin("lost");
    sink = malloc(16);
    sink = NULL;
    heapspec_test_end("lost");
    printf("traced-thread: done\n");
    return 0;
}
