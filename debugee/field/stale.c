/* Stale pointers in reused memory: a freed struct held the only pointer to a 100-byte block; the
 * next malloc of the struct's size gets the same chunk back, old contents and all, and the program
 * writes only one field. memcheck: the 100 bytes are definitely lost (the new block's unwritten
 * words are undefined, so its scan never reads the old pointer). */
#include <stdlib.h>
#include <string.h>

struct holder {
    long id, kind; /* glibc's free list keeps its links in the first two words */
    char *data;
    long spare[3];
};

struct holder *keep;

int main(void)
{
    struct holder *h = malloc(sizeof *h);
    memset(h, 0, sizeof *h);
    h->data = malloc(100);
    free(h); /* the only pointer to the 100 bytes goes with it */
    keep = malloc(sizeof *keep);
    keep->id = 1; /* data and spare are never written */
    return 0;
}
