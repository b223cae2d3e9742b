/* Deep stacks: TREES times (argument 1, default 20,000) a tree of depth 30 is built recursively,
 * each node growing its array of 4 children with realloc (one child a subtree, three leaves),
 * then freed. The last tree is lost: its root definitely, its other 30 nodes, 30 arrays of 32
 * bytes and 90 leaves indirectly.
 * Figures: definitely lost 16 bytes in 1 block; indirectly lost 2,880 bytes in 150 blocks.
 * Usage: deep-realloc [TREES] */
#include <stdint.h>
#include <stdlib.h>

#define DEPTH 30

struct node {
    struct node **kids;
    long n;
};

static uintptr_t hidden;

__attribute__((noinline)) static struct node *leaf(void) { return calloc(1, sizeof(struct node)); }

__attribute__((noinline)) static struct node *build(int depth)
{
    struct node *node = leaf();
    if (depth == DEPTH) return node;
    for (long k = 0; k < 4; k++) {
        node->kids = realloc(node->kids, (size_t)(k + 1) * sizeof *node->kids);
        node->kids[k] = k == 0 ? build(depth + 1) : leaf();
        node->n = k + 1;
    }
    return node;
}

__attribute__((noinline)) static void drop(struct node *node)
{
    for (long k = 0; k < node->n; k++) drop(node->kids[k]);
    free(node->kids);
    free(node);
}

int main(int argc, char **argv)
{
    long trees = argc > 1 ? atol(argv[1]) : 20000;
    for (long i = 1; i < trees; i++) drop(build(0));
    hidden = (uintptr_t)build(0) ^ 0x5a5a5a5a5a5a5a5aull;
    return 0;
}
