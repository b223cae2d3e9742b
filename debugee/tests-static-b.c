/* tests-static-b.c - the other half of tests-static (see tests-static.c). */
#include <stdlib.h>

static void *volatile sink_b;

static void test_local(void)
{
    sink_b = malloc(32);
    sink_b = NULL;
}

void test_shared(void)
{
    void *p = malloc(8);
    sink_b = p;
    free(p);
    sink_b = NULL;
}

void run_b(void)
{
    test_local();
    test_shared();
}
