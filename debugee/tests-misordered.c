/*
 * tests-misordered.c - markers used wrongly: an end without a begin, a begin while another
 * test case runs, an end whose name differs. heapspec warns about each and attributes every
 * allocation to at most one test case.
 */
#include <stdlib.h>
#include "heapspec.h"

static void *volatile sink[2];

int main(void)
{
    heapspec_test_end("ends_never_began");
    heapspec_test_begin("first");
    sink[0] = malloc(10);
    heapspec_test_begin("second");
    sink[1] = malloc(20);
    heapspec_test_end("other_name");
    free(sink[0]);
    free(sink[1]);
    return 0;
}
