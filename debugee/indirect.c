/*
 * indirect.c - "indirectly lost" blocks: a dropped list and a dropped cycle.
 *
 * Exercises:
 *  - a singly linked list of 5 nodes (struct node, 32 bytes each) whose head
 *    pointer is dropped: the head is definitely lost (32 bytes), the 4 nodes
 *    after it are only reachable from the head, so they are indirectly lost
 *    (128 bytes in 4 blocks). memcheck prints the head's record as
 *    "160 (32 direct, 128 indirect) bytes in 1 blocks are definitely lost".
 *  - a 2-block cycle A <-> B (struct pair, 48 bytes each) that is dropped.
 *    Neither block is referenced from outside, so memcheck picks the first
 *    one it visits (lowest address: A, allocated first) as the clique leader
 *    -> A definitely lost (48), B indirectly lost (48).
 *  - one 32-byte node that is allocated and freed.
 * Hand count: 8 allocs (6 nodes + 2 pairs), 1 free, 6 * 32 + 2 * 48 = 288
 * bytes allocated; in use at exit 5 * 32 + 2 * 48 = 256 bytes in 7 blocks;
 * definite 32 + 48 = 80 bytes in 2 blocks, indirect 128 + 48 = 176 bytes in
 * 5 blocks.
 *
 * Expected memcheck figures:
 *   total heap usage: 8 allocs, 1 frees, 288 bytes allocated
 *   in use at exit:   256 bytes in 7 blocks
 *   definitely lost:  80 bytes in 2 blocks
 *   indirectly lost:  176 bytes in 5 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     indirect 48 bytes in 1 blocks at new_pair (indirect.c:65)
 *     definite 48 bytes in 1 blocks (+48 indirect) at new_pair (indirect.c:65)
 *     indirect 128 bytes in 4 blocks at new_node (indirect.c:49)
 *     definite 32 bytes in 1 blocks (+128 indirect) at new_node (indirect.c:49)
 */
#include <stdlib.h>
#include <string.h>

struct node {                /* 8 + 24 = 32 bytes */
    struct node *next;
    char payload[24];
};

struct pair {                /* 8 + 40 = 48 bytes */
    struct pair *other;
    char payload[40];
};

__attribute__((noinline)) static struct node *new_node(struct node *next)
{
    struct node *n = malloc(sizeof *n);
    n->next = next;
    memset(n->payload, 'n', sizeof n->payload);
    return n;
}

__attribute__((noinline)) static struct node *build_list(int len)
{
    struct node *tail = NULL;
    for (int i = 1; i < len; i++)
        tail = new_node(tail);       /* the nodes behind the head: indirect */
    return new_node(tail);           /* the head: definite */
}

__attribute__((noinline)) static struct pair *new_pair(void)
{
    struct pair *p = malloc(sizeof *p);
    p->other = NULL;
    memset(p->payload, 'p', sizeof p->payload);
    return p;
}

__attribute__((noinline)) static void make_cycle(void)
{
    struct pair *a = new_pair();     /* A: definite (clique leader) */
    struct pair *b = new_pair();     /* B: indirect */
    a->other = b;
    b->other = a;
}

int main(void)
{
    struct node *volatile head;

    free(new_node(NULL));            /* allocated and freed: not a leak */

    head = build_list(5);
    head = NULL;                     /* drop the only pointer to the list */

    make_cycle();                    /* a and b go out of scope */
    return 0;
}
