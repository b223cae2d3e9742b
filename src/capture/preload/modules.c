/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Loaded objects: code ranges and where their .eh_frame_hdr lies, read from /proc/self/maps and
 * the ELF headers in memory (no dl_iterate_phdr here: it takes a lock a thread calling malloc
 * may hold).
 */

struct module {
    uintptr_t lo, hi;          /* an executable PT_LOAD, relocated */
    const uint8_t *hdr;        /* .eh_frame_hdr, or NULL */
    int libc;                  /* glibc's libc.so: where the exit scan's floor is looked for */
};
static struct module g_modules[MAX_MODULES];
static int g_nmodules;
static int g_modules_stale = 1;
static uint64_t g_last_scan_ns;

/* Objects mode: the ends of the observed objects' paths, one a line (HEAPSPEC_PRELOAD_OBSERVE, set
 * by the host when every pattern is a path's end and the program's own path is none of them). */
static char g_observe[4096];

/* Whether `name` (a path as the dynamic linker lists it) ends in one of g_observe's ends. */
static int observed_name(const char *name)
{
    size_t nl = x_strlen(name);
    for (const char *s = g_observe; *s;) {
        const char *e = s;
        while (*e && *e != '\n') e++;
        size_t sl = (size_t)(e - s);
        if (sl && sl <= nl && memcmp(name + nl - sl, s, sl) == 0) return 1;
        s = *e ? e + 1 : e;
    }
    return 0;
}

/* The observed objects' code: every executable segment of an object named by g_observe that an M
 * line has told the host of (symbols.c's module_line adds it as it writes the line). The host
 * calls a stack the objects' when one of its return addresses lies in one of the M lines' ranges
 * of an object its patterns match; with literal path ends this is the same rule on the same
 * ranges, so a test end can leave the other blocks out of its scan. The list only grows, as the
 * host's does; past OBSERVED_MAX ranges every stack counts as observed (the whole scan, as before). */
#define OBSERVED_MAX 64
static struct { uintptr_t lo, hi; } g_observed[OBSERVED_MAX];
static int g_nobserved, g_observed_full;
static uint32_t g_observed_gen = 1; /* one more at each range added: stacks' answers are then asked again */

/* Under ld.so's lock (dl_iterate_phdr): one more range of an object the host will be told of. */
static void observed_add(const char *name, uintptr_t lo, uintptr_t hi)
{
    if (!g_observe[0] || !name || !observed_name(name)) return;
    for (int i = 0; i < g_nobserved; i++)
        if (g_observed[i].lo == lo && g_observed[i].hi == hi) return;
    if (g_nobserved == OBSERVED_MAX) {
        __atomic_store_n(&g_observed_full, 1, __ATOMIC_RELEASE);
        return;
    }
    g_observed[g_nobserved].lo = lo;
    g_observed[g_nobserved].hi = hi;
    __atomic_store_n(&g_nobserved, g_nobserved + 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&g_observed_gen, 1, __ATOMIC_RELEASE);
}

/* Under the lock, at a test end (never inside an allocator call): whether stack `sid` has a frame
 * in an observed object (every stack does when the run observes every object's blocks). */
static int stack_observed(uint32_t sid)
{
    if (!g_observe[0] || __atomic_load_n(&g_observed_full, __ATOMIC_ACQUIRE)) return 1;
    if (sid == UINT32_MAX || sid >= g_nstacks) return 0;
    uint32_t gen = __atomic_load_n(&g_observed_gen, __ATOMIC_ACQUIRE);
    int n = __atomic_load_n(&g_nobserved, __ATOMIC_ACQUIRE);
    struct stack *st = &g_stacks[sid];
    if (st->observed >> 1 == gen) return st->observed & 1;
    int yes = 0;
    for (uint32_t f = 0; f < st->n && !yes; f++)
        for (int i = 0; i < n; i++)
            if (st->pcs[f] >= g_observed[i].lo && st->pcs[f] < g_observed[i].hi) yes = 1;
    st->observed = gen << 1 | (uint32_t)yes;
    return yes;
}

/* A copy of /proc/self/maps. Two of them: g_maps under g_lock (images, markers, start-up), and the
 * module table's own under g_unwind_lock (a walk rescans while g_lock's holder reads its copy). */
