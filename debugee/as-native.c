/* A program whose every observable behaviour can be compared with its native run: what it reads
 * on stdin, writes on stdout and stderr, its argv and environment, its exit, and the processes it
 * leaves. The test suite runs it natively and under each backend (test/e2e/as-native.test.ts).
 *
 *   as-native echo ARGS...      stdin to stdout, then argv (argv[0] included), a line on stderr; exit 3
 *   as-native env               the environment, one variable a line
 *   as-native flood OUT ERR     OUT bytes on stdout, ERR bytes on stderr
 *   as-native assert            a failing assert(): its message, then SIGABRT
 *   as-native fork PIDFILE      a child that sleeps; the parent exits 0 without waiting
 *   as-native setsid PIDFILE    the same, the child in a session of its own
 *   as-native hang PIDFILE      a child that sleeps, and the parent sleeps too
 *
 * PIDFILE gets "PARENT CHILD\n" once both exist, for the test to check that neither outlives the run.
 * Every mode leaks one 100-byte block, so every report has something in it.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void *kept;

static void write_all(int fd, size_t n) {
  static char chunk[65536];
  memset(chunk, 'x', sizeof chunk);
  while (n > 0) {
    size_t len = n < sizeof chunk ? n : sizeof chunk;
    ssize_t w = write(fd, chunk, len);
    if (w <= 0) exit(4);
    n -= (size_t)w;
  }
}

static pid_t spawn_sleeper(const char *pidfile, int new_session) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    if (new_session) setsid();
    close(ready[1]);
    for (;;) sleep(1000);
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  close(ready[0]);
  FILE *f = fopen(pidfile, "w");
  fprintf(f, "%d %d\n", (int)getpid(), (int)child);
  fclose(f);
  return child;
}

int main(int argc, char **argv) {
  kept = malloc(100);
  kept = NULL; /* lost: definitely */
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "echo") == 0) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    fprintf(stderr, "as-native: a line on stderr\n");
    return 3;
  }
  if (strcmp(mode, "env") == 0) {
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    return 0;
  }
  if (strcmp(mode, "flood") == 0 && argc == 4) {
    write_all(1, strtoull(argv[2], NULL, 10));
    write_all(2, strtoull(argv[3], NULL, 10));
    return 0;
  }
  if (strcmp(mode, "assert") == 0) {
    assert(argc == 0 && "as-native asserts");
    return 0;
  }
  if ((strcmp(mode, "fork") == 0 || strcmp(mode, "setsid") == 0) && argc == 3) {
    spawn_sleeper(argv[2], mode[0] == 's');
    return 0;
  }
  if (strcmp(mode, "hang") == 0 && argc == 3) {
    spawn_sleeper(argv[2], 0);
    for (;;) sleep(1000);
  }
  fprintf(stderr, "usage: as-native echo|env|flood OUT ERR|assert|fork PIDFILE|setsid PIDFILE|hang PIDFILE\n");
  return 2;
}
