/*
 * possible.c - "possibly lost" blocks (only interior pointers).
 *
 * Exercises:
 *  - block X (64 bytes): the only pointer to it is g_inner = X + 8, an
 *    interior pointer -> possibly lost.
 *  - block Y (32 bytes): its only (start) pointer is stored inside X. memcheck
 *    propagates "possibly" along chains from a possibly-reached block, so Y
 *    is possibly lost too.
 *  - block Z (16 bytes): g_ok points at its start -> still reachable.
 * Hand count: 3 allocs, 0 frees, 112 bytes allocated; possible 96 bytes in
 * 2 blocks; still reachable 16 bytes in 1 block.
 *
 * Expected memcheck figures:
 *   total heap usage: 3 allocs, 0 frees, 112 bytes allocated
 *   in use at exit:   112 bytes in 3 blocks
 *   definitely lost:  0 bytes in 0 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    96 bytes in 2 blocks
 *   still reachable:  16 bytes in 1 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     reachable 16 bytes in 1 blocks at alloc_z (possible.c:49)
 *     possible 32 bytes in 1 blocks at alloc_y (possible.c:42)
 *     possible 64 bytes in 1 blocks at alloc_x (possible.c:35)
 */
#include <stdlib.h>
#include <string.h>

char *g_inner;               /* interior pointer into X */
char *g_ok;                  /* start pointer to Z */

__attribute__((noinline)) static char *alloc_x(void)
{
    char *x = malloc(64);
    memset(x, 0, 64);
    return x;
}

__attribute__((noinline)) static char *alloc_y(void)
{
    char *y = malloc(32);
    memset(y, 0, 32);
    return y;
}

__attribute__((noinline)) static char *alloc_z(void)
{
    char *z = malloc(16);
    memset(z, 0, 16);
    return z;
}

__attribute__((noinline)) static void setup(void)
{
    char *x = alloc_x();
    char *y = alloc_y();
    memcpy(x + 16, &y, sizeof y);    /* only pointer to Y lives inside X */
    g_inner = x + 8;                 /* only pointer to X is interior */
    g_ok = alloc_z();
}

int main(void)
{
    setup();
    return 0;
}
