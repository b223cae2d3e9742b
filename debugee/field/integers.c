/* Numbers that are not pointers: a program keeps a table of 32-bit quantities (sizes, offsets,
 * inode numbers: ld.so itself keeps each library's inode in its link map) and loses a 1 MiB block.
 * Under memcheck's default layout the client heap starts near 64 MiB, inside the range such numbers
 * take, so one of them lands inside the block and memcheck calls it possibly lost; natively the
 * heap lies above 4 GiB, where no 32-bit number can point. The table covers 64 MiB to 4 GiB at a
 * stride of 512 KiB, so that range is hit on every machine, not only where a library's inode
 * happens to fall into it.
 * Figures (the heap above 4 GiB, as native and as memcheck with --aspace-minaddr=0x100000000):
 * definitely lost 1,048,576 bytes in 1 block. Prints the table's size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FROM 0x4000000UL
#define UPTO 0x100000000UL
#define STRIDE 0x80000UL

static unsigned long quantities[(UPTO - FROM) / STRIDE];
static char *volatile buffer;

int main(void)
{
    size_t n = 0;
    for (unsigned long q = FROM; q < UPTO; q += STRIDE)
        quantities[n++] = q + 8;
    buffer = malloc(1 << 20);
    memset(buffer, 1, 1 << 20);
    buffer = 0;
    printf("%zu quantities\n", n);
    return 0;
}
