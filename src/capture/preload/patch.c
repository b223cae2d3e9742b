/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * Patching functions inside the program: heapspec's markers and libc's _exit. The entry gets an
 * absolute jump (14 bytes) to a stub of ours, or a 5-byte relative jump to a nearby trampoline
 * where the function is shorter; never past the next symbol.
 */

static int write_code(uintptr_t at, const uint8_t *code, size_t n)
{
    uintptr_t page = at & ~(uintptr_t)4095;
    size_t len = ((at + n + 4095) & ~(uintptr_t)4095) - page;
    if (x_mprotect((void *)page, len, PROT_READ | PROT_WRITE | PROT_EXEC) == 0) {
        memcpy((void *)at, code, n);
        x_mprotect((void *)page, len, PROT_READ | PROT_EXEC);
        __builtin___clear_cache((char *)at, (char *)at + n);
        return 1;
    }
    /* W^X systems: /proc/self/mem writes through the page protection */
    int fd = x_open("/proc/self/mem", O_RDWR, 0);
    if (fd < 0) return 0;
    long r = sys6(SYS_pwrite64, fd, (long)code, (long)n, (long)at, 0, 0);
    x_close(fd);
    return r == (long)n;
}

static uint8_t *g_tramp;        /* 5-byte jumps land here: one 16-byte absolute jump each */
static size_t g_tramp_used;
static uintptr_t g_tramp_near;

static void abs_jump(uint8_t *code, uintptr_t target)
{
    code[0] = 0xff;
    code[1] = 0x25;
    memset(code + 2, 0, 4);
    memcpy(code + 6, &target, 8);
}

static int patch_entry(uintptr_t at, size_t room, uintptr_t target)
{
    uint8_t code[16];
    if (room >= 14) {
        abs_jump(code, target);
        return write_code(at, code, 14);
    }
    if (room < 5) return 0;
    if (!g_tramp || (at > g_tramp_near ? at - g_tramp_near : g_tramp_near - at) > (1ull << 30) || g_tramp_used + 16 > 4096) {
        /* a page within +-2 GiB of the code */
        g_tramp = NULL;
        for (uintptr_t delta = 1u << 24; delta < (1ull << 31) && !g_tramp; delta += 1u << 24) {
            uintptr_t hint = ((at > delta ? at - delta : 0) & ~(uintptr_t)4095);
            void *p = x_mmap((void *)hint, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p != MAP_FAILED) {
                g_tramp = p;
                g_tramp_near = (uintptr_t)p;
                g_tramp_used = 0;
            }
        }
        if (!g_tramp) return 0;
    }
    uint8_t *t = g_tramp + g_tramp_used;
    abs_jump(code, target);
    memcpy(t, code, 14);
    g_tramp_used += 16;
    int64_t rel = (int64_t)((uintptr_t)t - (at + 5));
    if (rel < INT32_MIN || rel > INT32_MAX) return 0;
    int32_t r32 = (int32_t)rel;
    code[0] = 0xe9;
    memcpy(code + 1, &r32, 4);
    return write_code(at, code, 5);
}

/* One symbol table of an ELF file mapped from disk. */
struct elf_table {
    const Elf64_Shdr *sh;  /* the file's section headers */
    const Elf64_Sym *sym;
    size_t count;
    const char *strtab;
    uint32_t type;         /* SHT_SYMTAB or SHT_DYNSYM */
};

/* Maps the ELF file at `path` and hands `visit` each of its symbol tables: the full one (.symtab)
 * first, then the dynamic one. `visit` returns how many symbols it took; unless `both` is set the
 * dynamic table is read only when the full one gave nothing. Reads with raw system calls and maps
 * the file: allocates nothing. */
static void elf_tables(const char *path, int both, int (*visit)(const struct elf_table *, void *), void *ctx)
{
    int fd = x_open(path, O_RDONLY, 0);
    if (fd < 0) return;
    struct stat st;
    if (sys3(SYS_fstat, fd, (long)&st, 0) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        x_close(fd);
        return;
    }
    const uint8_t *file = x_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    x_close(fd);
    if (file == MAP_FAILED) return;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff == 0 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > (uint64_t)st.st_size) {
        x_munmap((void *)file, (size_t)st.st_size);
        return;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(file + eh->e_shoff);
    for (int pass = 0; pass < 2; pass++) {
        struct elf_table t = {sh, NULL, 0, NULL, pass == 0 ? SHT_SYMTAB : SHT_DYNSYM};
        int taken = 0;
        for (int s = 0; s < eh->e_shnum; s++) {
            if (sh[s].sh_type != t.type || sh[s].sh_link >= eh->e_shnum) continue;
            if (sh[s].sh_offset + sh[s].sh_size > (uint64_t)st.st_size) continue;
            t.sym = (const Elf64_Sym *)(file + sh[s].sh_offset);
            t.count = sh[s].sh_size / sizeof(Elf64_Sym);
            t.strtab = (const char *)(file + sh[sh[s].sh_link].sh_offset);
            taken += visit(&t, ctx);
        }
        if (taken && !both) break;
    }
    x_munmap((void *)file, (size_t)st.st_size);
}

/* Up to four functions wanted by name: their addresses (relocated by the object's bias) and the
 * room up to the next symbol in their section. */
struct elf_want {
    const char *names[4];
    uintptr_t addr[4];
    size_t room[4];
    uintptr_t bias;
};

static int want_functions(const struct elf_table *t, void *ctx)
{
    struct elf_want *want = ctx;
    const Elf64_Sym *sym = t->sym;
    int taken = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (sym[i].st_shndx == SHN_UNDEF || sym[i].st_shndx >= SHN_LORESERVE || ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC) continue;
        const char *name = t->strtab + sym[i].st_name;
        for (int w = 0; w < 4 && want->names[w]; w++) {
            if (want->addr[w] || x_strcmp(name, want->names[w]) != 0) continue;
            const Elf64_Shdr *sec = &t->sh[sym[i].st_shndx];
            uint64_t next = sec->sh_addr + sec->sh_size;
            for (size_t j = 0; j < t->count; j++) {
                if (sym[j].st_shndx != sym[i].st_shndx || sym[j].st_value <= sym[i].st_value) continue;
                int k = ELF64_ST_TYPE(sym[j].st_info);
                if ((k == STT_FUNC || k == STT_NOTYPE || k == STT_OBJECT) && sym[j].st_value < next) next = sym[j].st_value;
            }
            want->addr[w] = want->bias + sym[i].st_value;
            /* the dynamic table lacks local functions, which may follow: only the function's own
             * bytes are sure to be its own */
            want->room[w] = t->type == SHT_SYMTAB ? next - sym[i].st_value : sym[i].st_size;
            taken = 1;
        }
    }
    return taken;
}

/* The functions `want` names, in the ELF file at `path` loaded at `bias`. */
static void elf_symbols(const char *path, uintptr_t bias, struct elf_want *want)
{
    want->bias = bias;
    elf_tables(path, 0, want_functions, want);
}
