/*
 * free-mismatch.cpp - blocks released by the wrong family, one per test case, then the right
 * ones (no error).
 *
 * In this order, each its own test case:
 *   malloc_delete        malloc(4), delete
 *   malloc_delete_array  malloc(8), delete[]
 *   new_free             new int, free()
 *   new_delete_array     new int, delete[]
 *   array_free           new int[3], free()
 *   array_delete         new int[5], delete
 *   new_realloc          new int, realloc() to 64 bytes (then free(), which matches)
 *   matched              new/delete, new[]/delete[], malloc/free, nothrow new/delete: no error
 * Every block is freed and nothing leaks. stdout "free-mismatch: done\n", exit code 0, natively
 * as well: glibc frees every family alike.
 *
 * Expected memcheck figures (valgrind 3.19, Debian 12):
 *   total heap usage: 13 allocs, 13 frees, 72,863 bytes allocated
 *     (the program's 12 blocks, 159 bytes, and libstdc++'s 72,704-byte emergency pool)
 *   in use at exit: 0 bytes in 0 blocks
 *   errors: 7 MismatchedFree, one per test case but the last
 */
#include <cstdlib>
#include <new>
#include <unistd.h>
#include "heapspec.h"

static void *volatile launder; // keeps the compiler from seeing (and warning about) the mismatches

template <class T> static T *hide(T *p)
{
    launder = p;
    return static_cast<T *>(launder);
}

__attribute__((noinline)) static void malloc_delete()
{
    int *p = static_cast<int *>(malloc(sizeof(int)));
    delete hide(p);
}

__attribute__((noinline)) static void malloc_delete_array()
{
    int *p = static_cast<int *>(malloc(8));
    delete[] hide(p);
}

__attribute__((noinline)) static void new_free()
{
    int *p = new int(1);
    free(hide(p));
}

__attribute__((noinline)) static void new_delete_array()
{
    int *p = new int(2);
    delete[] hide(p);
}

__attribute__((noinline)) static void array_free()
{
    int *p = new int[3];
    free(hide(p));
}

__attribute__((noinline)) static void array_delete()
{
    int *p = new int[5];
    delete hide(p);
}

__attribute__((noinline)) static void new_realloc()
{
    int *p = new int(3);
    p = static_cast<int *>(realloc(hide(p), 64));
    free(p);
}

__attribute__((noinline)) static void matched()
{
    int *a = new int(1);
    delete a;
    int *b = new int[6];
    delete[] b;
    void *c = malloc(7);
    free(c);
    int *d = new (std::nothrow) int;
    delete d;
}

int main()
{
    { heapspec::TestCaseScope t("malloc_delete"); malloc_delete(); }
    { heapspec::TestCaseScope t("malloc_delete_array"); malloc_delete_array(); }
    { heapspec::TestCaseScope t("new_free"); new_free(); }
    { heapspec::TestCaseScope t("new_delete_array"); new_delete_array(); }
    { heapspec::TestCaseScope t("array_free"); array_free(); }
    { heapspec::TestCaseScope t("array_delete"); array_delete(); }
    { heapspec::TestCaseScope t("new_realloc"); new_realloc(); }
    { heapspec::TestCaseScope t("matched"); matched(); }
    if (write(1, "free-mismatch: done\n", 20) != 20)
        return 1;
    return 0;
}
