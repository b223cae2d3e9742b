// --tests functions that a C++ exception leaves, or that catch their own: the unwinder must find
// every frame's way back (heapspec's preload backend replaces a test function's return address),
// or the program dies in std::terminate where natively it catches. Each test function leaks a
// block before it throws. Figures by test case (definitely lost): test_throws 24 bytes,
// test_catches 40 bytes, test_rethrows 56 bytes, test_after 8 bytes. Prints what it caught.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

static void *volatile sink;

__attribute__((noinline)) static void leak(std::size_t n)
{
    sink = std::malloc(n);
    sink = nullptr;
}

__attribute__((noinline)) void test_throws()
{
    leak(24);
    throw std::runtime_error("from test_throws");
}

__attribute__((noinline)) void test_catches()
{
    leak(40);
    try {
        throw std::logic_error("inside test_catches");
    } catch (const std::exception &e) {
        std::printf("caught inside: %s\n", e.what());
    }
}

__attribute__((noinline)) void test_rethrows()
{
    leak(56);
    try {
        throw std::runtime_error("from test_rethrows");
    } catch (...) {
        throw;
    }
}

__attribute__((noinline)) void test_after() { leak(8); }

int main()
{
    try {
        test_throws();
    } catch (const std::exception &e) {
        std::printf("caught: %s\n", e.what());
    }
    test_catches();
    try {
        test_rethrows();
    } catch (const std::exception &e) {
        std::printf("caught: %s\n", e.what());
    }
    test_after();
    std::printf("tests-throw: done\n");
    return 0;
}
