/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---- ends an observer could miss: exec, SIGKILL to itself, heapspec's descriptor closed ----
 *
 * memcheck sees every system call; an interposer sees only the calls made through libc's exported
 * functions. These hooks keep what the program does unchanged and make sure the host hears of it:
 * an exec or a SIGKILL the program sends itself gets the image of that moment first (as memcheck
 * reports a self-inflicted SIGKILL), and a program closing "every descriptor" leaves heapspec's
 * alone (it is CLOEXEC and far above the program's own, so the program cannot tell). What comes
 * through a raw system call is not seen: the host then fails the run, naming why. */

static long x_sys(long n, long a, long b, long c) { return sys3(n, a, b, c); }

/* In a forked child: the file that says it ran unchecked (lifecycle.c's fork_child), or empty. */
static char g_fork_mark[1100];

/* Writes the forked child's mark, or empties its name when it cannot. */
static void fork_mark_create(void)
{
    int fd = x_open(g_fork_mark, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) x_close(fd);
    else g_fork_mark[0] = 0;
}

/* An exec that failed returns to the forked child, which memcheck then checks at its end: its mark
 * goes back (an execvp tries each directory of PATH; one that finds none returns to the child). */
static int exec_failed(int result)
{
    if (g_fork_mark[0]) {
        int saved = errno;
        fork_mark_create();
        errno = saved;
    }
    return result;
}

/* A raw exec system call's failure as libc's exec returns it: -1, and the error in errno. */
static int exec_raw_failed(long result)
{
    if (result < 0 && result > -4096) {
        errno = (int)-result;
        result = -1;
    }
    return exec_failed((int)result);
}

/* The image before the process image goes: the exec'd program is not followed (as under gdb and
 * memcheck), and the run says so. */
static void before_exec(const char *path)
{
    /* a forked child that execs is not one memcheck checks (lifecycle.c's fork_child) */
    if (g_fork_mark[0]) sys3(SYS_unlinkat, AT_FDCWD, (long)g_fork_mark, 0);
    if (g_state != ON || x_getpid() != g_pid || __atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) return;
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    gather_modules();
    lock();
    out_str("I the program exec'd ");
    out_str(path ? path : "another program");
    out_str(": heapspec classified its leaks at the exec and did not follow the new program\n");
    final_dump("exec", (uint64_t)__builtin_frame_address(0));
    unlock();
    me->busy = busy;
}

extern char **environ;

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    before_exec(path);
    return exec_raw_failed(x_sys(SYS_execve, (long)path, (long)argv, (long)envp));
}

EXPORT int execv(const char *path, char *const argv[])
{
    before_exec(path);
    return exec_raw_failed(x_sys(SYS_execve, (long)path, (long)argv, (long)environ));
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    before_exec(NULL);
    return exec_raw_failed(sys6(SYS_execveat, fd, (long)"", (long)argv, (long)envp, AT_EMPTY_PATH, 0));
}

/* The PATH-searching and variadic forms: libc's own, found once, after our image. */
static void *libc_next(const char *name)
{
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    void *f = dlsym(RTLD_NEXT, name);
    me->busy = busy;
    return f;
}

EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec(file);
    int (*next)(const char *, char *const[]) = (int (*)(const char *, char *const[]))libc_next("execvp");
    return exec_failed(next ? next(file, argv) : (errno = ENOSYS, -1));
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    before_exec(file);
    int (*next)(const char *, char *const[], char *const[]) = (int (*)(const char *, char *const[], char *const[]))libc_next("execvpe");
    return exec_failed(next ? next(file, argv, envp) : (errno = ENOSYS, -1));
}

#define MAX_EXEC_ARGS 4096
/* execl's arguments as an argv, on the stack; the last is NULL (and for execle, envp follows). */
#define GATHER_ARGS(first, list, argv, n)                                   \
    do {                                                                    \
        argv[0] = (char *)(first);                                          \
        for (n = 1; argv[n - 1] && n < MAX_EXEC_ARGS; n++) argv[n] = va_arg(list, char *); \
        if (argv[n - 1]) { errno = E2BIG; va_end(list); return -1; }        \
    } while (0)

EXPORT int execl(const char *path, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    va_end(list);
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    va_end(list);
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    char *argv[MAX_EXEC_ARGS];
    int n;
    va_list list;
    va_start(list, arg);
    GATHER_ARGS(arg, list, argv, n);
    char **envp = va_arg(list, char **);
    va_end(list);
    return execve(path, argv, envp);
}

/* SIGKILL cannot be caught: a program sending it to itself gets its image taken first. */
static void before_self_kill(void)
{
    if (g_state != ON || x_getpid() != g_pid || __atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) return;
    struct thread_state *me = self_state();
    me->busy = 1;
    gather_modules();
    lock();
    final_dump("crash", (uint64_t)__builtin_frame_address(0));
    unlock();
}

EXPORT int kill(pid_t pid, int sig)
{
    if (sig == SIGKILL && (pid == g_pid || pid == 0 || pid == -1 || pid == -(pid_t)sys3(SYS_getpgid, 0, 0, 0))) before_self_kill();
    return (int)x_sys(SYS_kill, pid, sig, 0);
}

EXPORT int raise(int sig)
{
    if (sig == SIGKILL) before_self_kill();
    int (*next)(int) = (int (*)(int))libc_next("raise");
    return next ? next(sig) : (int)x_sys(SYS_tgkill, x_getpid(), x_gettid(), sig);
}

/* heapspec's descriptor stays open whatever the program closes; closing it would report success. */
EXPORT int close(int fd)
{
    if (fd == g_fd && g_fd >= 0) return 0; /* a forked child has g_fd -1 */
    long r = x_sys(SYS_close, fd, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    long r;
    unsigned int ours = (unsigned int)g_fd;
    if (g_fd >= 0 && first <= ours && ours <= last) {
        r = ours > first ? x_sys(SYS_close_range, first, ours - 1, flags) : 0;
        if (r == 0 && ours < last) r = x_sys(SYS_close_range, ours + 1, last, flags);
    } else {
        r = x_sys(SYS_close_range, first, last, flags);
    }
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return 0;
}

EXPORT void closefrom(int lowfd)
{
    if (lowfd < 0) lowfd = 0;
    if (close_range((unsigned int)lowfd, ~0u, 0) == 0) return;
    for (int fd = lowfd; fd < 65536; fd++)
        if (fd != g_fd) x_sys(SYS_close, fd, 0, 0);
}

/* A dup2/dup3 onto heapspec's descriptor moves heapspec's out of the way first. */
static void keep_clear_of(int fd)
{
    if (fd != g_fd || g_fd < 0) return;
    lock();
    int moved = (int)sys3(SYS_fcntl, g_fd, F_DUPFD_CLOEXEC, g_fd + 1);
    if (moved >= 0) {
        out_flush();
        g_fd = moved;
    }
    unlock();
}

EXPORT int dup2(int old, int fd)
{
    keep_clear_of(fd);
    long r = x_sys(SYS_dup2, old, fd, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (int)r;
}

EXPORT int dup3(int old, int fd, int flags)
{
    keep_clear_of(fd);
    long r = x_sys(SYS_dup3, old, fd, flags);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (int)r;
}
