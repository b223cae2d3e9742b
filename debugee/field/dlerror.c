/* A failed dlsym leaves its message pending until the program calls dlerror(). memcheck frees it at
 * exit through glibc's freeres: nothing lost. */
#include <dlfcn.h>
#include <stdio.h>

int main(void)
{
    void *f = dlsym(RTLD_DEFAULT, "no_such_function_anywhere");
    printf("%s\n", f ? "found" : "not found");
    return 0;
}
