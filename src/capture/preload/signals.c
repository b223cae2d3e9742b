/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---- crash ---- */

static const int FATAL[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};

/* The program's own SIGTRAP disposition, while heapspec's traps need the signal: what it set with
 * sigaction or signal, kept here and run for every trap that is not heapspec's, and what it reads
 * back, so the program behaves as it would without heapspec. */
static struct sigaction g_user_trap;
static int g_user_trap_set;

static int holding_sigtrap(int sig)
{
    return sig == SIGTRAP && g_ntraps > 0 && g_state == ON && x_getpid() == g_pid;
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

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
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
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    __sigaction(sig, &dfl, NULL);
    x_tgkill(x_getpid(), x_gettid(), sig); /* delivered when the handler returns */
}
