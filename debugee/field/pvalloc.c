/* pvalloc, which memcheck 3.19 does not replace: it neither counts the block nor reports it. */
#include <malloc.h>
#include <stdlib.h>

int main(void)
{
    void *p = pvalloc(100);
    void *q = malloc(10); /* counted, and definitely lost */
    (void)p;
    q = NULL;
    return 0;
}
