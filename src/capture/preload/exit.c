/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---- exit ---- */

struct lookup {
    const char *object; /* part of the object's path */
    struct elf_want want;
};

static int find_symbols(struct dl_phdr_info *info, size_t size, void *data);

/* glibc's list of every open stream (libio's _IO_list_all, exported since 2.2.5) */
extern FILE *_IO_list_all;

/* Output stdio still holds when the process reaches _exit: exit() has flushed every stream by
 * then, so what is left is output the program never writes (it called _exit, _Exit or quick_exit).
 * __libc_freeres's _IO_cleanup would write it; it is dropped first, as the process would drop it.
 * Byte streams alone (a wide one keeps its own pointers). */
static void drop_unflushed(void)
{
    for (FILE *f = _IO_list_all; f; f = f->_chain)
        if (f->_mode <= 0 && f->_IO_write_ptr > f->_IO_write_base) f->_IO_write_ptr = f->_IO_write_base;
}

/* What libstdc++ and libc keep for the life of the process, freed as valgrind frees it at exit.
 * Found in the objects' symbol tables, not with dlsym: a failed dlsym (no libstdc++ loaded) sets
 * dlerror's state, and glibc frees the program's pending dlerror message inside that call, which
 * the model would then never see freed. The frees made by freeres are the program's. */
static void call_freeres(void)
{
    drop_unflushed();
    struct lookup cxx = {"/libstdc++.so", {{"_ZN9__gnu_cxx9__freeresEv", NULL, NULL, NULL}, {0}, {0}}};
    struct lookup c = {"/libc.so", {{"__libc_freeres", NULL, NULL, NULL}, {0}, {0}}};
    dl_iterate_phdr(find_symbols, &cxx);
    dl_iterate_phdr(find_symbols, &c);
    if (cxx.want.addr[0]) ((void (*)(void))cxx.want.addr[0])();
    if (c.want.addr[0]) ((void (*)(void))c.want.addr[0])();
}

/* The exit scan of this thread's stack starts at the first frame outside libc, as the GDB script's
 * exit_stack_floor(): exit()'s own frames reuse the stack main's frames used. */
static uint64_t exit_floor(const struct entry_regs *r)
{
    uint64_t pcs[64], cfas[64];
    uint32_t n = walk_stack(self_state(), r, pcs, cfas, 64, NULL);
    if (n == 0) return r->sp;
    uint64_t floor = cfas[n - 1];
    mutex_lock(&g_unwind_lock);
    for (uint32_t i = 0; i < n; i++) {
        struct module *m = module_for(pcs[i]);
        if (!m || !m->libc) {
            floor = cfas[i];
            break;
        }
    }
    mutex_unlock(&g_unwind_lock);
    return floor;
}

/* Under the lock, the modules gathered. */
static void final_dump(const char *point, uint64_t sp)
{
    int grouped = ends_grouped();
    if (!grouped) send_pending();
    peaks_send_run();
    const uint64_t regs[15] = {0};
    if (g_mods) out_bytes(g_mods, g_modsn);
    heap_verdict(point, sp, regs, NULL, grouped);
    out_flush();
}

HIDDEN __attribute__((used, noreturn)) void heapspec_exit(int status, const struct entry_regs *r)
{
    if (g_state == ON && x_getpid() == g_pid && !__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) {
        struct thread_state *me = self_state();
        call_freeres();
        me->busy = 1;
        gather_modules();
        lock();
        g_modules_stale = 1;
        uint64_t floor = exit_floor(r);
        final_dump("exit", floor);
        unlock();
    }
    x_exit_group(status);
}

MARKER_STUB(heapspec_exit_entry, heapspec_exit, 0);

/* The last image, once for the process (`point`: timeout, crash), this thread's stack read from `sp`. */
static void last_image(const char *point, uint64_t sp)
{
    if (__atomic_exchange_n(&g_exiting, 1, __ATOMIC_ACQ_REL)) return;
    struct thread_state *me = self_state();
    me->busy = 1;
    gather_modules();
    lock();
    final_dump(point, sp);
    unlock();
}

/* The host's timeout (a signal handler, or a hook on its way out): the image, then SIGKILL, as
 * the GDB backend kills a timed-out program once it has scanned it. */
static void timeout_dump(uint64_t sp)
{
    last_image("timeout", sp);
    x_tgkill(x_getpid(), x_gettid(), SIGKILL);
    x_exit_group(137);
}

/* `sig` at its default disposition, sent to this thread: the program ends as it would have. */
static void raise_default(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    __sigaction(sig, &dfl, NULL);
    x_tgkill(x_getpid(), x_gettid(), sig);
}

/* An ending signal (signals.c's ENDING) that came while this thread was inside heapspec, else 0. */
static volatile int g_ending_signal;

/* A timeout, or an ending signal, that arrived while this thread was inside heapspec. */
static void timeout_now(void)
{
    uint64_t sp = (uint64_t)__builtin_frame_address(0);
    int sig = g_ending_signal;
    if (!sig) timeout_dump(sp);
    last_image("crash", sp);
    raise_default(sig);
    x_exit_group(128 + sig); /* not reached: the signal's default ends the program */
}

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr;
    return 1;
}

/* The program's load bias (the first object dl_iterate_phdr lists). */
static uintptr_t main_bias(void)
{
    uintptr_t bias = 0;
    dl_iterate_phdr(first_object, &bias);
    return bias;
}
