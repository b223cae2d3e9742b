// Two callers at the same stack depth through one allocating function, as every caller of
// libstdc++'s operator new is: 4 threads each call from_a and from_b alternately 10,000 times,
// and both reach operator new from the same place in make() with the same stack pointer. from_a
// loses every 100th block (24 bytes), from_b every 250th (40 bytes).
// Figures: definitely lost 9,600 bytes in 400 blocks at from_a, 6,400 bytes in 160 blocks at
// from_b; 80,000 allocations and 79,440 frees of the program's own.
#include <pthread.h>
#include <cstdint>
#include <cstdlib>

static char *volatile sink;

__attribute__((noinline)) static char *make(std::size_t n) { return new char[n]; }

__attribute__((noinline)) static void from_a(long i)
{
    char *p = make(24);
    p[0] = (char)i;
    if (i % 100 == 0) sink = p;
    else delete[] p;
}

__attribute__((noinline)) static void from_b(long i)
{
    char *p = make(40);
    p[0] = (char)i;
    if (i % 250 == 0) sink = p;
    else delete[] p;
}

static void *worker(void *)
{
    for (long i = 0; i < 10000; i++) {
        from_a(i);
        from_b(i);
    }
    return nullptr;
}

int main()
{
    pthread_t id[4];
    for (auto &t : id) pthread_create(&t, nullptr, worker, nullptr);
    for (auto &t : id) pthread_join(t, nullptr);
    sink = nullptr;
    return 0;
}
