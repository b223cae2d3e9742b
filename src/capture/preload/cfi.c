/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * DWARF call frame information: .eh_frame_hdr lookup, CIE/FDE parsing, the CFA program, rules.
 */

static uint64_t uleb(const uint8_t **p)
{
    uint64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

static int64_t sleb(const uint8_t **p)
{
    int64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64) v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

/* Reads a DW_EH_PE-encoded pointer at *p; `datarel` is the base of datarel encodings (0: none). */
static int read_pointer(const uint8_t **p, uint8_t enc, uintptr_t datarel, uint64_t *out)
{
    if (enc == DW_EH_PE_omit) {
        *out = 0;
        return 1;
    }
    uint8_t app = enc & 0x70;
    if (app == DW_EH_PE_aligned) {
        *p = (const uint8_t *)(((uintptr_t)*p + 7) & ~(uintptr_t)7);
        app = 0;
        enc = (uint8_t)(enc & 0x80);
    }
    uintptr_t field = (uintptr_t)*p;
    uint64_t v;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: memcpy(&v, *p, 8); *p += 8; break;
    case DW_EH_PE_uleb128: v = uleb(p); break;
    case DW_EH_PE_udata2: { uint16_t x; memcpy(&x, *p, 2); *p += 2; v = x; break; }
    case DW_EH_PE_udata4: { uint32_t x; memcpy(&x, *p, 4); *p += 4; v = x; break; }
    case DW_EH_PE_udata8: memcpy(&v, *p, 8); *p += 8; break;
    case DW_EH_PE_sleb128: v = (uint64_t)sleb(p); break;
    case DW_EH_PE_sdata2: { int16_t x; memcpy(&x, *p, 2); *p += 2; v = (uint64_t)(int64_t)x; break; }
    case DW_EH_PE_sdata4: { int32_t x; memcpy(&x, *p, 4); *p += 4; v = (uint64_t)(int64_t)x; break; }
    case DW_EH_PE_sdata8: memcpy(&v, *p, 8); *p += 8; break;
    default: return 0;
    }
    if (app == DW_EH_PE_pcrel) v += field;
    else if (app == DW_EH_PE_datarel) {
        if (!datarel) return 0;
        v += datarel;
    } else if (app) return 0; /* textrel, funcrel: never in x86-64 CFI */
    if (enc & DW_EH_PE_indirect) memcpy(&v, (const void *)v, 8);
    *out = v;
    return 1;
}

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra;
    uint8_t fde_enc, signal, aug_z;
    const uint8_t *ins, *end;
};

struct fde {
    struct cie cie;
    uint64_t start, end;
    const uint8_t *ins, *ins_end;
};

/* Entry header: returns the byte after the length field and sets *end; NULL on a terminator. */
static const uint8_t *entry_header(const uint8_t *p, const uint8_t **end, int *wide)
{
    uint32_t len32;
    memcpy(&len32, p, 4);
    p += 4;
    *wide = 0;
    if (len32 == 0) return NULL;
    uint64_t len = len32;
    if (len32 == 0xffffffffu) {
        memcpy(&len, p, 8);
        p += 8;
        *wide = 1;
    }
    *end = p + len;
    return p;
}

static int parse_cie(const uint8_t *at, struct cie *c)
{
    const uint8_t *end;
    int wide;
    const uint8_t *p = entry_header(at, &end, &wide);
    if (!p) return 0;
    p += wide ? 8 : 4; /* CIE id */
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    p += x_strlen(aug) + 1;
    if (aug[0] == 'e' && aug[1] == 'h') p += 8;
    c->code_align = uleb(&p);
    c->data_align = sleb(&p);
    c->ra = version == 1 ? *p++ : uleb(&p);
    c->fde_enc = DW_EH_PE_absptr;
    c->signal = 0;
    c->aug_z = aug[0] == 'z';
    if (c->aug_z) {
        uint64_t len = uleb(&p);
        const uint8_t *after = p + len;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') c->fde_enc = *p++;
            else if (*a == 'L') p++;
            else if (*a == 'P') {
                uint8_t enc = *p++;
                uint64_t ignored;
                if (!read_pointer(&p, (uint8_t)(enc & 0x7f), 0, &ignored)) break;
            } else if (*a == 'S') c->signal = 1;
            else if (*a != 'B') break;
        }
        p = after;
    } else if (aug[0] && !(aug[0] == 'e' && aug[1] == 'h' && !aug[2])) {
        return 0;
    }
    c->ins = p;
    c->end = end;
    return 1;
}

