// A failing operator new throws std::bad_alloc, and the program catches it. The unwinder finds
// the caller's frame through the return address the call pushed: an observer that points it at
// code of its own with no unwind information (heapspec's gdb backend records a call's result
// so) turns the catch into std::terminate. new[] fails twice from one call site, then new of a
// huge object and of a huge over-aligned one; the program goes on allocating and freeing after
// each catch, and loses one 24-byte block. Prints what it caught.
//
// memcheck cannot run it: valgrind's operator new cannot throw, and ends the program at the first
// failure ("new/new[] failed and should throw an exception ... aborting instead"). With `thrown`
// it throws std::bad_alloc itself where operator new would fail: the same heap as natively (a
// failed operator new allocates nothing memcheck counts, and each throw allocates its exception),
// the same output, for memcheck to run.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static void *volatile sink;
static bool thrown; // throw std::bad_alloc instead of asking operator new for the impossible

struct Huge {
    char bytes[(std::size_t)1 << 61];
};

struct alignas(64) HugeAligned {
    char bytes[(std::size_t)1 << 61];
};

__attribute__((noinline)) static bool array_fails(std::size_t n)
{
    try {
        if (thrown && n > ((std::size_t)1 << 40)) throw std::bad_alloc();
        char *p = new char[n];
        sink = p;
        delete[] p;
        return false;
    } catch (const std::bad_alloc &) {
        return true;
    }
}

template <typename T> __attribute__((noinline)) static bool object_fails()
{
    try {
        if (thrown) throw std::bad_alloc();
        T *t = new T;
        sink = t;
        delete t;
        return false;
    } catch (const std::bad_alloc &e) {
        std::printf("caught from new of %zu bytes: %s\n", sizeof(T), e.what());
        return true;
    }
}

int main(int argc, char **argv)
{
    thrown = argc > 1 && std::strcmp(argv[1], "thrown") == 0;
    for (int i = 0; i < 2; i++) std::printf("new[] %d: %s\n", i, array_fails((std::size_t)1 << 62) ? "caught" : "allocated");
    std::printf("new[] small: %s\n", array_fails(32) ? "caught" : "allocated");
    std::printf("new Huge: %s\n", object_fails<Huge>() ? "caught" : "allocated");
    std::printf("new HugeAligned: %s\n", object_fails<HugeAligned>() ? "caught" : "allocated");
    int *kept = new int[4];
    sink = new char[24]; // definitely lost: the next line drops its only pointer
    sink = nullptr;
    kept[0] = 1;
    delete[] kept;
    std::printf("new-throws: done\n");
    return 0;
}
