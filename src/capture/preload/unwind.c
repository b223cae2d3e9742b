/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * The walk. Every value the walk consumes is traced (an entry register, or a stack word with its
 * address), so a later call from the same place can be checked against the trace and given the
 * same stack without walking: the fast path.
 */

/* What the entry stubs save: the caller's callee-saved registers and the stack pointer at entry. */
struct entry_regs {
    uint64_t rbx, rbp, r12, r13, r14, r15, sp;
};

#define MAX_READS 48
struct trace {
    uint32_t regmask;      /* which entry registers (rbx rbp r12 r13 r14 r15) the walk used */
    uint32_t nreads;
    int cacheable;
    uint64_t max_addr;
    struct { uint64_t addr, value; } reads[MAX_READS];
};

enum { SRC_DERIVED, SRC_ENTRY, SRC_MEMORY };
struct val {
    uint64_t v;
    uint64_t addr;     /* SRC_MEMORY: where it was read */
    uint8_t known, src, entry;
};

struct walk {
    uintptr_t lo, hi;  /* the stack words the walk may read */
    struct trace *t;
    struct val cur[NREGS];
};

static int readable(struct walk *w, uint64_t addr)
{
    return addr >= w->lo && addr + 8 <= w->hi && !(addr & 7);
}

static void use(struct walk *w, struct val *v)
{
    struct trace *t = w->t;
    if (!t) return;
    if (v->src == SRC_ENTRY) t->regmask |= 1u << v->entry;
    else if (v->src == SRC_MEMORY) {
        if (t->nreads < MAX_READS) {
            t->reads[t->nreads].addr = v->addr;
            t->reads[t->nreads].value = v->v;
            t->nreads++;
            if (v->addr > t->max_addr) t->max_addr = v->addr;
        } else {
            t->cacheable = 0;
        }
    }
    v->src = SRC_DERIVED; /* traced once is enough */
}

static int load(struct walk *w, uint64_t addr, struct val *out)
{
    if (!readable(w, addr)) {
        if (w->t) w->t->cacheable = 0; /* the bounds decided; another thread's may differ */
        out->known = 0;
        return 0;
    }
    out->v = *(const volatile uint64_t *)addr;
    out->addr = addr;
    out->known = 1;
    out->src = SRC_MEMORY;
    return 1;
}

