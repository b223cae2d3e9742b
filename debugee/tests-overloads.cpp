/*
 * tests-overloads.cpp - a --tests name that is overloaded, in two files (this one and
 * tests-overloads-b.cpp): test_ov(int) loses 10 bytes, test_ov(double) 20, and
 * tests-overloads-b.cpp's test_ov(const char *) 30. Each overload is a test case of its own, as
 * gdb and memcheck see three functions. tests-overloads-b.cpp's test_tagged returns a std::string:
 * its name carries an ABI tag (test_tagged[abi:cxx11]), and it loses 40 bytes.
 * Run with --tests '^test_'. Not listed in expected.json.
 */
#include <cstdlib>

static void *volatile sink;

void test_ov(int) { sink = malloc(10); sink = nullptr; }
void test_ov(double) { sink = malloc(20); sink = nullptr; }
void run_b();

int main()
{
    test_ov(1);
    test_ov(2.0);
    run_b();
    return 0;
}
