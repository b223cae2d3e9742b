/* A parent that leaks nothing and a forked child: `leak`, the child loses 500 bytes and exits
 * (memcheck checks it at its end, under its own process id); `exec`, the child execs /bin/true. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int exec = argc > 1 && strcmp(argv[1], "exec") == 0;
    pid_t pid = fork();
    if (pid == 0) {
        if (exec) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        char *lost = malloc(500);
        memset(lost, 2, 500);
        lost = NULL;
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exited %d\n", WEXITSTATUS(status));
    return 0;
}
