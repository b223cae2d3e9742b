/*
 * libc.c - heap blocks allocated inside libc on the program's behalf.
 *
 * Exercises (this program uses stdio: fmemopen/getline/fclose, asprintf;
 * it never touches stdout, so no stdout buffer is allocated):
 *  - strdup("hello, heap")  12 bytes, freed
 *  - strdup(LONG)           leaked (definite)
 *  - strndup(LONG, 5)       6 bytes, leaked (definite)
 *  - fmemopen + 2 getline + fclose: the line buffer (120 bytes, getline's
 *    initial size) is leaked; fmemopen's cookie (calloc(40, 1)), the FILE
 *    (malloc(280), glibc 2.36 x86-64) and the stream buffer (malloc(BUFSIZ =
 *    8192) on first read) are freed by fclose.
 *  - asprintf twice, one result freed, one leaked. glibc 2.36's vasprintf
 *    formats into a 100-byte malloc'd buffer, then (result much smaller
 *    than the buffer) malloc's an exact-size copy and frees the 100 bytes:
 *    2 allocs + 1 free per call.
 * Hand count: strdup 2, strndup 1, fmemopen 2, stream buffer 1, getline 1,
 * asprintf 2 * 2 = 11 allocs; frees: strdup 1, fclose 3, asprintf 2 + 1
 * = 7 frees; bytes 12 + 36 + 6 + 40 + 280 + 8192 + 120 + (100 + 7) +
 * (100 + 9) = 8902; definitely lost 36 + 6 + 120 + 9 = 171 bytes in 4 blocks.
 * Leak sites are reported in libc (strdup, getdelim, vasprintf); the first
 * frame in this file is the named wrapper function.
 *
 * Expected memcheck figures:
 *   total heap usage: 11 allocs, 7 frees, 8902 bytes allocated
 *   in use at exit:   171 bytes in 4 blocks
 *   definitely lost:  171 bytes in 4 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 6 bytes in 1 blocks at dup_strings (libc.c:51)
 *     definite 9 bytes in 1 blocks at format_strings (libc.c:73)
 *     definite 36 bytes in 1 blocks at dup_strings (libc.c:50)
 *     definite 120 bytes in 1 blocks at read_lines (libc.c:61)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char LONG[] = "a string that is copied to the heap";
static char text[] = "first line\nsecond line\n";

__attribute__((noinline)) static void dup_strings(void)
{
    char *a = strdup("hello, heap");
    free(a);
    char *b = strdup(LONG);          /* leaked */
    char *c = strndup(LONG, 5);      /* leaked */
    (void)b;
    (void)c;
}

__attribute__((noinline)) static void read_lines(void)
{
    FILE *f = fmemopen(text, strlen(text), "r");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) != -1)
        ;
    fclose(f);
    /* line is leaked */
}

__attribute__((noinline)) static void format_strings(void)
{
    char *s = NULL, *t = NULL;
    if (asprintf(&s, "%d-%s", 42, "abc") < 0)   /* "42-abc": 7 bytes */
        abort();
    free(s);
    if (asprintf(&t, "%s=%d", "key", 1234) < 0) /* "key=1234": 9 bytes, leaked */
        abort();
}

int main(void)
{
    dup_strings();
    read_lines();
    format_strings();
    return 0;
}
