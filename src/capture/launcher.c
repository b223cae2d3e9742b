/*
 * heapspec's launcher: starts a debugger (or the program itself) so that nothing of the run
 * outlives it, and so the program gets the argv[0] the user typed.
 *
 *   heapspec-launch [-a ARGV0] [-e NAME=VALUE]... [-b FD]... -- PATH ARGS...
 *       Supervises: becomes a child subreaper (every orphan of the run, also one in a session of
 *       its own, is re-parented here, not to init), asks for a signal when heapspec dies, and runs
 *       PATH as its one child, with argv[0] = ARGV0 (default PATH) and the -e variables added to
 *       its environment only (LD_PRELOAD must not load the interposer into this process).
 *       When the child ends, every process left below this one is killed, and this one ends as
 *       the child did (its exit code, or its signal). When heapspec dies (even by SIGKILL), every
 *       process below is killed. Of heapspec's own signals: SIGINT and signal 62 (the preload
 *       backend's stop request) go to the child; SIGTERM kills everything below but the child,
 *       then goes to it (valgrind's stop: memcheck still writes its report). Signals not sent by
 *       heapspec (a terminal's Ctrl-C reaches the child itself) are not passed on again.
 *       -b FD: FD is made blocking for the child, as a shell gives a program its streams (Node
 *       makes a pipe behind heapspec's own stdin, stdout or stderr non-blocking once it opens it,
 *       and the program shares that pipe: its writes would fail with EAGAIN).
 *
 *   heapspec-launch -x [-a ARGV0] [-e NAME=VALUE]... [-u NAME]... -- PATH ARGS...
 *       Only execs PATH with argv[0] = ARGV0, NAME set or unset: gdb's exec-wrapper, which gdb's
 *       shell would otherwise start with an absolute argv[0] and a PWD of its own.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PARENT_DIED (SIGRTMAX - 1)
#define STOP_REQUEST 62

static pid_t g_parent;
static pid_t g_child;
static volatile sig_atomic_t g_pending[_NSIG];

static void usage(void)
{
    fprintf(stderr, "usage: heapspec-launch [-x] [-a ARGV0] [-e NAME=VALUE]... -- PATH ARGS...\n");
    exit(127);
}

/* Every process below this one (by parent pid, read from /proc), killed with SIGKILL, but `spare`. */
static void kill_below(pid_t spare)
{
    enum { MAX = 65536 };
    static pid_t pids[MAX], ppids[MAX];
    static pid_t below[MAX];
    int n = 0;
    DIR *proc = opendir("/proc");
    if (!proc) return;
    struct dirent *entry;
    while ((entry = readdir(proc)) && n < MAX) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (len <= 0) continue;
        stat[len] = 0;
        char *paren = strrchr(stat, ')'); /* the command name may hold spaces and parentheses */
        if (!paren) continue;
        int ppid;
        if (sscanf(paren + 2, "%*c %d", &ppid) != 1) continue;
        pids[n] = (pid_t)pid;
        ppids[n] = ppid;
        n++;
    }
    closedir(proc);
    int found = 0;
    below[found++] = getpid();
    for (int at = 0; at < found; at++)
        for (int i = 0; i < n; i++)
            if (ppids[i] == below[at] && found < MAX) below[found++] = pids[i];
    for (int i = 1; i < found; i++)
        if (below[i] != spare) kill(below[i], SIGKILL);
}

/* Kills everything below and reaps it all: the orphans of killed processes come here too. */
static void end_all(void)
{
    for (;;) {
        kill_below(0);
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD) return;
    }
}

