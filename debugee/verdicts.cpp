/*
 * verdicts.cpp - the C++ side of verdicts.c: heapspec::TestCaseScope in main around
 * `Node *head = new Node{...}` (lost by exit: definite 16 in 1, indirect 16 in 1), and a
 * std::thread started and joined that frees everything (no leak of any kind).
 */
#include <cstring>
#include <thread>
#include "heapspec.h"

struct Node {
    Node *next;
    long value;
};

static void work()
{
    char *p = new char[24];
    std::memset(p, 0, 24);
    delete[] p;
}

int main()
{
    Node *head = nullptr;
    {
        heapspec::TestCaseScope scope("scope_list");
        head = new Node{new Node{nullptr, 2}, 1};
    }
    {
        heapspec::TestCaseScope scope("thread_join");
        std::thread t(work);
        t.join();
    }
    head = nullptr;
    return head != nullptr;
}
