/* Many test cases: N (argument, default 10,000) heapspec.h test cases of 100 allocations each,
 * every 10th leaking one 24-byte block. Usage: many-tests [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    char name[32];
    for (long t = 0; t < n; t++) {
        snprintf(name, sizeof name, "case_%ld", t);
        heapspec_test_begin(name);
        void *blocks[100];
        for (int i = 0; i < 100; i++) {
            blocks[i] = malloc(16 + (size_t)i);
            memset(blocks[i], 0, 16);
        }
        for (int i = 0; i < 100; i++)
            if (t % 10 != 0 || i != 0) free(blocks[i]);
        heapspec_test_end(name);
    }
    return 0;
}
