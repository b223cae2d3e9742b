// A program that keeps a reserve for when memory runs out: a std::new_handler frees a reserve
// block, and operator new tries again and succeeds. Memory runs out under an RLIMIT_DATA 16 MiB
// above what the program uses once its two 64 MiB reserves are allocated: new[] of 48 MiB fails,
// the handler frees one reserve (and keeps a note of it, a strdup the next note drops: 45 bytes
// lost, 45 reachable), the retry succeeds; a nothrow new[] of 48 MiB the same with the second
// reserve. Then the handler has nothing left and uninstalls itself: an aligned nothrow new[] of
// 2^62 bytes returns nullptr. Then a handler that throws std::bad_alloc itself: a nothrow new of
// 2^62 bytes catches it and returns nullptr. Prints what happened.
//
// memcheck never calls a new-handler: its operator new cannot, and ends the program at a failure.
// With `called` the program calls its handler itself where operator new would, and asks for no
// more than the handler made room for: the same heap as natively (a failed operator new allocates
// nothing memcheck counts), the same output, for memcheck to run.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/resource.h>

static void *volatile sink;
static char *reserve[2];
static int reserves;
static const std::size_t mib = (std::size_t)1 << 20;
static const std::size_t huge = (std::size_t)1 << 62;

static std::size_t data_bytes()
{
    FILE *f = std::fopen("/proc/self/status", "r");
    char line[256];
    std::size_t kb = 0;
    while (f && std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmData:", 7) == 0) kb = std::strtoul(line + 7, nullptr, 10);
    if (f) std::fclose(f);
    return kb * 1024;
}

static void release_reserve()
{
    if (reserves == 0) {
        std::printf("new-handler: no reserve left\n");
        std::set_new_handler(nullptr);
        return;
    }
    std::free(reserve[--reserves]);
    reserve[reserves] = nullptr;
    sink = strdup("the new-handler's note: a reserve block went");
    std::printf("new-handler: freed reserve %d\n", reserves);
}

static void give_up()
{
    std::printf("new-handler: throws\n");
    throw std::bad_alloc();
}

int main(int argc, char **argv)
{
    bool called = argc > 1 && std::strcmp(argv[1], "called") == 0;
    for (reserves = 0; reserves < 2; reserves++) reserve[reserves] = (char *)std::malloc(64 * mib);
    std::set_new_handler(release_reserve);
    struct rlimit old;
    getrlimit(RLIMIT_DATA, &old);
    struct rlimit tight = old;
    tight.rlim_cur = data_bytes() + 16 * mib;
    if (!called) setrlimit(RLIMIT_DATA, &tight);

    if (called) release_reserve();
    char *a = new char[48 * mib];
    std::printf("new[] of 48 MiB: %s\n", a ? "allocated" : "nullptr");
    if (called) release_reserve();
    char *b = new (std::nothrow) char[48 * mib];
    std::printf("nothrow new[] of 48 MiB: %s\n", b ? "allocated" : "nullptr");
    void *c = nullptr;
    if (called) release_reserve();
    else c = ::operator new[](huge, std::align_val_t(64), std::nothrow);
    std::printf("aligned nothrow new[] of 2^62 bytes: %s\n", c ? "allocated" : "nullptr");
    std::set_new_handler(give_up);
    void *d = nullptr;
    if (called) {
        try {
            give_up();
        } catch (const std::bad_alloc &) {
        }
    } else {
        d = ::operator new(huge, std::nothrow);
    }
    std::printf("nothrow new of 2^62 bytes: %s\n", d ? "allocated" : "nullptr");

    setrlimit(RLIMIT_DATA, &old);
    delete[] a;
    delete[] b;
    std::printf("new-handler: done\n");
    return 0;
}
