// A nothrow operator new that fails returns nullptr, and the program goes on. libstdc++'s nothrow
// forms call the throwing ones and catch their std::bad_alloc, so natively each failure allocates
// and frees a 136-byte exception inside the call; memcheck's nothrow new returns nullptr without
// one, and counts nothing for the failure. Each of the four nothrow forms (new, new[], and their
// aligned twins) fails twice from one call site, one of each succeeds and is deleted, and one
// 24-byte block is lost. Prints what each returned.
#include <cstdio>
#include <new>

static void *volatile sink;
static const std::size_t huge = (std::size_t)1 << 62;
static const std::align_val_t aligned{64};

__attribute__((noinline)) static void *attempt(int form, std::size_t n)
{
    switch (form) {
    case 0: return ::operator new(n, std::nothrow);
    case 1: return ::operator new[](n, std::nothrow);
    case 2: return ::operator new(n, aligned, std::nothrow);
    default: return ::operator new[](n, aligned, std::nothrow);
    }
}

__attribute__((noinline)) static void release(int form, void *p)
{
    switch (form) {
    case 0: ::operator delete(p, std::nothrow); break;
    case 1: ::operator delete[](p, std::nothrow); break;
    case 2: ::operator delete(p, aligned, std::nothrow); break;
    default: ::operator delete[](p, aligned, std::nothrow); break;
    }
}

int main()
{
    static const char *const names[] = {"new", "new[]", "aligned new", "aligned new[]"};
    for (int form = 0; form < 4; form++) {
        for (int i = 0; i < 2; i++) std::printf("%s nothrow of 2^62 bytes, %d: %s\n", names[form], i, attempt(form, huge) ? "allocated" : "nullptr");
        void *p = attempt(form, 40);
        std::printf("%s nothrow of 40 bytes: %s\n", names[form], p ? "allocated" : "nullptr");
        release(form, p);
    }
    sink = new char[24]; // definitely lost: the next line drops its only pointer
    sink = nullptr;
    std::printf("nothrow-fails: done\n");
    return 0;
}
