/* Lost blocks from realloc and from malloc, for suppressions that name one allocator: memcheck's
 * fun:malloc suppresses the malloc'd ones alone, fun:realloc the realloc'd ones alone. */
#include <stdio.h>
#include <stdlib.h>

static void grown(void)
{
    char *p = malloc(10);
    p = realloc(p, 100); /* 100 bytes lost, from realloc */
    p[0] = 1;
}

static void plain(void)
{
    char *p = malloc(7); /* 7 bytes lost, from malloc */
    p[0] = 1;
}

int main(void)
{
    grown();
    plain();
    char *text;
    size_t length;
    FILE *f = open_memstream(&text, &length);
    fputs("hi", f);
    fclose(f); /* 3 bytes lost, from realloc inside glibc */
    text = NULL;
    printf("done\n");
    return 0;
}
