/* A program that dies of a signal whose default ends it without a fault: SIGTERM (a test runner's
 * timeout), SIGINT (Ctrl-C) or SIGPIPE (a write to a pipe nobody reads: `prog | head -1`), as
 * argument 1 says (`term`, `int`, `pipe`); memcheck checks for leaks first. `handled` reads
 * SIGINT's disposition, sets a handler, raises it, sets it back and reads it again (a program that
 * installs its handler only over the default, as Python does, must find the default there).
 * Figures (term, int, pipe): 64 bytes in 1 block definitely lost, 48 bytes in 1 block still
 * reachable, besides stdio's buffer. Prints what it saw of SIGINT's disposition. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile kept;
static volatile int got;

static void on_int(int sig)
{
    (void)sig;
    got++;
}

static const char *disposition(void)
{
    struct sigaction now;
    sigaction(SIGINT, NULL, &now);
    return now.sa_handler == SIG_DFL ? "default" : now.sa_handler == on_int ? "on_int" : "other";
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "term";
    kept = malloc(48);
    void *volatile lost = malloc(64);
    lost = NULL;
    printf("SIGINT: %s\n", disposition());
    if (!strcmp(how, "handled")) {
        signal(SIGINT, on_int);
        printf("then: %s\n", disposition());
        raise(SIGINT);
        signal(SIGINT, SIG_DFL);
        printf("handled %d, then: %s\n", got, disposition());
        return 0;
    }
    fflush(stdout);
    if (!strcmp(how, "pipe")) {
        int fds[2];
        if (pipe(fds)) return 2;
        close(fds[0]);
        if (write(fds[1], "x", 1) < 0) return 3; /* not reached: SIGPIPE ends the program */
    }
    raise(!strcmp(how, "int") ? SIGINT : SIGTERM);
    return 4;
}
