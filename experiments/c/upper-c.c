/* upper-c: the string ABI in C. Built with clang's multi-value ABI
 * (-mmultivalue -Xclang -target-abi -Xclang experimental-mv) so that a
 * returned two-field struct becomes two wasm results:
 * upper-c(ptr, len) -> (ptr, len). Returns the input JSON upper-cased. */
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint8_t *ptr;
    uint32_t len;
} str_t;

__attribute__((export_name("upper-c")))
str_t upper(const uint8_t *input, uint32_t len) {
    uint8_t *out = malloc(len); /* leaked on purpose: the instance is discarded */
    for (uint32_t i = 0; i < len; i++)
        out[i] = (input[i] >= 'a' && input[i] <= 'z') ? input[i] - 32 : input[i];
    return (str_t){out, len};
}
