/*
 * errors.cpp - memory errors (not leaks) for the Valgrind backend's tests.
 *
 * Exercises, each exactly once, in this order:
 *   - mismatched free: operator delete on a malloc'd block (MismatchedFree)
 *   - double free: free() of a block already freed (InvalidFree)
 *   - invalid read: one int past the end of a 16-byte block (InvalidRead)
 *   - invalid write: one byte past the end of a 10-byte block (InvalidWrite)
 *   - a branch on a value never written (UninitCondition)
 *   - strncpy between overlapping ranges (Overlap; memcheck checks strncpy, while
 *     glibc's memcpy resolves to memmove, which memcheck cannot fault)
 * Every block is freed and nothing leaks. Exit code 0: memcheck's free ignores
 * the bad frees. Output goes through write(2), so stdio allocates no buffer.
 *
 * Expected memcheck figures (valgrind 3.19, Debian 12):
 *   total heap usage: 6 allocs, 7 frees, 72,754 bytes allocated
 *     (the program's 5 blocks, 50 bytes, plus libstdc++'s 72,704-byte
 *     emergency pool, freed at exit; memcheck counts the double free as a free)
 *   in use at exit: 0 bytes in 0 blocks
 *   errors: MismatchedFree, InvalidFree, InvalidRead, InvalidWrite,
 *     UninitCondition, Overlap (one each)
 *   stdout "errors: done\n", stderr "errors: stderr\n"
 *
 * For memcheck only: run natively, glibc detects the double free and aborts.
 */
#include <cstdlib>
#include <cstring>
#include <unistd.h>

static volatile int sink;

__attribute__((noinline)) static void mismatched_free(void)
{
    int *p = static_cast<int *>(malloc(sizeof(int)));
    *p = 1;
    delete p;
}

__attribute__((noinline)) static void double_free(void)
{
    char *p = static_cast<char *>(malloc(16));
    free(p);
    free(p);
}

__attribute__((noinline)) static void invalid_read(void)
{
    int *p = static_cast<int *>(malloc(16));
    memset(p, 0, 16);
    sink = p[4];
    free(p);
}

__attribute__((noinline)) static void invalid_write(void)
{
    char *p = static_cast<char *>(malloc(10));
    p[10] = 'x';
    free(p);
}

__attribute__((noinline)) static void uninitialised_branch(void)
{
    int *p = static_cast<int *>(malloc(sizeof(int)));
    if (*p > 0)
        sink = 1;
    free(p);
}

__attribute__((noinline)) static void overlapping_copy(void)
{
    static char buf[32] = "0123456789";
    strncpy(buf + 2, buf, 5);
}

int main(void)
{
    mismatched_free();
    double_free();
    invalid_read();
    invalid_write();
    uninitialised_branch();
    overlapping_copy();
    if (write(1, "errors: done\n", 13) != 13 || write(2, "errors: stderr\n", 15) != 15)
        return 1;
    return 0;
}
