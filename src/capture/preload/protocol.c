/* Part of heapspec's preload interposer: compiled as one unit through interposer.c, which
 * includes its parts in this order (each may use what the parts before it define). */

/* ---------------------------------------------------------------------------------------------
 * The protocol writer: a buffer flushed to the descriptor, under the lock.
 */

#define OUT_SIZE (1 << 16)
static char *g_out;
static size_t g_outn;

static void out_flush(void)
{
    size_t done = 0;
    while (done < g_outn) {
        long n = x_write(g_fd, g_out + done, g_outn - done);
        if (n == -EINTR) continue;
        if (n <= 0) break; /* the host went away: nothing to do but keep the program running */
        done += (size_t)n;
    }
    g_outn = 0;
}

static inline void out_room(size_t n)
{
    if (g_outn + n > OUT_SIZE) out_flush();
}

static void out_bytes(const char *s, size_t n)
{
    while (n > 0) {
        out_room(1);
        size_t k = OUT_SIZE - g_outn;
        if (k > n) k = n;
        memcpy(g_out + g_outn, s, k);
        g_outn += k;
        s += k;
        n -= k;
    }
}

static void out_str(const char *s) { out_bytes(s, x_strlen(s)); }

static void out_hex(uint64_t v)
{
    char buf[17];
    int i = 16;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    out_bytes(buf + i, (size_t)(16 - i));
}

static void out_dec(uint64_t v)
{
    char buf[20];
    out_bytes(buf, put_dec(buf, v));
}

static void out_c(char c)
{
    out_room(1);
    g_out[g_outn++] = c;
}

/* A line "! message": the observer failed at something, the host reports it as a warning. */
static void out_failure(const char *what, const char *detail)
{
    out_str("! ");
    out_str(what);
    if (detail) {
        out_str(": ");
        out_str(detail);
    }
    out_c('\n');
}

/* A batch of blocks: the line "L count from to", then `count` records of 32 bytes, little-endian:
 * address, size and seq (u64 each; every seq in [from, to)), stack id and allocator (u32 each). */
static void out_batch_begin(uint64_t count, uint64_t from, uint64_t to)
{
    out_str("L ");
    out_dec(count);
    out_c(' ');
    out_dec(from);
    out_c(' ');
    out_dec(to);
    out_c('\n');
}

static inline void out_batch_block(uint64_t addr, uint64_t size, uint64_t seq, uint32_t sid, uint32_t alloc)
{
    uint64_t record[4] = {addr, size, seq, (uint64_t)sid | (uint64_t)alloc << 32};
    out_bytes((const char *)record, sizeof record);
}