struct maps_copy {
    char *text;
    size_t cap;
};
static struct maps_copy g_maps_copy, g_modules_maps;

static size_t read_maps_into(struct maps_copy *c)
{
    if (!c->text) {
        c->cap = 1 << 20;
        c->text = region(c->cap);
        if (!c->text) return 0;
    }
    int fd = x_open("/proc/self/maps", O_RDONLY, 0);
    if (fd < 0) return 0;
    size_t n = 0;
    for (;;) {
        if (n + 4096 >= c->cap) {
            char *bigger = region(c->cap * 2);
            if (!bigger) break;
            memcpy(bigger, c->text, n);
            region_free(c->text, c->cap);
            c->text = bigger;
            c->cap *= 2;
        }
        long r = x_read(fd, c->text + n, c->cap - n - 1);
        if (r == -EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    x_close(fd);
    c->text[n] = 0;
    return n;
}

static size_t read_maps(void) { return read_maps_into(&g_maps_copy); }

struct maps_line {
    uintptr_t start, end;
    char perms[5];
    uint64_t offset;
    const char *name;
    size_t name_len;
};

/* Parses the line at *p and moves past it; returns 0 at the end. */
static int next_maps_line(const char **p, struct maps_line *m)
{
    const char *s = *p;
    if (!*s) return 0;
    m->start = parse_hex(&s);
    if (*s == '-') s++;
    m->end = parse_hex(&s);
    while (*s == ' ') s++;
    for (int i = 0; i < 4; i++) m->perms[i] = *s ? *s++ : '-';
    m->perms[4] = 0;
    while (*s == ' ') s++;
    m->offset = parse_hex(&s);
    for (int field = 0; field < 2; field++) { /* device, inode */
        while (*s == ' ') s++;
        while (*s && *s != ' ' && *s != '\n') s++;
    }
    while (*s == ' ') s++;
    m->name = s;
    while (*s && *s != '\n') s++;
    m->name_len = (size_t)(s - m->name);
    if (*s == '\n') s++;
    *p = s;
    return 1;
}

static int same_name(const struct maps_line *a, const struct maps_line *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Under g_unwind_lock. */
static void scan_modules(void)
{
    if (!read_maps_into(&g_modules_maps)) return;
    g_nmodules = 0;
    const char *p = g_modules_maps.text;
    struct maps_line m;
    while (next_maps_line(&p, &m)) {
        if (m.offset != 0 || m.name_len == 0 || (m.name[0] != '/' && !starts_with(m.name, "[vdso]"))) continue;
        if (!(m.perms[0] == 'r')) continue;
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m.start;
        if (m.end - m.start < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) continue;
        if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > m.end - m.start) continue;
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(m.start + eh->e_phoff);
        uintptr_t bias = 0;
        int have_bias = 0;
        const uint8_t *hdr = NULL;
        for (int i = 0; i < eh->e_phnum; i++) {
            if (ph[i].p_type == PT_LOAD && !have_bias) {
                bias = m.start - (ph[i].p_vaddr & ~(uint64_t)4095);
                have_bias = 1;
            }
        }
        if (!have_bias) continue;
        for (int i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_GNU_EH_FRAME) hdr = (const uint8_t *)(bias + ph[i].p_vaddr);
        int libc = x_strstr(m.name, "/libc.so") != NULL && x_strstr(m.name, "/libc.so") < m.name + m.name_len;
        for (int i = 0; i < eh->e_phnum && g_nmodules < MAX_MODULES; i++) {
            if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X)) continue;
            uintptr_t lo = bias + ph[i].p_vaddr, hi = lo + ph[i].p_memsz;
            /* trust the range only where it is mapped executable under the same name */
            const char *q = g_modules_maps.text;
            struct maps_line x;
            int mapped = 0;
            while (next_maps_line(&q, &x))
                if (x.perms[2] == 'x' && same_name(&x, &m) && x.start <= lo && lo < x.end) mapped = 1;
            if (!mapped) continue;
            g_modules[g_nmodules].lo = lo;
            g_modules[g_nmodules].hi = hi;
            g_modules[g_nmodules].hdr = hdr;
            g_modules[g_nmodules].libc = libc;
            g_nmodules++;
        }
    }
    g_modules_stale = 0;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Under g_unwind_lock. */
static struct module *module_for(uintptr_t pc)
{
    for (int pass = 0; pass < 2; pass++) {
        if (g_modules_stale) scan_modules();
        for (int i = 0; i < g_nmodules; i++)
            if (g_modules[i].lo <= pc && pc < g_modules[i].hi) return &g_modules[i];
        if (pass == 0) {
            /* a pc in no known object: something may have been mapped since; look again, at
             * most every few milliseconds (JIT code has no object at all) */
            uint64_t t = now_ns();
            if (t - g_last_scan_ns < 5000000ull) return NULL;
            g_last_scan_ns = t;
            g_modules_stale = 1;
        }
    }
    return NULL;
}

/* DWARF constants (no system header has them all). */
enum {
    DW_EH_PE_absptr = 0x00, DW_EH_PE_uleb128 = 0x01, DW_EH_PE_udata2 = 0x02, DW_EH_PE_udata4 = 0x03,
    DW_EH_PE_udata8 = 0x04, DW_EH_PE_sleb128 = 0x09, DW_EH_PE_sdata2 = 0x0a, DW_EH_PE_sdata4 = 0x0b,
    DW_EH_PE_sdata8 = 0x0c, DW_EH_PE_pcrel = 0x10, DW_EH_PE_datarel = 0x30, DW_EH_PE_aligned = 0x50,
    DW_EH_PE_indirect = 0x80, DW_EH_PE_omit = 0xff,
};
enum {
    DW_CFA_advance_loc = 0x40, DW_CFA_offset = 0x80, DW_CFA_restore = 0xc0, DW_CFA_nop = 0x00,
    DW_CFA_set_loc = 0x01, DW_CFA_advance_loc1 = 0x02, DW_CFA_advance_loc2 = 0x03, DW_CFA_advance_loc4 = 0x04,
    DW_CFA_offset_extended = 0x05, DW_CFA_restore_extended = 0x06, DW_CFA_undefined = 0x07,
    DW_CFA_same_value = 0x08, DW_CFA_register = 0x09, DW_CFA_remember_state = 0x0a,
    DW_CFA_restore_state = 0x0b, DW_CFA_def_cfa = 0x0c, DW_CFA_def_cfa_register = 0x0d,
    DW_CFA_def_cfa_offset = 0x0e, DW_CFA_def_cfa_expression = 0x0f, DW_CFA_expression = 0x10,
    DW_CFA_offset_extended_sf = 0x11, DW_CFA_def_cfa_sf = 0x12, DW_CFA_def_cfa_offset_sf = 0x13,
    DW_CFA_val_offset = 0x14, DW_CFA_val_offset_sf = 0x15, DW_CFA_val_expression = 0x16,
    DW_CFA_GNU_args_size = 0x2e, DW_CFA_GNU_negative_offset_extended = 0x2f,
};
enum {
    DW_OP_deref = 0x06, DW_OP_const1u = 0x08, DW_OP_const1s = 0x09, DW_OP_const2u = 0x0a,
    DW_OP_const2s = 0x0b, DW_OP_const4u = 0x0c, DW_OP_const4s = 0x0d, DW_OP_const8u = 0x0e,
    DW_OP_const8s = 0x0f, DW_OP_constu = 0x10, DW_OP_consts = 0x11, DW_OP_dup = 0x12, DW_OP_drop = 0x13,
    DW_OP_over = 0x14, DW_OP_swap = 0x16, DW_OP_and = 0x1a, DW_OP_minus = 0x1c, DW_OP_mul = 0x1e,
    DW_OP_neg = 0x1f, DW_OP_not = 0x20, DW_OP_or = 0x21, DW_OP_plus = 0x22, DW_OP_plus_uconst = 0x23,
    DW_OP_shl = 0x24, DW_OP_shr = 0x25, DW_OP_shra = 0x26, DW_OP_xor = 0x27, DW_OP_eq = 0x29,
    DW_OP_ge = 0x2a, DW_OP_gt = 0x2b, DW_OP_le = 0x2c, DW_OP_lt = 0x2d, DW_OP_ne = 0x2e,
    DW_OP_lit0 = 0x30, DW_OP_lit31 = 0x4f, DW_OP_breg0 = 0x70, DW_OP_breg31 = 0x8f, DW_OP_bregx = 0x92,
    DW_OP_nop = 0x96,
};
