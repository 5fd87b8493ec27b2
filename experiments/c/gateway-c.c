/* gateway-c: calls between functions in C, as a WASI command. It passes
 * its input (the args JSON, on stdin) to `authentication`; when that
 * answers with status 200 it passes the same input to `hello` and prints
 * hello's output, else it prints authentication's answer. Deployed with
 * "wasi_cap": true and "calls": ["authentication", "hello"].
 *
 * The two host functions come from the engine's module `wasm_engine`
 * (docs/abi.md, "Calls between functions"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasm_engine"), import_name("call")))
int64_t wasm_engine_call(const char *name, size_t name_len, const char *input, size_t input_len);

__attribute__((import_module("wasm_engine"), import_name("result")))
int64_t wasm_engine_result(int64_t handle, char *out, size_t out_cap);

/* Calls `name` with `input`: its output (NUL-terminated, malloc'd), or
 * NULL with the engine's negative code in *code. */
static char *call(const char *name, const char *input, size_t input_len, int64_t *code) {
    int64_t handle = wasm_engine_call(name, strlen(name), input, input_len);
    if (handle < 0) {
        *code = handle;
        return NULL;
    }
    /* A capacity of 0 asks for the size (an empty output is read at once). */
    int64_t size = wasm_engine_result(handle, NULL, 0);
    if (size < 0) {
        *code = size;
        return NULL;
    }
    char *output = malloc((size_t)size + 1);
    if (output == NULL) {
        *code = 0;
        return NULL;
    }
    if (size > 0) {
        int64_t written = wasm_engine_result(handle, output, (size_t)size);
        if (written < 0) {
            *code = written;
            free(output);
            return NULL;
        }
    }
    output[size] = '\0';
    return output;
}

int main(void) {
    static char input[65536];
    size_t len = fread(input, 1, sizeof input - 1, stdin);
    int64_t code = 0;
    char *verdict = call("authentication", input, len, &code);
    if (verdict == NULL) {
        fprintf(stderr, "gateway-c: authentication failed with code %lld\n", (long long)code);
        return 1;
    }
    if (strncmp(verdict, "{\"status\":\"200\"", 15) != 0) {
        fputs(verdict, stdout);
        return 0;
    }
    char *greeting = call("hello", input, len, &code);
    if (greeting == NULL) {
        fprintf(stderr, "gateway-c: hello failed with code %lld\n", (long long)code);
        return 1;
    }
    fputs(greeting, stdout);
    return 0;
}
