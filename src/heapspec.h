/*
 * heapspec.h - test-case markers for heapspec (https://www.npmjs.com/package/heapspec).
 *
 * Bracket each test case with heapspec_test_begin(name) / heapspec_test_end(name). Under
 * heapspec the capture backends break on these two functions and attribute every allocation
 * to the test case running when it was made. Outside heapspec they cost a function call.
 *
 * Header-only, C and C++, no link dependency. Build with -I"$(npx heapspec include)".
 */
#ifndef HEAPSPEC_H
#define HEAPSPEC_H

#ifdef __cplusplus
extern "C" {
#endif

/* Real, non-inlined functions with C linkage: the backends find them by name. The empty asm
 * keeps the compiler from folding the two identical bodies or dropping the call. Weak, so a
 * header included in several translation units links to one definition. */
__attribute__((weak, noinline, used)) void heapspec_test_begin(const char *name)
{
    __asm__ __volatile__("" : : "r"(name) : "memory");
}

__attribute__((weak, noinline, used)) void heapspec_test_end(const char *name)
{
    __asm__ __volatile__("" : : "r"(name) : "memory");
}

#ifdef __cplusplus
}

/* heapspec::TestCaseScope scope("name"); brackets the rest of a C++ scope as a test case:
 * it begins where the scope object is made and ends when it is destroyed. */
namespace heapspec {
struct TestCaseScope {
    const char *name;
    explicit TestCaseScope(const char *n) : name(n) { heapspec_test_begin(name); }
    ~TestCaseScope() { heapspec_test_end(name); }
};
} // namespace heapspec
#endif

#endif /* HEAPSPEC_H */
