/* Many test cases: N (argument, default 10,000) heapspec.h test cases of 100 allocations each,
 * every 10th leaking one 16-byte block, over a fixture of F 32-byte blocks (second argument, default
 * none) allocated before them and still reachable at exit. Usage: many-tests [N [F]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

void **fixture;

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    long f = argc > 2 ? atol(argv[2]) : 0;
    if (f > 0) {
        fixture = malloc((size_t)f * sizeof *fixture);
        for (long i = 0; i < f; i++) fixture[i] = calloc(1, 32);
    }
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
