/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---- crash ---- */

/* The signals of a fault: heapspec's handler takes the image and then the signal's default. While
 * the program leaves one but SIGTRAP at its default, the handler is held as an ending one is
 * (below): the program reads back SIG_DFL, as a crash handler that chains to the one before it
 * expects. SIGTRAP has its own view (g_user_trap). */
static const int FATAL[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};

/* The signals whose default action ends the program without a fault: a program killed by one
 * (SIGPIPE under `| head -1`, a test runner's SIGTERM, Ctrl-C's SIGINT) gets its image first, as
 * memcheck checks for leaks when its program dies of a signal; the run had 0 allocations and no
 * figures. While the program leaves one at its default, heapspec's handler holds it, and the
 * program reads back SIG_DFL: a program that installs its handler only over the default (Python
 * and SIGINT) behaves as it does without heapspec. g_held: the program's view of each held one. */
static const int ENDING[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGXCPU, SIGXFSZ, SIGSTKFLT, SIGPWR};
static struct sigaction g_held[65];
static volatile char g_is_held[65];

/* Whether `sig` is one of ENDING. */
static int ending_signal(int sig)
{
    for (size_t i = 0; i < sizeof ENDING / sizeof ENDING[0]; i++)
        if (ENDING[i] == sig) return 1;
    return 0;
}

/* Whether heapspec holds `sig` while the program leaves it at its default: ENDING, and FATAL but
 * SIGTRAP (so it indexes g_held). */
static int holdable_signal(int sig)
{
    if (ending_signal(sig)) return 1;
    for (size_t i = 0; i < sizeof FATAL / sizeof FATAL[0]; i++)
        if (FATAL[i] == sig) return sig != SIGTRAP;
    return 0;
}

/* crash_handler for `sig`, every signal blocked while it runs, on the alternate stack if the thread
 * has one; `flags` adds to those (SA_RESTART). */
static int install_crash_handler(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | flags;
    sigfillset(&sa.sa_mask);
    return __sigaction(sig, &sa, NULL);
}

/* heapspec's handler in place of `sig`'s default (at start-up, and when the program sets it back);
 * `view`: the disposition the program reads back. */
static void hold_signal(int sig, const struct sigaction *view)
{
    if (install_crash_handler(sig, SA_RESTART) != 0) return;
    g_held[sig] = *view;
    g_is_held[sig] = 1;
}

/* The program's own SIGTRAP disposition, while heapspec's traps need the signal: what it set with
 * sigaction or signal, kept here and run for every trap that is not heapspec's, and what it reads
 * back, so the program behaves as it would without heapspec. */
static struct sigaction g_user_trap;
static int g_user_trap_set;

/* Whether the program's SIGTRAP is kept in g_user_trap: while heapspec's handler is the kernel's. */
static int holding_sigtrap(int sig)
{
    struct sigaction now;
    if (sig != SIGTRAP || g_state != ON || x_getpid() != g_pid || __sigaction(SIGTRAP, NULL, &now) != 0) return 0;
    return (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == crash_handler;
}

/* A SIGTRAP that is not heapspec's, handed to the program's handler; 0 when it has none (the
 * default: the crash path). */
static int user_trap(int sig, siginfo_t *si, void *context)
{
    if (!g_user_trap_set) return 0;
    if (g_user_trap.sa_flags & SA_SIGINFO) {
        g_user_trap.sa_sigaction(sig, si, context);
        return 1;
    }
    if (g_user_trap.sa_handler == SIG_IGN) return 1;
    if (g_user_trap.sa_handler == SIG_DFL) return 0;
    g_user_trap.sa_handler(sig);
    return 1;
}

/* sigaction for a holdable signal: the program sees and sets its own disposition; heapspec's
 * handler stays while that is the default. */
static int held_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    struct sigaction was;
    if (g_is_held[sig]) was = g_held[sig];
    else if (__sigaction(sig, NULL, &was) != 0) return -1;
    int dfl = act && !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL;
    if (act && dfl) {
        if (!g_is_held[sig]) hold_signal(sig, act);
        else g_held[sig] = *act;
    } else if (act) {
        if (__sigaction(sig, act, NULL) != 0) return -1;
        g_is_held[sig] = 0;
    }
    if (old) *old = was;
    return 0;
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (holdable_signal(sig) && g_state == ON && x_getpid() == g_pid) return held_sigaction(sig, act, old);
    if (!holding_sigtrap(sig)) return __sigaction(sig, act, old);
    if (old) {
        if (g_user_trap_set) *old = g_user_trap;
        else {
            memset(old, 0, sizeof *old);
            old->sa_handler = SIG_DFL;
        }
    }
    if (act) {
        g_user_trap = *act;
        g_user_trap_set = 1;
    }
    return 0;
}

/* glibc's signal(): BSD semantics, a handler that stays and restarts system calls */
EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigaddset(&act.sa_mask, sig);
    if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}

static void crash_handler(int sig, siginfo_t *si, void *context)
{
    ucontext_t *uc = context;
    if (sig == SIGTRAP) {
        greg_t *g = uc->uc_mcontext.gregs;
        uintptr_t pc = (uintptr_t)g[REG_RIP] - 1;
        if (si && si->si_code == TRAP_TRACE && test_stepped(g)) return;
        for (int i = 0; i < g_ntraps; i++) {
            if (g_traps[i].at != pc) continue;
            int saved_errno = errno;
            if (g_traps[i].kind == TRAP_TEST) {
                struct test_function *f = test_at(pc);
                if (f) test_entered(f, g);
                errno = saved_errno;
                return;
            }
            const struct entry_regs r = {(uint64_t)g[REG_RBX], (uint64_t)g[REG_RBP], (uint64_t)g[REG_R12], (uint64_t)g[REG_R13],
                                         (uint64_t)g[REG_R14], (uint64_t)g[REG_R15], (uint64_t)g[REG_RSP]};
            if (g_traps[i].kind == TRAP_LINK_MAP) link_map_changed();
            else heapspec_marker((const char *)g[REG_RDI], &r, g_traps[i].kind == TRAP_END);
            /* the marker's body is a return: make it */
            uint64_t sp = (uint64_t)g[REG_RSP];
            g[REG_RIP] = (greg_t)*(const uint64_t *)sp;
            g[REG_RSP] = (greg_t)(sp + 8);
            errno = saved_errno;
            return;
        }
        if (user_trap(sig, si, context)) return;
    }
    if (ending_signal(sig) && g_state == ON && x_getpid() == g_pid && self_state()->busy && !g_exiting) {
        /* an ending signal that came inside heapspec (the lock may be held): the image is taken,
         * and the signal raised again, on the thread's way out (exit.c's timeout_now) */
        g_ending_signal = sig;
        g_timeout.pending = 1;
        return;
    }
    if (g_state == ON && x_getpid() == g_pid && !__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) {
        /* crashed inside heapspec itself, with the lock held: the model cannot be trusted */
        struct thread_state *me = self_state();
        if (!me->busy) {
            me->busy = 1;
            gather_modules();
            lock();
            final_dump("crash", (uint64_t)uc->uc_mcontext.gregs[REG_RSP]);
            unlock();
        }
    }
    if (holdable_signal(sig)) g_is_held[sig] = 0;
    raise_default(sig); /* delivered when the handler returns */
}