static int parse_fde(const uint8_t *at, struct fde *f)
{
    const uint8_t *end;
    int wide;
    const uint8_t *p = entry_header(at, &end, &wide);
    if (!p) return 0;
    uint64_t cie_off;
    if (wide) {
        memcpy(&cie_off, p, 8);
    } else {
        uint32_t x;
        memcpy(&x, p, 4);
        cie_off = x;
    }
    if (cie_off == 0) return 0;
    const uint8_t *cie_at = p - cie_off;
    p += wide ? 8 : 4;
    if (!parse_cie(cie_at, &f->cie)) return 0;
    uint64_t start, range;
    if (!read_pointer(&p, f->cie.fde_enc, 0, &start)) return 0;
    if (!read_pointer(&p, (uint8_t)(f->cie.fde_enc & 0x0f), 0, &range)) return 0;
    f->start = start;
    f->end = start + range;
    if (f->cie.aug_z) {
        uint64_t len = uleb(&p);
        p += len;
    }
    f->ins = p;
    f->ins_end = end;
    return 1;
}

/* The FDE covering pc, through the module's .eh_frame_hdr binary-search table. */
static int find_fde(uintptr_t pc, struct fde *f)
{
    struct module *m = module_for(pc);
    if (!m || !m->hdr) return 0;
    const uint8_t *hdr = m->hdr;
    if (hdr[0] != 1) return 0;
    uint8_t eh_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    const uint8_t *p = hdr + 4;
    uint64_t eh_frame, count;
    if (!read_pointer(&p, eh_enc, (uintptr_t)hdr, &eh_frame)) return 0;
    if (!read_pointer(&p, count_enc, (uintptr_t)hdr, &count)) return 0;
    if (table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || count == 0) return 0;
    const int32_t *table = (const int32_t *)p;
    int64_t rel = (int64_t)(pc - (uintptr_t)hdr);
    uint64_t lo = 0, hi = count;
    while (lo < hi) { /* first entry with start > pc */
        uint64_t mid = (lo + hi) / 2;
        if (table[2 * mid] <= rel) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    const uint8_t *fde = hdr + table[2 * (lo - 1) + 1];
    if (!parse_fde(fde, f)) return 0;
    return f->start <= pc && pc < f->end;
}

enum { R_NONE, R_OFFSET, R_VAL_OFFSET, R_REGISTER, R_UNDEFINED, R_SAME, R_EXPR, R_VAL_EXPR };

struct rule {
    uint8_t kind;
    uint8_t reg;        /* R_REGISTER: the source register */
    uint32_t len;       /* expression length */
    int64_t off;        /* offset, or the expression's address */
};

struct row {
    uint64_t pc;        /* the lookup key: a return address - 1, or an exact pc after a signal */
    uint8_t stop;       /* the walk ends here (outermost frame, or no CFI) */
    uint8_t signal;     /* a signal frame: its caller's pc is exact */
    uint8_t cfa_expr;   /* the CFA is an expression (at cfa_off, cfa_len bytes) */
    uint8_t cfa_reg;
    uint8_t fp;         /* no CFI: follow the frame pointer */
    uint8_t nrules;     /* the registers with a rule (not R_NONE), in rule_reg */
    uint8_t rule_reg[NREGS];
    uint32_t cfa_len;
    int64_t cfa_off;
    struct rule r[NREGS];
};

struct cfa_state {
    uint8_t cfa_expr, cfa_reg;
    uint32_t cfa_len;
    int64_t cfa_off;
    struct rule r[NREGS];
};

/* Runs call frame instructions up to `target` (or all of them when target is 0). */
static int run_cfa(const uint8_t *p, const uint8_t *end, const struct fde *f, struct cfa_state *s, const struct cfa_state *initial, uint64_t target)
{
    struct cfa_state saved[16];
    int depth = 0;
    uint64_t loc = f->start;
    int64_t da = f->cie.data_align;
    uint64_t ca = f->cie.code_align;
    while (p < end) {
        uint8_t op = *p++;
        uint8_t high = op & 0xc0, low = op & 0x3f;
        uint64_t reg;
        int64_t off;
        if (high == DW_CFA_advance_loc) {
            loc += low * ca;
            if (target && loc > target) break;
            continue;
        }
        if (high == DW_CFA_offset) {
            off = (int64_t)uleb(&p) * da;
            if (low < NREGS) s->r[low] = (struct rule){R_OFFSET, 0, 0, off};
            continue;
        }
        if (high == DW_CFA_restore) {
            if (low < NREGS) s->r[low] = initial ? initial->r[low] : (struct rule){R_NONE, 0, 0, 0};
            continue;
        }
        switch (op) {
        case DW_CFA_nop: break;
        case DW_CFA_set_loc: {
            uint64_t v;
            if (!read_pointer(&p, f->cie.fde_enc, 0, &v)) return 0;
            loc = v;
            if (target && loc > target) return 1;
            break;
        }
        case DW_CFA_advance_loc1: loc += *p * ca; p += 1; if (target && loc > target) return 1; break;
        case DW_CFA_advance_loc2: { uint16_t x; memcpy(&x, p, 2); p += 2; loc += x * ca; if (target && loc > target) return 1; break; }
        case DW_CFA_advance_loc4: { uint32_t x; memcpy(&x, p, 4); p += 4; loc += x * ca; if (target && loc > target) return 1; break; }
        case DW_CFA_offset_extended: reg = uleb(&p); off = (int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_offset_extended_sf: reg = uleb(&p); off = sleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_GNU_negative_offset_extended: reg = uleb(&p); off = -(int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_OFFSET, 0, 0, off}; break;
        case DW_CFA_val_offset: reg = uleb(&p); off = (int64_t)uleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_VAL_OFFSET, 0, 0, off}; break;
        case DW_CFA_val_offset_sf: reg = uleb(&p); off = sleb(&p) * da; if (reg < NREGS) s->r[reg] = (struct rule){R_VAL_OFFSET, 0, 0, off}; break;
        case DW_CFA_restore_extended: reg = uleb(&p); if (reg < NREGS) s->r[reg] = initial ? initial->r[reg] : (struct rule){R_NONE, 0, 0, 0}; break;
        case DW_CFA_undefined: reg = uleb(&p); if (reg < NREGS) s->r[reg] = (struct rule){R_UNDEFINED, 0, 0, 0}; break;
        case DW_CFA_same_value: reg = uleb(&p); if (reg < NREGS) s->r[reg] = (struct rule){R_SAME, 0, 0, 0}; break;
        case DW_CFA_register: {
            reg = uleb(&p);
            uint64_t other = uleb(&p);
            if (reg < NREGS) s->r[reg] = (struct rule){R_REGISTER, (uint8_t)(other < 255 ? other : 255), 0, 0};
            break;
        }
        case DW_CFA_remember_state:
            if (depth >= 16) return 0;
            saved[depth++] = *s;
            break;
        case DW_CFA_restore_state:
            if (depth == 0) return 0;
            *s = saved[--depth];
            break;
        case DW_CFA_def_cfa: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_off = (int64_t)uleb(&p); s->cfa_expr = 0; break;
        case DW_CFA_def_cfa_sf: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_off = sleb(&p) * da; s->cfa_expr = 0; break;
        case DW_CFA_def_cfa_register: if (s->cfa_expr) return 0; s->cfa_reg = (uint8_t)uleb(&p); break;
        case DW_CFA_def_cfa_offset: if (s->cfa_expr) return 0; s->cfa_off = (int64_t)uleb(&p); break;
        case DW_CFA_def_cfa_offset_sf: if (s->cfa_expr) return 0; s->cfa_off = sleb(&p) * da; break;
        case DW_CFA_def_cfa_expression: {
            uint64_t len = uleb(&p);
            s->cfa_expr = 1;
            s->cfa_off = (int64_t)(uintptr_t)p;
            s->cfa_len = (uint32_t)len;
            p += len;
            break;
        }
        case DW_CFA_expression:
        case DW_CFA_val_expression: {
            reg = uleb(&p);
            uint64_t len = uleb(&p);
            if (reg < NREGS) s->r[reg] = (struct rule){op == DW_CFA_expression ? R_EXPR : R_VAL_EXPR, 0, (uint32_t)len, (int64_t)(uintptr_t)p};
            p += len;
            break;
        }
        case DW_CFA_GNU_args_size: uleb(&p); break;
        default: return 0;
        }
    }
    return 1;
}

/* The rule row at pc, computed from the CFI; row->stop where the walk must end. */
static void compute_row(uint64_t pc, struct row *row)
{
    memset(row, 0, sizeof *row);
    row->pc = pc;
    struct fde f;
    if (!find_fde(pc, &f)) {
        row->stop = 1;
        row->fp = 1;
        return;
    }
    struct cfa_state s;
    memset(&s, 0, sizeof s);
    s.cfa_reg = 7;
    s.cfa_off = 8;
    if (!run_cfa(f.cie.ins, f.cie.end, &f, &s, NULL, 0)) goto stop;
    struct cfa_state initial = s;
    if (!run_cfa(f.ins, f.ins_end, &f, &s, &initial, pc)) goto stop;
    if (f.cie.ra != 16 || (!s.cfa_expr && s.cfa_reg >= NREGS)) goto stop;
    uint8_t ra = s.r[16].kind;
    if (ra == R_NONE || ra == R_UNDEFINED || ra == R_SAME) goto stop; /* outermost: _start, clone */
    row->signal = f.cie.signal;
    row->cfa_expr = s.cfa_expr;
    row->cfa_reg = s.cfa_reg;
    row->cfa_off = s.cfa_off;
    row->cfa_len = s.cfa_len;
    memcpy(row->r, s.r, sizeof s.r);
    /* compiled once: a step visits only the registers the frame's rules change */
    for (uint8_t reg = 0; reg < NREGS; reg++)
        if (s.r[reg].kind != R_NONE) row->rule_reg[row->nrules++] = reg;
    return;
stop:
    row->stop = 1;
}

/* Rows, cached by pc: open addressing over an array of row indexes. Walks read it without a lock,
 * so it only grows: a row is written whole before its index entry is published (release), an index
 * is replaced, never changed under a reader (the one it replaces stays mapped: a walk may still be
 * probing it), and forgetting code starts a new, empty index over the same rows. Adding a row, and
 * the module table it is computed from, are under g_unwind_lock. */
#define ROWS_MAX (1u << 18)
struct row_index {
    uint32_t cap, used;
    uint32_t e[];       /* row + 1, 0 empty */
};
static struct row *g_rows;
static uint32_t g_nrows;
static struct row_index *g_row_index;
static int g_unwind_lock;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* A new index of `cap` entries holding the rows of `from` (NULL: none). Under g_unwind_lock. */
static struct row_index *row_index_new(uint32_t cap, const struct row_index *from)
{
    struct row_index *index = region(sizeof *index + cap * sizeof(uint32_t));
    if (!index) return NULL;
    index->cap = cap;
    index->used = 0;
    for (uint32_t i = 0; from && i < from->cap; i++) {
        uint32_t e = from->e[i];
        if (!e) continue;
        uint32_t at = (uint32_t)(mix(g_rows[e - 1].pc) & (cap - 1));
        while (index->e[at]) at = (at + 1) & (cap - 1);
        index->e[at] = e;
        index->used++;
    }
    return index;
}

/* The row at pc, if the index has it. No lock. */
static const struct row *row_cached(uint64_t pc)
{
    const struct row_index *index = __atomic_load_n(&g_row_index, __ATOMIC_ACQUIRE);
    if (!index) return NULL;
    uint32_t mask = index->cap - 1;
    for (uint32_t at = (uint32_t)(mix(pc) & mask);; at = (at + 1) & mask) {
        uint32_t e = __atomic_load_n(&index->e[at], __ATOMIC_ACQUIRE);
        if (!e) return NULL;
        if (g_rows[e - 1].pc == pc) return &g_rows[e - 1];
    }
}

/* The row at pc: from the index, else computed and added (into *scratch when the tables are
 * full). Runs inside an allocator call: takes g_unwind_lock only for a pc it has not seen. */
static const struct row *row_for(uint64_t pc, struct row *scratch)
{
    const struct row *row = row_cached(pc);
    if (LIKELY(row != NULL)) return row;
    mutex_lock(&g_unwind_lock);
    row = row_cached(pc); /* another thread may have added it meanwhile */
    if (!row) {
        struct row_index *index = g_row_index;
        if (index && (index->used + 1) * 2 > index->cap) {
            struct row_index *bigger = row_index_new(index->cap * 2, index);
            if (bigger) __atomic_store_n(&g_row_index, bigger, __ATOMIC_RELEASE);
            index = g_row_index;
        }
        if (!index || (index->used + 1) * 2 > index->cap || g_nrows >= ROWS_MAX) {
            compute_row(pc, scratch);
            row = scratch;
        } else {
            struct row *fresh = &g_rows[g_nrows++];
            compute_row(pc, fresh);
            uint32_t at = (uint32_t)(mix(pc) & (index->cap - 1));
            while (index->e[at]) at = (at + 1) & (index->cap - 1);
            index->used++;
            __atomic_store_n(&index->e[at], (uint32_t)(fresh - g_rows) + 1, __ATOMIC_RELEASE);
            row = fresh;
        }
    }
    mutex_unlock(&g_unwind_lock);
    return row;
}
