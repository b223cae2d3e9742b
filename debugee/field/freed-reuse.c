/* Stale pointers to freed blocks, the way code keeps them: a cache's `last` entry, a list whose
 * removed node is still linked from its neighbour. glibc hands a freed chunk of the same size out
 * again at the next malloc, so each block allocated next sits where the stale pointer points;
 * memcheck holds freed blocks back (its freed-blocks queue), so the new blocks, dropped, are
 * definitely lost: 32 + 24 bytes in 2 blocks. The head stays reachable (24 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char name[16];
};

static struct {
    char *last; /* the last entry looked up, never cleared */
} cache;
static struct node *head;

int main(void)
{
    char *entry = malloc(32);
    strcpy(entry, "entry");
    cache.last = entry;
    free(entry); /* cache.last dangles */
    char *fresh = malloc(32);
    strcpy(fresh, "fresh");
    fresh = NULL; /* lost */

    head = malloc(sizeof *head);
    head->next = malloc(sizeof *head);
    head->next->next = NULL;
    free(head->next); /* removed, but head->next still points there */
    struct node *other = malloc(sizeof *other);
    memset(other, 0, sizeof *other);
    other = NULL; /* lost */

    /* a block bigger than anything held is freed at once, and comes back: nothing lost */
    char *big = malloc(2000000);
    free(big);
    big = malloc(2000000);
    free(big);
    puts("done");
    return 0;
}
