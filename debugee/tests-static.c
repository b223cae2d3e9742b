/*
 * tests-static.c - a --tests function name defined static in two files (this one and
 * tests-static-b.c), as C suites often have a `static void test_init(void)` in each test file.
 *
 * Exercises: --tests with one name and two definitions. Each definition is a test case of its
 * own, as gdb and memcheck see two functions: test_local here loses 16 bytes, test_local in
 * tests-static-b.c 32 bytes, and the global test_shared allocates 8 bytes and frees them.
 * Run with --tests '^test_'. Not listed in expected.json.
 */
#include <stdlib.h>

static void *volatile sink;

static void test_local(void)
{
    sink = malloc(16);
    sink = NULL;
}

void run_b(void);

int main(void)
{
    test_local();
    run_b();
    return 0;
}
