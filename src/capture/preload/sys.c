/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Raw system calls and small helpers: nothing here may allocate.
 */

static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    return ret;
}

static int x_gettid(void) { return (int)sys3(SYS_gettid, 0, 0, 0); }
static int x_getpid(void) { return (int)sys3(SYS_getpid, 0, 0, 0); }
static int x_open(const char *path, int flags, int mode) { return (int)sys6(SYS_openat, AT_FDCWD, (long)path, flags | O_CLOEXEC, mode, 0, 0); }
static long x_read(int fd, void *buf, size_t n) { return sys3(SYS_read, fd, (long)buf, (long)n); }
static long x_write(int fd, const void *buf, size_t n) { return sys3(SYS_write, fd, (long)buf, (long)n); }
static int x_close(int fd) { return (int)sys3(SYS_close, fd, 0, 0); }
static void *x_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
    long r = sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
    return r < 0 && r > -4096 ? MAP_FAILED : (void *)r;
}
static int x_munmap(void *addr, size_t len) { return (int)sys3(SYS_munmap, (long)addr, (long)len, 0); }
static int x_mprotect(void *addr, size_t len, int prot) { return (int)sys3(SYS_mprotect, (long)addr, (long)len, prot); }
static int x_tgkill(int pid, int tid, int sig) { return (int)sys3(SYS_tgkill, pid, tid, sig); }
static __attribute__((noreturn)) void x_exit_group(int status)
{
    for (;;) sys3(SYS_exit_group, status, 0, 0);
}
static void futex_wait(int *addr, int val, const struct timespec *timeout)
{
    sys6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val, (long)timeout, 0, 0);
}
static void futex_wake(int *addr, int n) { sys3(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, n); }

static size_t x_strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* `v` in decimal at `at` (room for 20 digits), not NUL-terminated: the digits' count. */
static size_t put_dec(char *at, uint64_t v)
{
    char buf[20];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(at, buf + i, sizeof buf - i);
    return sizeof buf - i;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return 1;
}

static int x_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

static const char *x_strstr(const char *hay, const char *needle)
{
    size_t n = x_strlen(needle);
    for (; *hay; hay++)
        if (starts_with(hay, needle)) return hay;
    return n == 0 ? hay : NULL;
}

static uint64_t parse_hex(const char **p)
{
    uint64_t v = 0;
    for (;;) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return v;
        v = v * 16 + (uint64_t)d;
        (*p)++;
    }
}
