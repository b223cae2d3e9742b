/* A program with its own SIGTRAP handler (installed in main, after heapspec's interposer hooked its
 * int3 traps), which raises SIGTRAP itself and reads its disposition back; its test functions leak.
 * Prints what its handler saw: the same under heapspec as natively. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int traps;

static void on_trap(int sig)
{
    (void)sig;
    traps++;
}

static void on_trap_info(int sig, siginfo_t *si, void *context)
{
    (void)sig;
    (void)context;
    traps += si->si_code == SI_TKILL || si->si_code == SI_USER ? 10 : 1000;
}

char *test_one(void)
{
    char *p = malloc(21);
    memset(p, 1, 21);
    return NULL; /* lost */
}

void test_two(void)
{
    free(malloc(5));
}

int main(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_trap;
    sigaction(SIGTRAP, &sa, &old);
    printf("before: %s\n", old.sa_handler == SIG_DFL ? "default" : "other");
    test_one();
    raise(SIGTRAP);
    test_two();
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_trap_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTRAP, &sa, &old);
    printf("then: %s\n", old.sa_handler == on_trap ? "on_trap" : "other");
    raise(SIGTRAP);
    signal(SIGTRAP, SIG_IGN);
    raise(SIGTRAP);
    printf("traps: %d\n", traps);
    return 0;
}
