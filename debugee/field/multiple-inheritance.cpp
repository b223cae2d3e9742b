// Objects held only through a pointer to a base class after the first: the pointer lands inside
// the object, at that base's part, which starts with its own vtable pointer. memcheck's
// multipleinheritance heuristic (on by default) calls such an object reachable, not possibly lost,
// when its first word and the pointed-at word both point at vtables. A pointer into the middle of
// an object that lands on a pointer to anything else stays an interior pointer: possibly lost.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "heapspec.h"

struct Named {
    virtual ~Named() {}
    virtual const char *name() const { return "named"; }
    virtual int rank() const { return 1; }
    long id = 7;
};

struct Sized {
    virtual ~Sized() {}
    virtual size_t size() const { return 0; }
    virtual size_t cap() const { return 1; }
    long bytes = 16;
};

struct Both : Named, Sized {
    const char *name() const override { return "both"; }
    size_t size() const override { return 42; }
    char payload[40];
};

// a vtable pointer first, then a pointer to a string: a pointer to that second word is no base's
struct Labelled {
    virtual ~Labelled() {}
    virtual const char *label() const { return text; }
    const char *text = "a label, not a vtable";
};

struct Holder {
    Sized *part;
};

static Sized *g_kept;
static Sized *g_registry[3];
static Holder *g_holder;
static const char *const *g_label;

int main()
{
    heapspec_test_begin("kept_by_second_base");
    g_kept = new Both; // 72 bytes: reachable
    heapspec_test_end("kept_by_second_base");

    heapspec_test_begin("registry");
    for (int i = 0; i < 3; i++) g_registry[i] = new Both; // 216 bytes: reachable
    heapspec_test_end("registry");

    heapspec_test_begin("held_by_a_block");
    g_holder = static_cast<Holder *>(std::malloc(sizeof(Holder))); // 8 bytes: reachable
    g_holder->part = new Both;                                     // 72 bytes: reachable through it
    heapspec_test_end("held_by_a_block");

    heapspec_test_begin("truly_lost");
    Sized *lost = new Both; // 72 bytes: definitely lost
    std::printf("size %zu\n", lost->size());
    lost = nullptr;
    heapspec_test_end("truly_lost");

    heapspec_test_begin("not_a_base");
    Labelled *labelled = new Labelled; // 16 bytes: possibly lost (its second word points at a string)
    g_label = &labelled->text;
    labelled = nullptr;
    heapspec_test_end("not_a_base");

    std::printf("%s %zu %s\n", static_cast<Both *>(g_kept)->name(), g_holder->part->size(), *g_label);
    return 0;
}
