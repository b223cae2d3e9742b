/*
 * tests-overloads.cpp - a --tests name that is overloaded, in two files (this one and
 * tests-overloads-b.cpp): test_ov(int) loses 10 bytes, test_ov(double) 20, and
 * tests-overloads-b.cpp's test_ov(const char *) 30. Each overload is a test case of its own, as
 * gdb and memcheck see three functions. tests-overloads-b.cpp's test_tagged returns a std::string:
 * its name carries an ABI tag (test_tagged[abi:cxx11]), and it loses 40 bytes. The function
 * template test_tpl, whose demangled names start with their return type (void test_tpl<int>()),
 * loses 20 bytes as test_tpl<int> and 40 as test_tpl<double>.
 * Run with --tests '(^|::)test_'. Not listed in expected.json.
 */
#include <cstdlib>

static void *volatile sink;

void test_ov(int) { sink = malloc(10); sink = nullptr; }
void test_ov(double) { sink = malloc(20); sink = nullptr; }
template <class T> void test_tpl() { sink = malloc(sizeof(T) * 5); sink = nullptr; }
void run_b();

int main()
{
    test_ov(1);
    test_ov(2.0);
    run_b();
    test_tpl<int>();
    test_tpl<double>();
    return 0;
}
