/* hello-c: a WASI command in C. argv[0] is the arguments as JSON. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from C! args: %s\n", argc > 0 ? argv[0] : "{}");
    return 0;
}
