/* tests-overloads-b.cpp - the other half of tests-overloads (see tests-overloads.cpp), and a test
 * function returning std::string, whose symbol carries an ABI tag (test_tagged[abi:cxx11]()). */
#include <cstdlib>
#include <string>

static void *volatile sink_b;

void test_ov(const char *) { sink_b = malloc(30); sink_b = nullptr; }

std::string test_tagged()
{
    sink_b = malloc(40);
    sink_b = nullptr;
    return "tagged";
}

void run_b()
{
    test_ov("b");
    if (test_tagged() != "tagged") abort();
}
