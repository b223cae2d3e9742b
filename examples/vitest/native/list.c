/*
 * list.c - a small linked list of strings and its native test cases.
 *
 * Each test case is bracketed by heapspec.h's markers, so heapspec attributes every allocation to
 * the test case that made it. Run with --leak to switch on the bug the JavaScript tests catch:
 * test_drop_list forgets to free its list.
 */
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

struct item {
    struct item *next;
    char *text;
};

static int forget_to_free;

static struct item *push(struct item *head, const char *text)
{
    struct item *item = malloc(sizeof *item);
    item->text = strdup(text);
    item->next = head;
    return item;
}

static void free_list(struct item *head)
{
    while (head) {
        struct item *next = head->next;
        free(head->text);
        free(head);
        head = next;
    }
}

static void test_empty(void)
{
    free_list(NULL);
}

static void test_push_three(void)
{
    free_list(push(push(push(NULL, "a"), "b"), "c"));
}

static void test_drop_list(void)
{
    struct item *volatile list = push(push(NULL, "first"), "second");
    if (!forget_to_free)
        free_list(list);
    list = NULL;
}

#define RUN(test)                   \
    do {                            \
        heapspec_test_begin(#test); \
        test();                     \
        heapspec_test_end(#test);   \
    } while (0)

int main(int argc, char **argv)
{
    forget_to_free = argc > 1 && strcmp(argv[1], "--leak") == 0;
    RUN(test_empty);
    RUN(test_push_three);
    RUN(test_drop_list);
    return 0;
}