/* A DWARF expression, with the subset of operators compilers and glibc emit in CFI. */
static int evaluate(struct walk *w, const uint8_t *p, uint32_t len, uint64_t pc, const uint64_t *push, uint64_t *result)
{
    uint64_t stack[64];
    int sp = 0;
    const uint8_t *end = p + len;
    if (push) stack[sp++] = *push;
#define NEED(n) do { if (sp < (n)) return 0; } while (0)
#define PUSH(x) do { if (sp >= 64) return 0; uint64_t pushed_ = (x); stack[sp++] = pushed_; } while (0)
    while (p < end) {
        uint8_t op = *p++;
        if (op >= DW_OP_lit0 && op <= DW_OP_lit31) {
            PUSH((uint64_t)(op - DW_OP_lit0));
        } else if ((op >= DW_OP_breg0 && op <= DW_OP_breg31) || op == DW_OP_bregx) {
            uint64_t reg = op == DW_OP_bregx ? uleb(&p) : (uint64_t)(op - DW_OP_breg0);
            int64_t off = sleb(&p);
            uint64_t base;
            if (reg == 16) base = pc;
            else if (reg < NREGS && w->cur[reg].known) {
                use(w, &w->cur[reg]);
                base = w->cur[reg].v;
            } else return 0;
            PUSH(base + (uint64_t)off);
        } else {
            uint64_t a, b;
            switch (op) {
            case DW_OP_deref: {
                NEED(1);
                struct val v;
                if (!load(w, stack[sp - 1], &v)) return 0;
                use(w, &v);
                stack[sp - 1] = v.v;
                break;
            }
            case DW_OP_const1u: PUSH(*p); p += 1; break;
            case DW_OP_const1s: PUSH((uint64_t)(int64_t)(int8_t)*p); p += 1; break;
            case DW_OP_const2u: { uint16_t x; memcpy(&x, p, 2); p += 2; PUSH(x); break; }
            case DW_OP_const2s: { int16_t x; memcpy(&x, p, 2); p += 2; PUSH((uint64_t)(int64_t)x); break; }
            case DW_OP_const4u: { uint32_t x; memcpy(&x, p, 4); p += 4; PUSH(x); break; }
            case DW_OP_const4s: { int32_t x; memcpy(&x, p, 4); p += 4; PUSH((uint64_t)(int64_t)x); break; }
            case DW_OP_const8u: case DW_OP_const8s: { uint64_t x; memcpy(&x, p, 8); p += 8; PUSH(x); break; }
            case DW_OP_constu: PUSH(uleb(&p)); break;
            case DW_OP_consts: PUSH((uint64_t)sleb(&p)); break;
            case DW_OP_plus_uconst: NEED(1); stack[sp - 1] += uleb(&p); break;
            case DW_OP_dup: NEED(1); PUSH(stack[sp - 1]); break;
            case DW_OP_drop: NEED(1); sp--; break;
            case DW_OP_over: NEED(2); PUSH(stack[sp - 2]); break;
            case DW_OP_swap: NEED(2); a = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = a; break;
            case DW_OP_neg: NEED(1); stack[sp - 1] = -stack[sp - 1]; break;
            case DW_OP_not: NEED(1); stack[sp - 1] = ~stack[sp - 1]; break;
            case DW_OP_nop: break;
            case DW_OP_and: case DW_OP_minus: case DW_OP_mul: case DW_OP_or: case DW_OP_plus:
            case DW_OP_shl: case DW_OP_shr: case DW_OP_shra: case DW_OP_xor: case DW_OP_eq:
            case DW_OP_ge: case DW_OP_gt: case DW_OP_le: case DW_OP_lt: case DW_OP_ne:
                NEED(2);
                b = stack[--sp];
                a = stack[sp - 1];
                switch (op) {
                case DW_OP_and: a &= b; break;
                case DW_OP_minus: a -= b; break;
                case DW_OP_mul: a *= b; break;
                case DW_OP_or: a |= b; break;
                case DW_OP_plus: a += b; break;
                case DW_OP_shl: a = b < 64 ? a << b : 0; break;
                case DW_OP_shr: a = b < 64 ? a >> b : 0; break;
                case DW_OP_shra: a = (uint64_t)((int64_t)a >> (b < 64 ? b : 63)); break;
                case DW_OP_xor: a ^= b; break;
                case DW_OP_eq: a = (int64_t)a == (int64_t)b; break;
                case DW_OP_ge: a = (int64_t)a >= (int64_t)b; break;
                case DW_OP_gt: a = (int64_t)a > (int64_t)b; break;
                case DW_OP_le: a = (int64_t)a <= (int64_t)b; break;
                case DW_OP_lt: a = (int64_t)a < (int64_t)b; break;
                case DW_OP_ne: a = (int64_t)a != (int64_t)b; break;
                }
                stack[sp - 1] = a;
                break;
            default: return 0;
            }
        }
    }
#undef NEED
#undef PUSH
    if (sp == 0) return 0;
    *result = stack[sp - 1];
    return 1;
}

static const int CALLEE_SAVED[6] = {3, 6, 12, 13, 14, 15}; /* rbx rbp r12 r13 r14 r15 */
static const int CALLER_SAVED[9] = {0, 1, 2, 4, 5, 8, 9, 10, 11}; /* rax rdx rcx rsi rdi r8-r11 */

/* Into the caller's frame, in place: what a call does not preserve is unknown there, the callee-
 * saved registers and the stack pointer carry over unless a rule says otherwise. */
static inline void forget_caller_saved(struct walk *w)
{
    for (int i = 0; i < 9; i++) w->cur[CALLER_SAVED[i]].known = 0;
}

/* One frame up: from the frame whose pc is `pc` (row `row`) to its caller. Returns the caller's
 * return address through *ra, 0 when the walk must stop (w->cur is then of no further use). The
 * register file is updated in place: only the registers the row has rules for are computed (from
 * the callee's values, all of them before any is stored), not a copy of all 17 per frame. */