/* Ends this process the way the child ended. */
static void end_like(int status)
{
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    struct rlimit none = { 0, 0 };
    setrlimit(RLIMIT_CORE, &none); /* the child dumped its own core, if it was to */
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

static void on_signal(int sig, siginfo_t *info, void *context)
{
    (void)context;
    /* heapspec's requests only, and parent death; a terminal's signal reached the child itself */
    if (sig == SIGCHLD) return;
    if (sig == PARENT_DIED || (info->si_code == SI_USER && info->si_pid == g_parent)) g_pending[sig] = 1;
}

static void handle_pending(void)
{
    if (g_pending[PARENT_DIED]) {
        end_all();
        _exit(137);
    }
    if (g_pending[SIGTERM]) {
        g_pending[SIGTERM] = 0;
        kill_below(g_child);
        kill(g_child, SIGTERM);
    }
    int forwarded[] = { SIGINT, STOP_REQUEST };
    for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        if (g_pending[forwarded[i]]) {
            g_pending[forwarded[i]] = 0;
            kill(g_child, forwarded[i]);
        }
}

/* NAME=VALUE for each entry, in place when NAME is already set (its place in environ kept). */
static void set_vars(char **vars, int n)
{
    for (int k = 0; k < n; k++) {
        char *eq = strchr(vars[k], '=');
        if (!eq) continue;
        *eq = 0;
        setenv(vars[k], eq + 1, 1);
        *eq = '=';
    }
}

int main(int argc, char **argv)
{
    int exec_only = 0;
    const char *argv0 = NULL;
    char **vars = calloc((size_t)argc + 1, sizeof *vars);
    char **unset = calloc((size_t)argc + 1, sizeof *unset);
    int nvars = 0, nunset = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "-x") == 0) exec_only = 1;
        else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) argv0 = argv[++i];
        else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) vars[nvars++] = argv[++i];
        else if (strcmp(argv[i], "-u") == 0 && i + 1 < argc) unset[nunset++] = argv[++i];
        else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            int fd = atoi(argv[++i]);
            int flags = fcntl(fd, F_GETFL);
            if (flags >= 0 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        }
        else usage();
    }
    if (i >= argc) usage();
    char *path = argv[i];
    char **child_argv = &argv[i];
    if (argv0) child_argv[0] = (char *)argv0;

    if (exec_only) {
        for (int k = 0; k < nunset; k++) unsetenv(unset[k]);
        set_vars(vars, nvars);
        execv(path, child_argv);
        fprintf(stderr, "heapspec-launch: cannot run %s: %s\n", path, strerror(errno));
        return 127;
    }

    g_parent = getppid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    /* SIGCHLD too: with its default disposition it would not wake sigsuspend */
    int caught[] = { SIGINT, SIGTERM, STOP_REQUEST, PARENT_DIED, SIGCHLD };
    sigset_t block, old;
    sigemptyset(&block);
    for (unsigned k = 0; k < sizeof caught / sizeof caught[0]; k++) {
        sigaction(caught[k], &sa, NULL);
        sigaddset(&block, caught[k]);
    }
    /* The signals wait, blocked, until the child exists; then sigsuspend takes them one by one. */
    sigprocmask(SIG_BLOCK, &block, &old);
    prctl(PR_SET_PDEATHSIG, PARENT_DIED);
    if (getppid() != g_parent) _exit(137); /* heapspec died before the request took */

    g_child = fork();
    if (g_child < 0) {
        fprintf(stderr, "heapspec-launch: cannot fork: %s\n", strerror(errno));
        return 127;
    }
    if (g_child == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (unsigned k = 0; k < sizeof caught / sizeof caught[0]; k++) sigaction(caught[k], &dfl, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) _exit(137);
        set_vars(vars, nvars);
        execvp(path, child_argv);
        fprintf(stderr, "heapspec-launch: cannot run %s: %s\n", path, strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        int status;
        pid_t pid;
        /* Reap without blocking, then wait for a signal (SIGCHLD included) with ours unblocked. */
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid == g_child) {
                end_all();
                end_like(status);
            }
        }
        sigset_t wait_mask = old;
        for (unsigned k = 0; k < sizeof caught / sizeof caught[0]; k++) sigdelset(&wait_mask, caught[k]);
        handle_pending();
        sigsuspend(&wait_mask);
        handle_pending();
    }
}
