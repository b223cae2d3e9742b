/* shelf: a shared library of its own that the entries addon calls; its blocks are the addon's. */
#include <stdlib.h>
#include "shelf.h"

struct shelf *shelf_make(size_t count)
{
    struct shelf *s = malloc(sizeof *s);
    s->count = count;
    s->items = calloc(count, sizeof *s->items);
    return s;
}

void shelf_free(struct shelf *s)
{
    free(s->items);
    free(s);
}