static int step(struct walk *w, const struct row *row, uint64_t pc, uint64_t *ra)
{
    uint64_t cfa;
    if (row->fp) {
        /* no CFI: the frame pointer, if it points up the stack, holds the caller's rbp, then ra */
        struct val *rbp = &w->cur[6];
        if (!rbp->known || rbp->v < w->cur[7].v || !readable(w, rbp->v) || !readable(w, rbp->v + 8)) return 0;
        use(w, rbp);
        uint64_t frame = rbp->v;
        struct val r;
        load(w, frame + 8, &r);
        use(w, &r);
        forget_caller_saved(w);
        load(w, frame, &w->cur[6]);
        w->cur[7] = (struct val){frame + 16, 0, 1, SRC_DERIVED, 0};
        *ra = r.v;
        return 1;
    }
    if (row->cfa_expr) {
        if (!evaluate(w, (const uint8_t *)(uintptr_t)row->cfa_off, row->cfa_len, pc, NULL, &cfa)) return 0;
    } else {
        struct val *base = &w->cur[row->cfa_reg];
        if (!base->known) return 0;
        use(w, base);
        cfa = base->v + (uint64_t)row->cfa_off;
    }
    struct val fresh[NREGS];
    for (uint32_t i = 0; i < row->nrules; i++) {
        uint8_t reg = row->rule_reg[i];
        const struct rule *r = &row->r[reg];
        struct val *v = &fresh[i];
        uint64_t addr;
        v->known = 0;
        switch (r->kind) {
        case R_OFFSET: load(w, cfa + (uint64_t)r->off, v); break;
        case R_VAL_OFFSET: *v = (struct val){cfa + (uint64_t)r->off, 0, 1, SRC_DERIVED, 0}; break;
        case R_REGISTER: if (r->reg < NREGS) *v = w->cur[r->reg]; break;
        case R_SAME: *v = w->cur[reg]; break;
        case R_EXPR:
            if (evaluate(w, (const uint8_t *)(uintptr_t)r->off, r->len, pc, &cfa, &addr)) load(w, addr, v);
            break;
        case R_VAL_EXPR:
            if (evaluate(w, (const uint8_t *)(uintptr_t)r->off, r->len, pc, &cfa, &addr)) *v = (struct val){addr, 0, 1, SRC_DERIVED, 0};
            break;
        default: break; /* R_UNDEFINED */
        }
    }
    forget_caller_saved(w);
    w->cur[16].known = 0;
    w->cur[7] = (struct val){cfa, 0, 1, SRC_DERIVED, 0};
    for (uint32_t i = 0; i < row->nrules; i++) w->cur[row->rule_reg[i]] = fresh[i];
    if (!w->cur[16].known) return 0;
    use(w, &w->cur[16]);
    *ra = w->cur[16].v;
    w->cur[16].known = 0;
    return 1;
}

/* The top of this thread's stack: for the main thread its mapping's end, for the others glibc's
 * thread descriptor (pthread_self()), which sits right above the stack it allocated. */
static inline uintptr_t thread_hi(struct thread_state *me)
{
    if (UNLIKELY(!me->hi)) me->hi = me->tid == g_pid ? g_main_hi : (uintptr_t)pthread_self();
    return me->hi;
}

/* Walks from an allocator's entry: pcs[0] is the return address into its caller. Returns how many
 * pcs; cfas[i], when given, is the stack pointer of the frame pcs[i] returns into. */
static uint32_t walk_stack(struct thread_state *me, const struct entry_regs *r, uint64_t *pcs, uint64_t *cfas, uint32_t depth, struct trace *t)
{
    struct walk w;
    w.lo = r->sp;
    w.hi = thread_hi(me);
    w.t = t;
    if (t) {
        t->regmask = 0;
        t->nreads = 0;
        t->cacheable = 1;
        t->max_addr = r->sp;
    }
    uint64_t ra = *(const uint64_t *)r->sp;
    /* a stack we do not know the extent of (a signal's alternate stack, a thread of raw clone):
     * the caller only */
    int known = w.hi > r->sp && (me->tid == g_pid || w.hi - r->sp < (1ull << 30));
    memset(w.cur, 0, sizeof w.cur);
    const uint64_t entry[6] = {r->rbx, r->rbp, r->r12, r->r13, r->r14, r->r15};
    for (int i = 0; i < 6; i++) w.cur[CALLEE_SAVED[i]] = (struct val){entry[i], 0, 1, SRC_ENTRY, (uint8_t)i};
    w.cur[7] = (struct val){r->sp + 8, 0, 1, SRC_DERIVED, 0};
    uint32_t n = 0;
    int signal = 0;
    struct row scratch;
    while (ra && n < depth) {
        if (UNLIKELY(ra == (uint64_t)(uintptr_t)heapspec_test_return)) {
            /* a test function's frame: its real return address is on the shadow stack */
            uint64_t real = me->shadow ? shadow_ra(me, w.cur[7].v - 8) : 0;
            if (t) t->cacheable = 0;
            if (!real) break;
            ra = real;
        }
        pcs[n] = ra;
        if (cfas) cfas[n] = w.cur[7].v;
        n++;
        if (n >= depth || !known) break;
        uint64_t key = signal ? ra : ra - 1;
        const struct row *row = row_for(key, &scratch);
        if (row->stop && !row->fp) break;
        uint64_t next;
        if (!step(&w, row, ra, &next)) break;
        signal = row->signal;
        ra = next;
    }
    if (!known && t) t->cacheable = 0;
    return n;
}

