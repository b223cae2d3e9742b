/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---- fork, dlopen ---- */

static void fork_prepare(void) { lock(); }
static void fork_parent(void) { unlock(); }
/* A forked child is not observed. memcheck checks it at its end, unless it execs another program
 * first: the child leaves a file named forked-PID in the run's directory, and removes it at an
 * exec (endings.c, which puts it back where the exec fails), so the host can say how many forks
 * ran unchecked. */
static void fork_mark_path(void)
{
    size_t dl = x_strlen(g_dir), at = dl;
    if (!dl || dl + 40 > sizeof g_fork_mark) {
        g_fork_mark[0] = 0;
        return;
    }
    memcpy(g_fork_mark, g_dir, dl);
    memcpy(g_fork_mark + at, "/forked-", 8);
    at += 8;
    at += put_dec(g_fork_mark + at, (uint64_t)x_getpid());
    g_fork_mark[at] = 0;
}

static void fork_child(void)
{
    g_lock = 0;
    g_state = DISABLED;
    x_close(g_fd);
    g_fd = -1;
    quarantines_release_all();
    fork_mark_path();
    if (g_fork_mark[0]) fork_mark_create();
}

/* ---- objects loaded and unloaded: the dynamic linker's debugger hook ---- */

/* ld.so calls _dl_debug_state() whenever its list of objects changes (gdb breaks there too): new
 * objects get their markers hooked before their constructors run, and unloading forgets what was
 * learnt about code that may be gone. Called from the SIGTRAP handler, inside dlopen/dlclose. */
static int g_unloaded;

static void forget_traps(void);

static void link_map_changed(void)
{
    if (g_state != ON || x_getpid() != g_pid) return;
    struct thread_state *me = self_state();
    int busy = me->busy;
    me->busy = 1;
    if (_r_debug.r_state == RT_DELETE) {
        /* the objects about to go, while they are still listed: their pcs stay resolvable */
        gather_modules();
        lock();
        if (g_mods) out_bytes(g_mods, g_modsn);
        unlock();
        g_unloaded = 1;
    } else if (_r_debug.r_state == RT_CONSISTENT) {
        if (g_unloaded) {
            lock();
            forget_code();
            unlock();
            g_nseen = 0;
            g_npatched = 0;
            forget_traps();
            g_unloaded = 0;
        }
        hook_markers();
        observed_check();
        /* When only some objects' blocks count (BY_STACK), the host learns each object's code as it
         * arrives, so at a test end it can tell whether any live block is theirs. */
        if (g_by_stack) gather_modules();
        lock();
        if (g_by_stack && g_mods) out_bytes(g_mods, g_modsn);
        g_modules_stale = 1;
        out_flush();
        unlock();
    }
    me->busy = busy;
}

/* ---- start-up, once libc is ready ---- */

static void exclude_self(void)
{
    Dl_info info;
    if (!dladdr((void *)exclude_self, &info) || !info.dli_fbase) return;
    const Elf64_Ehdr *eh = info.dli_fbase;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
    uintptr_t bias = (uintptr_t)info.dli_fbase;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_W)) {
            uintptr_t lo = (bias + ph[i].p_vaddr) & ~(uintptr_t)4095;
            uintptr_t hi = (bias + ph[i].p_vaddr + ph[i].p_memsz + 4095) & ~(uintptr_t)4095;
            range_add(lo, hi);
        }
    }
}

static int find_symbols(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct lookup *l = data;
    if (info->dlpi_name && x_strstr(info->dlpi_name, l->object)) {
        elf_symbols(info->dlpi_name, info->dlpi_addr, &l->want);
        return 1;
    }
    return 0;
}

__attribute__((constructor(101))) static void heapspec_start(void)
{
    if (!ready()) return;
    struct thread_state *me = self_state();
    me->busy = 1;
    g_spin_waits = several_cores() ? SPIN_WAITS : 0;
    g_stopped = region(MAX_THREADS * sizeof(struct stopped));
    exclude_self();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    /* libc's _exit: the last thing exit() does */
    struct lookup libc = {"/libc.so", {{"_exit", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &libc);
    if (!libc.want.addr[0] || !patch_entry(libc.want.addr[0], libc.want.room[0], (uintptr_t)heapspec_exit_entry)) {
        lock();
        out_failure("cannot hook libc's _exit; leaks at exit will not be classified", NULL);
        unlock();
    }
    /* ld.so's debugger hook: objects loaded later (dlopen) get their markers hooked too */
    struct lookup ld = {"/ld-linux", {{"_dl_debug_state", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &ld);
    if (!ld.want.addr[0] || !trap_entry(ld.want.addr[0], TRAP_LINK_MAP)) {
        lock();
        out_failure("cannot follow dlopen (no hook in ld.so's _dl_debug_state): markers in objects loaded later are not seen", NULL);
        unlock();
    }
    hook_markers();
    load_tests();
    hook_tests();
    install_stop_handler();
    for (int sig = 1; sig < 65; sig++) {
        struct sigaction old;
        if (!holdable_signal(sig) && sig != SIGTRAP) continue;
        if (__sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
        if (sig == SIGTRAP) install_crash_handler(sig, 0);
        else hold_signal(sig, &old);
    }
    lock();
    out_flush();
    unlock();
    me->busy = 0;
}
