/*
 * heap_test.cpp - an ordinary GoogleTest suite, for heapspec's GoogleTest support.
 *
 * Nothing here knows about heapspec. Built twice against Debian's googletest (libgtest-dev),
 * both times with gtest_main:
 *   build/gtest-plain     as it is: heapspec recognises the tests by itself
 *   build/gtest-listener  plus with_listener.cpp, which includes heapspec_gtest.h: our
 *                         listener brackets each test
 *
 * Per test, what the test's own code allocates (GoogleTest adds its own; see
 * test/e2e/gtest.test.ts):
 *   Heap.Clean                    new int: 1 alloc of 4 bytes, freed
 *   Heap.LeaksNew                 new int[10]: 40 bytes, never deleted: definite
 *   Heap.VectorFreed              five push_backs: 4, 8, 16 and 32 bytes, all freed
 *   Buffer.SetUpFreedInTearDown   SetUp news 16 ints (64 bytes), TearDown deletes them
 *   LeakySetUp.LeaksInSetUp       SetUp news 48 bytes, TearDown forgets them: definite
 */
#include <gtest/gtest.h>

#include <vector>

TEST(Heap, Clean)
{
    int *p = new int(42);
    EXPECT_EQ(*p, 42);
    delete p;
}

TEST(Heap, LeaksNew)
{
    int *p = new int[10];
    p[0] = 7;
    EXPECT_EQ(p[0], 7);
}

TEST(Heap, VectorFreed)
{
    std::vector<int> v;
    for (int i = 0; i < 5; i++)
        v.push_back(i);
    EXPECT_EQ(v.size(), 5u);
}

class Buffer : public ::testing::Test {
protected:
    void SetUp() override { data_ = new int[16](); }
    void TearDown() override { delete[] data_; }
    int *data_ = nullptr;
};

TEST_F(Buffer, SetUpFreedInTearDown)
{
    data_[3] = 3;
    EXPECT_EQ(data_[3], 3);
}

class LeakySetUp : public ::testing::Test {
protected:
    void SetUp() override { scratch_ = new char[48](); }
    void TearDown() override { scratch_ = nullptr; }
    char *scratch_ = nullptr;
};

TEST_F(LeakySetUp, LeaksInSetUp)
{
    ASSERT_NE(scratch_, nullptr);
}
