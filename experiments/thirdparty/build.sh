#!/usr/bin/env bash
# build.sh: builds the third-party programs of the differential test
# (tests/thirdparty.rs), each twice, for wasm32-wasip1 and for this machine,
# into experiments/thirdparty/build/:
#
#   build/<name>.wasm    the WASI command the test deploys
#   build/<name>         the native build of the same source and version
#   build/<name>.version what the two were built from; a program whose stamp
#                        matches the table below is not built again
#
# Rust programs come from crates.io with `cargo install --locked` at pinned
# versions; the C program is Hoedown's `hoedown` command from the C source
# bundled in the `hoedown` crate (pinned in hoedown-source/Cargo.lock),
# compiled with clang + wasi-libc and natively with clang. Used by
# `make apps` (through experiments/build-apps.sh); fails if any program
# cannot be built. Needs the wasm32-wasip1 Rust target and Debian's clang,
# lld, wasi-libc and libclang-rt-14-dev-wasm32 (`make deps`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/build
mkdir -p "$out"
fail() { echo "thirdparty/build.sh: $*" >&2; exit 1; }

# name version `cargo install` options (beyond --locked --version)
rust_programs=(
  "pulldown-cmark 0.13.6"
  "jsonxf 1.1.1"
  "htmlq 0.4.0"
)
# Not b3sum: it builds for wasm32-wasip1 but always starts a rayon thread
# pool, and WASI preview 1 has no threads ("Not supported (os error 58)").
hoedown_version=6.0.0

# Dependencies (and the build scripts and proc macros both targets share)
# are compiled once here; the installed binaries are copied out of the roots.
export CARGO_TARGET_DIR=$out/target

up_to_date() { # name stamp
  [[ -f $out/$1.wasm && -x $out/$1 && -f $out/$1.version && $(<"$out/$1.version") == "$2" ]]
}

for program in "${rust_programs[@]}"; do
  read -r name version options <<<"$program"
  stamp="crates.io $name $version $options"
  up_to_date "$name" "$stamp" && continue
  echo "thirdparty: building $name $version for wasm32-wasip1 and natively" >&2
  rm -f "$out/$name.version"
  # shellcheck disable=SC2086 # options is a word list
  cargo install --quiet --locked --force --version "$version" $options \
    --target wasm32-wasip1 --root "$out/wasm-root" "$name" ||
    fail "cannot build $name $version for wasm32-wasip1"
  # shellcheck disable=SC2086
  cargo install --quiet --locked --force --version "$version" $options \
    --root "$out/native-root" "$name" ||
    fail "cannot build $name $version natively"
  cp "$out/wasm-root/bin/$name.wasm" "$out/$name.wasm"
  cp "$out/native-root/bin/$name" "$out/$name"
  echo "$stamp" >"$out/$name.version"
done

# Hoedown: cargo fetches and unpacks the crate (checksum from Cargo.lock).
stamp="crates.io hoedown $hoedown_version libhoedown/bin/hoedown.c"
if ! up_to_date hoedown "$stamp"; then
  echo "thirdparty: building hoedown $hoedown_version (C) with wasi-libc and natively" >&2
  rm -f "$out/hoedown.version"
  manifest=$(cargo metadata --quiet --locked --format-version 1 \
    --manifest-path "$here/hoedown-source/Cargo.toml" |
    grep -o "\"manifest_path\":\"[^\"]*/hoedown-$hoedown_version/Cargo.toml\"" |
    sed 's/^"manifest_path":"//; s/"$//') || fail "cannot fetch the hoedown $hoedown_version crate"
  source=$(dirname "$manifest")/libhoedown
  [[ -f $source/bin/hoedown.c ]] || fail "$source/bin/hoedown.c is missing"
  sources=("$source/bin/hoedown.c" "$source"/src/*.c)
  # hoedown.c calls clock() for its --time option; WASI has no process clock,
  # so wasi-libc's emulation (the wall clock) stands in.
  clang --target=wasm32-wasi -O2 -w -D_WASI_EMULATED_PROCESS_CLOCKS -I"$source/src" \
    -Wl,-z,stack-size=65536 -Wl,--strip-all "${sources[@]}" -lwasi-emulated-process-clocks \
    -o "$out/hoedown.wasm" || fail "cannot build hoedown with clang and wasi-libc"
  clang -O2 -w -I"$source/src" "${sources[@]}" -o "$out/hoedown" ||
    fail "cannot build hoedown natively"
  echo "$stamp" >"$out/hoedown.version"
fi

for program in "${rust_programs[@]}" "hoedown $hoedown_version"; do
  read -r name version _ <<<"$program"
  printf '%-22s %-8s wasm %8d bytes, native %8d bytes  %s\n' "$name" "$version" \
    "$(stat -c %s "$out/$name.wasm")" "$(stat -c %s "$out/$name")" \
    "${out#"$here/"}/$name.wasm"
done
