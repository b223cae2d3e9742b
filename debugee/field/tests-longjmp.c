/* A --tests function left by longjmp (an error path of C code: a parser's longjmp to its caller),
 * then code outside any test case, then another test function at the same depth. Each leaks.
 * Figures by test case (definitely lost): test_longjmp 20 + 55 bytes (its own and its callee's),
 * test_after 8 bytes; outside any test case 99 bytes. Prints one line. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf back;
static void *volatile sink;

static void *leak(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

__attribute__((noinline)) static void deep(void)
{
    sink = leak(55);
    sink = NULL;
    longjmp(back, 1);
}

__attribute__((noinline)) void test_longjmp(void)
{
    sink = leak(20);
    sink = NULL;
    deep();
}

__attribute__((noinline)) void not_a_test(void)
{
    sink = leak(99);
    sink = NULL;
}

__attribute__((noinline)) void test_after(void)
{
    sink = leak(8);
    sink = NULL;
}

int main(void)
{
    if (!setjmp(back)) test_longjmp();
    not_a_test();
    test_after();
    printf("tests-longjmp: done\n");
    return 0;
}