/* The fast path's cache: (return address, stack pointer) at entry -> the stack, with its trace as
 * words to compare. The entry registers the walk used are compared where the stub saved them,
 * which for a given stack pointer is a fixed address too. An entry is right for any thread whose
 * words compare equal, but threads keep to shards of their own, so they neither share cache lines
 * nor wait for each other: the first CACHE_OWN threads to allocate each own a shard outright (no
 * lock: only its thread uses it, and a signal handler's allocations there run busy, outside the
 * hooks), later ones share CACHE_SHARED shards, each taken with a try, and a thread that finds
 * its shard held walks without the cache.
 * Set-associative: one place in the code (libstdc++'s operator new calling malloc, a wrapper) is
 * one return address for all its callers, and callers at the same depth share the stack pointer
 * too; the ways of a set keep several of them. */
#define MAX_CHECKS (MAX_READS + 6)
struct cached {
    uint32_t sid, nchecks;
    uint64_t max_addr;
    struct { uint64_t addr, value; } checks[MAX_CHECKS];
};
#define CACHE_WAYS 4
#define CACHE_SETS 256
#define CACHE_OWN 64
#define CACHE_SHARED 32
#define CACHE_SHARDS (CACHE_OWN + CACHE_SHARED)
/* The ways' keys side by side, so a lookup reads one cache line of them before the one way whose
 * key matches. */
struct cache_set {
    uint64_t ra[CACHE_WAYS], sp[CACHE_WAYS]; /* ra 0: an empty way */
    uint32_t victim;    /* the way refilled next when none is free */
    struct cached way[CACHE_WAYS];
};
struct cache_shard {
    int lock;
    uint32_t generation; /* g_code_generation when its entries were made */
    struct cache_set set[CACHE_SETS];
};
static struct cache_shard *g_cache;      /* CACHE_SHARDS of them */
static uint32_t g_code_generation;       /* one more each time code is unloaded */

/* The stack id for an allocator entered with `r`; UINT32_MAX when no stack could be kept. */
static __attribute__((noinline)) uint32_t stack_walked(struct thread_state *me, const struct entry_regs *r, struct cache_set *set, int way);

/* The stack of a call `set` holds no entry for: walked, and kept in a free way or the victim. */
static __attribute__((noinline)) uint32_t stack_missed(struct thread_state *me, const struct entry_regs *r, struct cache_set *set)
{
    int w = 0;
    while (w < CACHE_WAYS && set->ra[w]) w++;
    return stack_walked(me, r, set, w < CACHE_WAYS ? w : (int)(set->victim++ % CACHE_WAYS));
}

/* A lookup in `shard`, which this thread holds (its own, or, when `shared`, one it took). A hit costs
 * a multiply for the set, the compare of its keys, and the compare of the words the walk read
 * (four for a program's main): this runs at every malloc and every free. */
static inline __attribute__((always_inline)) uint32_t cache_lookup(struct thread_state *me, struct cache_shard *shard, const struct entry_regs *r, int shared)
{
    if (UNLIKELY(shard->generation != __atomic_load_n(&g_code_generation, __ATOMIC_ACQUIRE))) {
        memset(shard->set, 0, sizeof shard->set);
        shard->generation = g_code_generation;
    }
    uint64_t sp = r->sp;
    uint64_t ra = *(const uint64_t *)sp;
    struct cache_set *set = &shard->set[((ra ^ (sp >> 4)) * 0x9E3779B97F4A7C15ull) >> 56];
    for (int w = 0; w < CACHE_WAYS; w++) {
        if (set->ra[w] != ra || set->sp[w] != sp) continue;
        const struct cached *c = &set->way[w];
        /* the words compared eight at a time, the loads of each eight side by side, and a way that
         * differs left after the first eight that do: two calls from one place at one depth often
         * differ a frame or two up (node calling an addon's function twice for its two arguments:
         * every third lookup missed in its first way, nearly all of them in its first ten words,
         * and each had compared all thirty). An entry of another thread's (a shared shard) may
         * have read words past the top of this one's stack. */
        uint64_t differ = shared && c->max_addr + 8 > me->hi;
        uint32_t n = c->nchecks, i = 0;
        while (!differ && i < n) {
            uint32_t end = i + 8 < n ? i + 8 : n;
            for (; i < end; i++) differ |= *(const volatile uint64_t *)c->checks[i].addr ^ c->checks[i].value;
        }
        if (LIKELY(!differ)) return c->sid;
    }
    return stack_missed(me, r, set);
}

