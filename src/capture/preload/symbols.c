/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Loaded objects for the host's symbolizer (M lines), from the dynamic linker's own list.
 */

#define MODS_SIZE (1 << 18)
static char *g_mods;   /* the M lines, gathered outside the lock (dl_iterate_phdr takes ld.so's) */
static size_t g_modsn;

static void mods_str(const char *s)
{
    size_t n = x_strlen(s);
    if (g_modsn + n < MODS_SIZE) {
        memcpy(g_mods + g_modsn, s, n);
        g_modsn += n;
    }
}

static void mods_hex(uint64_t v)
{
    char buf[18];
    int i = 17;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    mods_str(buf + i);
}

static int module_line(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        observed_add(info->dlpi_name, info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        mods_str("M ");
        mods_hex(info->dlpi_addr + ph->p_vaddr);
        mods_str(" ");
        mods_hex(info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        mods_str(" ");
        mods_hex(info->dlpi_addr);
        mods_str(" ");
        mods_str(info->dlpi_name ? info->dlpi_name : "");
        mods_str("\n");
    }
    return 0;
}

static void gather_modules(void)
{
    if (!g_mods) g_mods = region(MODS_SIZE);
    if (!g_mods) return;
    g_modsn = 0;
    dl_iterate_phdr(module_line, NULL);
}
