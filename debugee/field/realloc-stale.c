/* A stale copy of a block's address kept across realloc (mawk does this). memcheck's realloc always
 * moves the block, so the copy points at freed memory and the grown block, dropped later, is
 * definitely lost; glibc grows it in place, where the stale copy would still point at it. */
#include <stdlib.h>
#include <string.h>

char *old_copy;

int main(void)
{
    char *fence = malloc(16); /* so the grown block is not the top chunk */
    char *p = malloc(24);
    strcpy(p, "grown in place?");
    old_copy = p;
    free(fence);
    p = realloc(p, 40);
    p[30] = 1;
    p = NULL; /* the grown block is now reachable only through old_copy, if at all */
    return 0;
}
