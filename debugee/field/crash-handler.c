/* A crash handler installed the way libraries install one (a test framework, a language runtime):
 * it reads back what each fault signal was set to, keeps the one before its own, and on a fault
 * chains to it when that was a function, or else puts it back and re-raises, so the program still
 * dies of the signal. `segv`, `abort` or `fpe` picks the fault; 33 bytes are lost before it.
 * `thread` faults (SIGSEGV) while another thread spins with the only pointer to a 48-byte block in
 * its r12, which memcheck does not read at a crash (the block is lost). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int FAULTS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};
static const char *const NAMES[] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGSYS", "SIGTRAP"};
static struct sigaction g_before;
static char *volatile g_held;
static volatile int g_spinning;

static void *spin(void *arg)
{
    (void)arg;
    __asm__ volatile("mov (%0), %%r12\n\tmovq $0, (%0)\n\tmovl $1, (%1)\n1:\tpause\n\tjmp 1b" : : "r"(&g_held), "r"(&g_spinning) : "r12", "memory");
    return NULL;
}

static const char *name_of(int sig)
{
    for (size_t i = 0; i < sizeof FAULTS / sizeof FAULTS[0]; i++)
        if (FAULTS[i] == sig) return NAMES[i];
    return "?";
}

static void on_fault(int sig)
{
    char line[40];
    int n = snprintf(line, sizeof line, "caught %s\n", name_of(sig));
    write(1, line, (size_t)n);
    if (!(g_before.sa_flags & SA_SIGINFO) && g_before.sa_handler != SIG_DFL && g_before.sa_handler != SIG_IGN) {
        g_before.sa_handler(sig);
        _exit(77); /* a handler that returned: the chain's end */
    }
    if (g_before.sa_flags & SA_SIGINFO) _exit(78); /* somebody's three-argument handler */
    sigaction(sig, &g_before, NULL);
    raise(sig);
}

static void lose(void)
{
    char *volatile p = malloc(33);
    memset(p, 1, 33);
    p = NULL;
}

/* Leaves no copy of the lost block's address in the argument registers or the stack below (under
 * valgrind, its malloc leaves one in r9). */
static void __attribute__((noinline)) scrub(long a, long b, long c, long d, long e, long f)
{
    volatile char below[512];
    for (size_t i = 0; i < sizeof below; i++) below[i] = (char)(a + b + c + d + e + f);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "segv";
    int sig = strcmp(mode, "abort") == 0 ? SIGABRT : strcmp(mode, "fpe") == 0 ? SIGFPE : SIGSEGV;
    for (size_t i = 0; i < sizeof FAULTS / sizeof FAULTS[0]; i++) {
        struct sigaction now;
        sigaction(FAULTS[i], NULL, &now);
        int dfl = !(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_DFL;
        printf("%s %s\n", name_of(FAULTS[i]), dfl ? "default" : "handled");
    }
    if (signal(SIGILL, SIG_DFL) != SIG_DFL) puts("signal(SIGILL) was not the default");
    fflush(stdout);
    struct sigaction mine;
    memset(&mine, 0, sizeof mine);
    mine.sa_handler = on_fault;
    sigaction(sig, &mine, &g_before);
    lose();
    scrub(0, 0, 0, 0, 0, 0);
    if (strcmp(mode, "thread") == 0) {
        g_held = malloc(48);
        pthread_t t;
        pthread_create(&t, NULL, spin, NULL);
        while (!g_spinning) usleep(1000);
    }
    if (sig == SIGABRT) abort();
    if (sig == SIGFPE) {
        volatile int zero = 0, one = 1;
        printf("%d\n", one / zero);
    }
    *(volatile int *)(long)(argc - argc) = 1;
    return 0;
}
