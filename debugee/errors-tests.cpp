/*
 * errors-tests.cpp - memory errors inside test cases (heapspec.h markers), for the
 * "did this test case corrupt memory?" checks on the Valgrind backend.
 *
 * In this order:
 *   - outside any test case: a byte read just after a 4-byte strdup'd block (InvalidRead)
 *   - "mismatched": free() of a block from new[] (MismatchedFree)
 *   - "double_free": delete of an object already deleted (InvalidFree)
 *   - "read_past_end": an int read 8 bytes after a 32-byte block (InvalidRead)
 *   - "write_past_end": one byte written just after a 10-byte new[] block (InvalidWrite)
 *   - "use_after_free": an int read inside a freed 24-byte block (InvalidRead)
 *   - "uninitialised": a branch on a value never written (UninitCondition)
 *   - "overlap": strcpy between overlapping ranges (Overlap)
 *   - "thread_write": a second thread writes past a 12-byte block (InvalidWrite)
 *   - "clean": allocates and frees, no error
 *   - "repeat_1", "repeat_2": the same bad read from the same call site in both (memcheck
 *     shows it once, when repeat_1 makes it, and counts the second occurrence)
 * Every block is freed and nothing leaks. Exit code 0: memcheck's free ignores the bad frees.
 * Output goes through write(2), so stdio allocates no buffer.
 *
 * For memcheck only: run natively, glibc detects the double free and aborts.
 */
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <unistd.h>
#include "heapspec.h"

static volatile int sink;

struct TestCase {
    const char *name;
    void (*run)(void);
};

__attribute__((noinline)) static void read_before_tests(void)
{
    char *copy = strdup("abc");
    sink = copy[4];
    free(copy);
}

__attribute__((noinline)) static void mismatched_free(void)
{
    int *numbers = new int[4]();
    free(numbers);
}

__attribute__((noinline)) static void double_free(void)
{
    TestCase *twice = new TestCase{"twice", nullptr};
    delete twice;
    delete twice;
}

__attribute__((noinline)) static void read_past_end(void)
{
    int *p = static_cast<int *>(calloc(8, sizeof(int)));
    sink = p[10];
    free(p);
}

__attribute__((noinline)) static void write_past_end(void)
{
    char *text = new char[10];
    text[10] = 'x';
    delete[] text;
}

__attribute__((noinline)) static void use_after_free(void)
{
    int *p = static_cast<int *>(calloc(6, sizeof(int)));
    free(p);
    sink = p[1];
}

__attribute__((noinline)) static void uninitialised_branch(void)
{
    long *unset = new long;
    if (*unset == 7)
        sink = 1;
    delete unset;
}

__attribute__((noinline)) static void overlapping_copy(void)
{
    static char line[32] = "abcdefgh";
    strcpy(line, line + 1);
}

static void *write_on_thread(void *)
{
    char *p = static_cast<char *>(malloc(12));
    p[12] = 'y';
    free(p);
    return nullptr;
}

__attribute__((noinline)) static void thread_write(void)
{
    pthread_t thread;
    if (pthread_create(&thread, nullptr, write_on_thread, nullptr) == 0)
        pthread_join(thread, nullptr);
}

__attribute__((noinline)) static void clean(void)
{
    free(malloc(40));
}

__attribute__((noinline)) static void repeated_read(void)
{
    char *p = static_cast<char *>(malloc(8));
    memset(p, 0, 8);
    sink = p[8];
    free(p);
}

static const TestCase TESTS[] = {
    {"mismatched", mismatched_free},   {"double_free", double_free},     {"read_past_end", read_past_end},
    {"write_past_end", write_past_end}, {"use_after_free", use_after_free}, {"uninitialised", uninitialised_branch},
    {"overlap", overlapping_copy},     {"thread_write", thread_write},   {"clean", clean},
    {"repeat_1", repeated_read},       {"repeat_2", repeated_read},
};

int main(void)
{
    read_before_tests();
    for (const TestCase &test : TESTS) {
        heapspec_test_begin(test.name);
        test.run();
        heapspec_test_end(test.name);
    }
    if (write(1, "errors-tests: done\n", 19) != 19 || write(2, "errors-tests: stderr\n", 21) != 21)
        return 1;
    return 0;
}