/* A thread with no shard of its own: attached first, its shared shard taken with a try, and no
 * waiting (nobody waits on a shard, so it is released with a plain store); a thread that finds it
 * held walks without the cache. */
static __attribute__((noinline)) uint32_t stack_of_shared(struct thread_state *me, const struct entry_regs *r)
{
    if (!me->cache) {
        me->cache = &g_cache[me->shard >= CACHE_OWN ? CACHE_OWN + (me->shard & (CACHE_SHARED - 1)) : me->shard];
        thread_hi(me);
        if (me->shard < CACHE_OWN) me->own_cache = me->cache;
    }
    struct cache_shard *shard = me->cache;
    int locked = me->shard >= CACHE_OWN && !single_threaded();
    if (locked && !mutex_trylock(&shard->lock)) return stack_walked(me, r, NULL, 0);
    uint32_t sid = cache_lookup(me, shard, r, 1);
    if (locked) __atomic_store_n(&shard->lock, 0, __ATOMIC_RELEASE);
    return sid;
}

/* Runs inside an allocator call, with no lock of ours held on entry or on return. */
static inline __attribute__((always_inline)) uint32_t stack_walked_now(struct thread_state *me, const struct entry_regs *r)
{
    struct cache_shard *own = me->own_cache;
    return LIKELY(own != NULL) ? cache_lookup(me, own, r, 0) : stack_of_shared(me, r);
}

/* The stack of an allocation or a free: none while no observed object is loaded (g_walks_gated). */
static inline __attribute__((always_inline)) uint32_t stack_of(struct thread_state *me, const struct entry_regs *r)
{
    me->last_sp = r->sp;
    if (UNLIKELY(g_walks_gated)) return UINT32_MAX;
    return stack_walked_now(me, r);
}

/* The stack of a memory error: walked even while the gate is shut (the error is reported anyway). */
static uint32_t error_stack(struct thread_state *me, const struct entry_regs *r, uint32_t sid)
{
    return sid == UINT32_MAX && g_walks_gated ? stack_walked_now(me, r) : sid;
}

/* The slow path: a real walk, and way `way` of `set` (when given) refilled. */
static __attribute__((noinline)) uint32_t stack_walked(struct thread_state *me, const struct entry_regs *r, struct cache_set *set, int way)
{
    uint64_t pcs[DEPTH];
    struct trace t;
    uint32_t n = walk_stack(me, r, pcs, NULL, DEPTH, &t);
    uint32_t sid = stack_intern(pcs, n);
    if (set && t.cacheable && sid != UINT32_MAX) {
        struct cached *c = &set->way[way];
        uint32_t k = 0;
        const uint64_t *entry = &r->rbx; /* rbx rbp r12 r13 r14 r15, where the stub saved them */
        for (int i = 0; i < 6; i++)
            if (t.regmask >> i & 1) {
                c->checks[k].addr = (uint64_t)(uintptr_t)&entry[i];
                c->checks[k].value = entry[i];
                k++;
            }
        for (uint32_t i = 0; i < t.nreads; i++) {
            c->checks[k].addr = t.reads[i].addr;
            c->checks[k].value = t.reads[i].value;
            k++;
        }
        c->sid = sid;
        c->nchecks = k;
        c->max_addr = t.max_addr;
        set->ra[way] = *(const uint64_t *)r->sp;
        set->sp[way] = r->sp;
    }
    return sid;
}

/* Code was unloaded: rows and cached stacks may describe code that is gone. Walks in progress
 * keep the rows they found (they stay mapped); new walks see a new index and emptied shards. */
static void forget_code(void)
{
    mutex_lock(&g_unwind_lock);
    struct row_index *empty = g_row_index ? row_index_new(g_row_index->cap, NULL) : NULL;
    if (empty) __atomic_store_n(&g_row_index, empty, __ATOMIC_RELEASE);
    __atomic_add_fetch(&g_code_generation, 1, __ATOMIC_RELEASE);
    g_modules_stale = 1;
    mutex_unlock(&g_unwind_lock);
}
