/* The same tests with heapspec's GoogleTest listener: including the header installs it. */
#include "heapspec_gtest.h"
