// C++ churn in 4 threads, the way a container-heavy library frees: each iteration news a vector
// and a char array and deletes them (through operator delete and delete[], which jump to free),
// about 530 KB freed in all, so blocks go in and out of heapspec's freed-blocks queue on every
// thread; each thread then leaks one std::string (a 32-byte object and its 41-byte buffer).
// memcheck: 4 x 32 bytes definitely lost, 4 x 41 indirectly.
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

int main()
{
    std::vector<std::thread> threads;
    std::vector<size_t> sums(4);
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([t, &sums] {
            for (int i = 0; i < 300; i++) {
                auto *v = new std::vector<int>(50 + i % 7, t);
                auto *a = new char[300];
                a[0] = 1;
                sums[t] += v->size() + a[0];
                delete[] a;
                delete v;
            }
            new std::string(40, 'q'); // leaked
        });
    }
    for (auto &t : threads) t.join();
    std::printf("%zu\n", sums[0] + sums[1] + sums[2] + sums[3]);
    return 0;
}
