/* shelf: a small shared library that the entries addon calls (an addon over a library). */
#ifndef SHELF_H
#define SHELF_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
struct shelf {
    size_t count;
    int *items;
};
/* A shelf of `count` items (two blocks: the shelf, 16 bytes, and its items, 4 * count bytes). */
struct shelf *shelf_make(size_t count);
void shelf_free(struct shelf *s);
#ifdef __cplusplus
}
#endif
#endif
