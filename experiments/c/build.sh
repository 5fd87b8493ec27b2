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

# gzip-c answers with bytes, built with zlib's C sources from the libz-sys
# crate (cargo fetches and unpacks it, checked against zlib-source/Cargo.lock)
# for wasm32-wasi and natively (build/gzip-c), which the tests compare.
manifest=$(cargo metadata --quiet --locked --format-version 1 --manifest-path zlib-source/Cargo.toml |
  grep -o '"manifest_path":"[^"]*/libz-sys-[^"]*/Cargo.toml"' |
  sed 's/^"manifest_path":"//; s/"$//') || { echo "c/build.sh: cannot fetch the libz-sys crate" >&2; exit 1; }
zlib=$(dirname "$manifest")/src/zlib
zlib_sources=("$zlib"/{adler32,crc32,deflate,trees,zutil}.c)
stamp="$zlib $(stat -c %Y gzip-c.c)"
if [[ ! -f build/gzip-c.version || $(<build/gzip-c.version) != "$stamp" ]]; then
  clang "${common[@]}" -w -I"$zlib" gzip-c.c "${zlib_sources[@]}" -o build/gzip-c.wasm
  clang -O2 -w -I"$zlib" gzip-c.c "${zlib_sources[@]}" -o build/gzip-c
  echo "$stamp" >build/gzip-c.version
fi
for f in build/*.wasm; do printf '%-24s %8d bytes\n' "$f" "$(stat -c %s "$f")"; done
