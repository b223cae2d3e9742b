/* A parent that leaks nothing and a forked child: `leak`, the child loses 500 bytes and exits
 * (memcheck checks it at its end, under its own process id); `exec`, the child execs /bin/true;
 * `execvp`, the child execvp's `true` on a PATH whose first directory has none (one exec fails
 * before one succeeds); `spawn`, system("true") and posix_spawnp of `true` (children of a vfork,
 * which exec); `exec-fails`, the child's exec of a file that is not there fails, and it leaks as
 * `leak` does. memcheck checks the `leak` and `exec-fails` children. Prints one line a child.
 * Usage: forked leak|exec|execvp|spawn|exec-fails [PIDFILE] (PIDFILE gets the pids of the program and its
 * children, one a line, once they have ended, for a test to check that none outlives the run). */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* `pid` on a line of PIDFILE, when one is given */
static void record(const char *pidfile, pid_t pid)
{
    if (!pidfile) return;
    FILE *f = fopen(pidfile, "a");
    if (!f) exit(3);
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
}

static void reaped(int status)
{
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leak", *pidfile = argc > 2 ? argv[2] : NULL;
    int status;
    if (strcmp(mode, "spawn") == 0) {
        reaped(system("true"));
        pid_t pid;
        char *args[] = {"true", NULL};
        if (posix_spawnp(&pid, "true", NULL, NULL, args, environ) != 0 || waitpid(pid, &status, 0) != pid) return 2;
        reaped(status);
        record(pidfile, pid);
        record(pidfile, getpid());
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "exec") == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (strcmp(mode, "execvp") == 0) {
            char *args[] = {"true", NULL};
            setenv("PATH", "/nonexistent-heapspec-dir:/usr/bin:/bin", 1);
            execvp("true", args);
            _exit(127);
        }
        /* an exec that fails returns -1 and ENOENT to the child, which then leaks as `leak` does */
        if (strcmp(mode, "exec-fails") == 0 && (execl("/nonexistent-heapspec-dir/true", "true", (char *)NULL) != -1 || errno != ENOENT)) _exit(1);
        char *lost = malloc(500);
        memset(lost, 2, 500);
        lost = NULL;
        exit(0);
    }
    if (waitpid(pid, &status, 0) != pid) return 2;
    reaped(status);
    record(pidfile, pid);
    record(pidfile, getpid());
    return 0;
}
