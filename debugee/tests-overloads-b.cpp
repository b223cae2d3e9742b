/* tests-overloads-b.cpp - the other half of tests-overloads (see tests-overloads.cpp): a test
 * function returning std::string, whose symbol carries an ABI tag (test_tagged[abi:cxx11]()), and
 * one in an anonymous namespace ((anonymous namespace)::test_hidden, losing 50 bytes). */
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

namespace {
void test_hidden() { sink_b = malloc(50); sink_b = nullptr; }
}

void run_b()
{
    test_ov("b");
    if (test_tagged() != "tagged") abort();
    test_hidden();
}
