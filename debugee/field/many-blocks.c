/* Many live blocks at exit: N (argument, default 1,000,000) 32-byte blocks in a table the program
 * keeps (still reachable), and every 1,000th of them also lost. Usage: many-blocks [N] */
#include <stdlib.h>
#include <string.h>

void **table;

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    table = malloc((size_t)n * sizeof *table);
    for (long i = 0; i < n; i++) {
        table[i] = malloc(32);
        memset(table[i], 0, 32);
    }
    for (long i = 0; i < n; i += 1000) table[i] = malloc(16); /* the 32 bytes there are lost */
    return 0;
}
