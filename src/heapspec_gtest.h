/*
 * heapspec_gtest.h - a GoogleTest event listener that makes every TEST a heapspec test case.
 *
 * heapspec recognises GoogleTest binaries by itself (GDB backend), so this header is optional:
 * use it when you prefer the test cases to come from markers in your own binary (every backend
 * honours them, and the markers win over recognition, so nothing is counted twice).
 *
 * Use: include it in ONE of your test files (including it in more is harmless):
 *
 *     #include "heapspec_gtest.h"     // build with -I"$(npx heapspec include)"
 *
 * That is all, with gtest_main or with your own main: a static object installs the listener
 * before main runs (GoogleTest allows listeners to be added before InitGoogleTest). If you
 * would rather install it yourself, define HEAPSPEC_GTEST_NO_AUTO_INSTALL before the include
 * and call `heapspec::InstallGTestListener();` in main. Installing twice installs it once.
 *
 * Each test case is named "Suite.Name" (GoogleTest's own test_suite_name() and name(), the
 * names --gtest_filter takes) and spans the test from the fixture's construction to its
 * destruction: SetUp, the body and TearDown included; other listeners' work is not.
 *
 * Header-only, C++11 or later, GoogleTest 1.10 or later (test_suite_name()).
 */
#ifndef HEAPSPEC_GTEST_H
#define HEAPSPEC_GTEST_H

#include <gtest/gtest.h>

#include <string>

#include "heapspec.h"

namespace heapspec {

/* Brackets every test GoogleTest runs with heapspec_test_begin / heapspec_test_end. */
class GTestListener : public ::testing::EmptyTestEventListener {
public:
    void OnTestStart(const ::testing::TestInfo &info) override
    {
        // The name is built here, before the test case begins, into a buffer kept for
        // OnTestEnd: building it again at the end would allocate inside the test case.
        name_.assign(info.test_suite_name()).append(1, '.').append(info.name());
        heapspec_test_begin(name_.c_str());
    }

    void OnTestEnd(const ::testing::TestInfo &) override { heapspec_test_end(name_.c_str()); }

private:
    std::string name_;
};

/* Appends a GTestListener to GoogleTest's listeners, once per process; returns true. */
inline bool InstallGTestListener()
{
    // A function-local static: one listener however many translation units ask, and safe
    // during static initialisation (UnitTest::GetInstance() is itself a function-local static).
    static const bool installed = [] {
        // GoogleTest owns (and deletes) the listeners it is given.
        ::testing::UnitTest::GetInstance()->listeners().Append(new GTestListener);
        return true;
    }();
    return installed;
}

} // namespace heapspec

#ifndef HEAPSPEC_GTEST_NO_AUTO_INSTALL
namespace {
/* Installs the listener before main, so gtest_main's main needs no change. */
const bool heapspec_gtest_listener_installed = ::heapspec::InstallGTestListener();
} // namespace
#endif

#endif /* HEAPSPEC_GTEST_H */
