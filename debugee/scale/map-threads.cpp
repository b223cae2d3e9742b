// A C++ container workload: 4 threads each fill and clear a std::map<long, long> ROUNDS times
// (argument 1, default 40) with 10,000 keys, half inserted from one function and half from
// another at the same stack depth (operator new calls malloc from one place for every caller);
// each thread then loses one 64-byte block.
// Figures: definitely lost 256 bytes in 4 blocks.
// Usage: map-threads [ROUNDS]
#include <pthread.h>
#include <cstdint>
#include <cstdlib>
#include <map>

static long *volatile sinks[4];
static long rounds;

__attribute__((noinline)) static void put_even(std::map<long, long> &m, long k) { m.emplace(k, k * 2); }
__attribute__((noinline)) static void put_odd(std::map<long, long> &m, long k) { m.emplace(k, k * 3); }

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        std::map<long, long> m;
        for (long i = 0; i < 10000; i++) {
            long k = (i * 7919) % 10000;
            if (k & 1) put_odd(m, k);
            else put_even(m, k);
        }
    }
    sinks[t] = new long[8];
    sinks[t] = nullptr;
    return nullptr;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 40;
    pthread_t id[4];
    for (long t = 0; t < 4; t++) pthread_create(&id[t], nullptr, worker, (void *)(intptr_t)t);
    for (long t = 0; t < 4; t++) pthread_join(id[t], nullptr);
    return 0;
}
