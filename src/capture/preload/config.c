/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Start-up: configuration from the environment, found through the initial stack (this may run
 * inside ld.so's first malloc, before libc has set `environ`).
 */

static void init_core(void);

static int ready(void)
{
    int s = g_state;
    if (LIKELY(s == ON)) return 1;
    if (s == OFF) {
        int expected = OFF;
        if (__atomic_compare_exchange_n(&g_state, &expected, STARTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            init_core();
            return g_state == ON;
        }
    }
    while (g_state == STARTING) sys3(SYS_sched_yield, 0, 0, 0);
    return g_state == ON;
}

static const char *env_value(char **envp, const char *name)
{
    size_t n = x_strlen(name);
    for (char **e = envp; *e; e++)
        if (starts_with(*e, name) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* Removes NAME=... from the environment block, as unsetenv would. */
static void env_remove(char **envp, const char *name)
{
    size_t n = x_strlen(name);
    char **dst = envp;
    for (char **e = envp; *e; e++)
        if (!(starts_with(*e, name) && (*e)[n] == '=')) *dst++ = *e;
    *dst = NULL;
}

static int env_int(const char *s)
{
    int v = 0;
    while (s && *s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return v;
}

/* No string table of the program names a marker (HEAPSPEC_PRELOAD_UNMARKED, the host's finding): its
 * symbol tables are not read for them (Node's are 185,000 symbols). */
static int g_program_unmarked;

/* Whether an observed object is loaded: the dynamic linker's list, as a debugger reads it (the
 * program itself, unnamed there, is none: the host checked). */
static int observed_loaded(void)
{
    for (const struct link_map *l = _r_debug.r_map; l; l = l->l_next)
        if (l->l_name && *l->l_name && observed_name(l->l_name)) return 1;
    return 0;
}

/* Opens the walks' gate (g_walks_gated) once an observed object is loaded: before its constructors
 * run, as the dynamic linker announces it (link_map_changed). */
static void observed_check(void)
{
    if (g_walks_gated && observed_loaded()) g_walks_gated = 0;
}

static void init_core(void)
{
    long *start = (long *)__libc_stack_end;
    char **envp = start ? (char **)(start + 1) + start[0] + 1 : NULL;
    const char *fd_text = envp ? env_value(envp, "HEAPSPEC_PRELOAD_FD") : NULL;
    const char *dir = envp ? env_value(envp, "HEAPSPEC_PRELOAD_DIR") : NULL;
    const char *self = envp ? env_value(envp, "HEAPSPEC_PRELOAD_LIB") : NULL;
    const char *events = envp ? env_value(envp, "HEAPSPEC_PRELOAD_EVENTS") : NULL;
    const char *by_stack = envp ? env_value(envp, "HEAPSPEC_PRELOAD_BY_STACK") : NULL;
    const char *tests = envp ? env_value(envp, "HEAPSPEC_PRELOAD_TESTS") : NULL;
    const char *scan = envp ? env_value(envp, "HEAPSPEC_PRELOAD_SCAN") : NULL;
    const char *observe = envp ? env_value(envp, "HEAPSPEC_PRELOAD_OBSERVE") : NULL;
    const char *unmarked = envp ? env_value(envp, "HEAPSPEC_PRELOAD_UNMARKED") : NULL;
    g_program_unmarked = unmarked && x_strcmp(unmarked, "1") == 0;
    if (tests && x_strlen(tests) < sizeof g_tests_file) memcpy(g_tests_file, tests, x_strlen(tests) + 1);
    if (!fd_text || !dir) {
        g_state = DISABLED;
        return;
    }
    g_all_events = events && x_strcmp(events, "all") == 0;
    g_scan_image = scan && x_strcmp(scan, "image") == 0;
    g_scan_whole = scan && x_strcmp(scan, "whole") == 0;
    g_by_stack = by_stack && x_strcmp(by_stack, "1") == 0 && !g_all_events;
    if (g_by_stack && observe && *observe && x_strlen(observe) < sizeof g_observe) {
        memcpy(g_observe, observe, x_strlen(observe) + 1);
        g_walks_gated = 1;
        observed_check();
    }
    size_t dl = x_strlen(dir);
    if (dl >= sizeof g_dir) dl = sizeof g_dir - 1;
    memcpy(g_dir, dir, dl);
    g_dir[dl] = 0;
    int fd = env_int(fd_text);
    g_fd = (int)sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 900);
    if (g_fd < 0) {
        g_state = DISABLED;
        return;
    }
    x_close(fd); /* the program sees the descriptors it would have without heapspec */
    /* children run unobserved, as under gdb and memcheck: drop what loads and configures us */
    const char *preload = env_value(envp, "LD_PRELOAD");
    if (preload && self) {
        size_t sl = x_strlen(self);
        char *s = (char *)preload;
        if (starts_with(s, self) && (s[sl] == 0 || s[sl] == ' ' || s[sl] == ':')) {
            if (s[sl] == 0) env_remove(envp, "LD_PRELOAD");
            else memmove(s, s + sl + 1, x_strlen(s + sl + 1) + 1);
        }
    }
    env_remove(envp, "HEAPSPEC_PRELOAD_FD");
    env_remove(envp, "HEAPSPEC_PRELOAD_DIR");
    env_remove(envp, "HEAPSPEC_PRELOAD_LIB");
    env_remove(envp, "HEAPSPEC_PRELOAD_EVENTS");
    env_remove(envp, "HEAPSPEC_PRELOAD_BY_STACK");
    env_remove(envp, "HEAPSPEC_PRELOAD_TESTS");
    env_remove(envp, "HEAPSPEC_PRELOAD_SCAN");
    env_remove(envp, "HEAPSPEC_PRELOAD_OBSERVE");
    env_remove(envp, "HEAPSPEC_PRELOAD_UNMARKED");
    g_pid = x_getpid();
    g_states = region(STATES_MAX * sizeof(struct thread_state));
    if (!g_states || pthread_key_create(&g_key, NULL) != 0) {
        g_state = DISABLED;
        return;
    }
    g_first = new_state();
    g_out = region(OUT_SIZE);
    g_stacks = region((size_t)STACKS_MAX * sizeof(struct stack));
    g_rows = region((size_t)ROWS_MAX * sizeof(struct row));
    g_row_index = row_index_new(4096, NULL);
    g_cache = region(CACHE_SHARDS * sizeof(struct cache_shard));
    g_quarantines[0].ring = region((size_t)FREED_MAX * sizeof(struct freed));
    if (!g_out || !g_stacks || !g_rows || !g_row_index || !g_cache || !g_quarantines[0].ring || !blocks_grow()) {
        g_state = DISABLED;
        return;
    }
    peaks_init(!g_all_events && !g_by_stack);
    if (g_by_stack) {
        g_dirty = region((size_t)STACKS_MAX * sizeof(uint32_t));
        g_empty_sid = g_dirty ? stack_intern(NULL, 0) : UINT32_MAX;
        if (!g_dirty || g_empty_sid == UINT32_MAX) {
            g_state = DISABLED;
            return;
        }
    }
    /* the main thread's stack: the mapping holding the initial stack pointer */
    if (read_maps()) {
        const char *p = g_maps_copy.text;
        struct maps_line m;
        while (next_maps_line(&p, &m))
            if (m.start <= (uintptr_t)start && (uintptr_t)start < m.end) g_main_hi = m.end;
    }
    /* "peaks": the peaks and the heap series are kept here (the host need not follow them) */
    out_str(g_peaks ? "H 1 preload peaks\n" : "H 1 preload\n");
    g_state = ON;
}
