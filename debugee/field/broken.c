/* Ways a program can end that an observer may not see: `broken raw-exit` (exit_group system call,
 * no exit()), `broken exec` (becomes /bin/true), `broken raw-exec` (the same by an execve
 * system call, with an environment of its own, so no LD_PRELOAD reaches /bin/true), `broken close-all` (closes every descriptor from 3
 * up, then exits normally), `broken kill` (SIGKILL to itself). Each first leaks 333 and 444 bytes. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "";
    char *a = malloc(333), *b = malloc(444);
    memset(a, 1, 333);
    memset(b, 2, 444);
    a = b = NULL;
    if (strcmp(how, "raw-exit") == 0) syscall(SYS_exit_group, 0);
    if (strcmp(how, "exec") == 0) execl("/bin/true", "true", (char *)NULL);
    if (strcmp(how, "raw-exec") == 0) {
        char *args[] = {"true", NULL}, *env[] = {"PATH=/usr/bin:/bin", NULL};
        syscall(SYS_execve, "/bin/true", args, env);
    }
    if (strcmp(how, "close-all") == 0) {
        for (int fd = 3; fd < 65536; fd++) close(fd);
        char *c = malloc(555); /* after the descriptors went */
        memset(c, 3, 555);
        c = NULL;
    }
    if (strcmp(how, "kill") == 0) kill(getpid(), SIGKILL);
    return 0;
}
