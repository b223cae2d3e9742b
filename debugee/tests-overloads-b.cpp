/* tests-overloads-b.cpp - the other half of tests-overloads (see tests-overloads.cpp). */
#include <cstdlib>

static void *volatile sink_b;

void test_ov(const char *) { sink_b = malloc(30); sink_b = nullptr; }
void run_b() { test_ov("b"); }
