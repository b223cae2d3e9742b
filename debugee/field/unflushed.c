/* Output still in stdio's buffers when the program ends without flushing them: `_exit`, `_Exit`
 * and `quick_exit` leave it unwritten (stdout is fully buffered on a pipe or a file), `exit`
 * flushes it. 10 bytes are lost either way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "exit";
    char *volatile lost = malloc(10);
    memset(lost, 1, 10);
    lost = NULL;
    printf("buffered before %s\n", how);
    FILE *log = fopen("/dev/null", "w");
    fprintf(log, "a stream of its own, never flushed\n");
    fputs("unbuffered stderr\n", stderr);
    if (strcmp(how, "_exit") == 0) _exit(3);
    if (strcmp(how, "_Exit") == 0) _Exit(4);
    if (strcmp(how, "quick_exit") == 0) quick_exit(5);
    exit(6);
}
