/*
 * cxx.cpp - C++ allocation: new/delete, new[]/delete[], aligned new and
 * standard containers.
 *
 * Exercises (all freed):
 *  - new Widget (24 bytes) / delete
 *  - new int[8] (32 bytes) / delete[]
 *  - new Tracked[3] / delete[]: Tracked has a destructor, so new[] stores an
 *    8-byte element count in front: 8 + 3 * 16 = 56 bytes
 *  - std::vector<int> with 5 push_backs: capacity 1, 2, 4, 8
 *    -> 4 allocations of 4 + 8 + 16 + 32 = 60 bytes
 *  - std::string of 30 chars (longer than the 15-char SSO buffer)
 *    -> 1 allocation of 31 bytes
 *  - std::map<int, int> with 3 entries -> 3 tree nodes of 40 bytes
 * Leaks (definite):
 *  - make_record(): new Record, a 48-byte struct
 *  - make_ints():   new int[10] = 40 bytes
 *  - make_aligned(): new Aligned, alignas(64) -> operator new(size_t,
 *    std::align_val_t), 64 bytes
 * Not from this file: libstdc++ allocates its exception-handling emergency
 * pool (72704 bytes) at startup; valgrind frees it at exit through
 * __gnu_cxx::__freeres. That adds 1 alloc, 1 free, 72704 bytes.
 * Hand count: 1 + 1 + 1 + 1 + 4 + 1 + 3 + 3 = 15 allocs, 12 frees,
 * 72704 + 24 + 32 + 56 + 60 + 31 + 120 + 48 + 40 + 64 = 73179 bytes;
 * definitely lost 152 bytes in 3 blocks.
 *
 * Expected memcheck figures:
 *   total heap usage: 15 allocs, 12 frees, 73179 bytes allocated
 *   in use at exit:   152 bytes in 3 blocks
 *   definitely lost:  152 bytes in 3 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 40 bytes in 1 blocks at make_ints() (cxx.cpp:72)
 *     definite 48 bytes in 1 blocks at make_record() (cxx.cpp:66)
 *     definite 64 bytes in 1 blocks at make_aligned() (cxx.cpp:78)
 */
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

struct Widget {              /* 24 bytes */
    long a, b, c;
};

struct Tracked {             /* 16 bytes, non-trivial destructor */
    long id = 0, v = 0;
    ~Tracked() { id = -1; }
};

struct Record {              /* 48 bytes */
    char name[40];
    long value;
};

struct alignas(64) Aligned { /* 64 bytes, 64-byte aligned */
    char data[64];
};

__attribute__((noinline)) static Record *make_record()
{
    Record *r = new Record();
    return r;
}

__attribute__((noinline)) static int *make_ints()
{
    int *a = new int[10]();
    return a;
}

__attribute__((noinline)) static Aligned *make_aligned()
{
    Aligned *p = new Aligned();
    return p;
}

__attribute__((noinline)) static long use_containers()
{
    std::vector<int> v;
    for (int i = 0; i < 5; i++)
        v.push_back(i);

    std::string s("a thirty character heap string");   /* 30 chars */

    std::map<int, int> m;
    for (int i = 0; i < 3; i++)
        m[i] = i * i;

    return (long)v.size() + (long)s.size() + (long)m.size();
}

int main()
{
    Widget *w = new Widget();
    delete w;

    int *ints = new int[8]();
    delete[] ints;

    Tracked *t = new Tracked[3];
    delete[] t;

    use_containers();

    /* Leaks: the returned pointers are dropped. */
    make_record();
    make_ints();
    make_aligned();
    return 0;
}
