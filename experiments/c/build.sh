#!/usr/bin/env bash
# build.sh: builds the C examples with clang and wasi-libc (Debian packages
# clang, lld, wasi-libc, libclang-rt-14-dev-wasm32) into experiments/c/build/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p build
common=(--target=wasm32-wasi -O2 -Wl,-z,stack-size=65536 -Wl,--strip-all)
clang "${common[@]}" hello-c.c -o build/hello-c.wasm
# Imports wasm_engine::call and ::result (calls between functions).
clang "${common[@]}" gateway-c.c -o build/gateway-c.wasm
clang "${common[@]}" -mexec-model=reactor -mmultivalue -Xclang -target-abi -Xclang experimental-mv \
  upper-c.c -o build/upper-c.wasm
for f in build/*.wasm; do printf '%-24s %8d bytes\n' "$f" "$(stat -c %s "$f")"; done
