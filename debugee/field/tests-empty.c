/* --tests functions as a suite has them, one of them empty: built -O1 (see the Makefile), the empty
 * one is a single `ret`, and the next one starts on the byte after it. gcc drops the call of the
 * empty one (it does nothing), so it is no test case on any backend; its breakpoint stays.
 * Figures: test_leaks loses 24 bytes in 1 block, definitely lost. Prints what test_leaks did. */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

__attribute__((noinline)) void test_empty(void) {}

__attribute__((noinline)) void test_leaks(void)
{
    sink = malloc(24);
    sink = NULL;
    printf("test_leaks ran\n");
}

int main(void)
{
    test_empty();
    test_leaks();
    return 0;
}
