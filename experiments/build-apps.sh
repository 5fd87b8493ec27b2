#!/usr/bin/env bash
# build-apps.sh: builds every example function under experiments/application
# and leaves each at application/<name>/target/<target>/release/<name>.wasm,
# printing its size. Used by `make apps`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

for target in wasm32-unknown-unknown wasm32-wasip1; do
  if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
    # rustup may print an error and still exit 0: check for real.
    rustup target list --installed | grep -qx "$target" || {
      echo "build-apps: cannot install the Rust target $target" >&2
      exit 1
    }
  fi
done

# C examples (clang + wasi-libc) land in experiments/c/build/.
"$here/c/build.sh"

# Third-party programs for the differential test (tests/thirdparty.rs), each
# for wasm32-wasip1 and natively, land in experiments/thirdparty/build/.
"$here/thirdparty/build.sh"

source "$here/../scripts/lib.sh"
# The list in experiments/apps.txt: name target abi wasi_cap [calls].
while read -r name target abi _; do
  dir="$here/application/$name"
  (cd "$dir" && cargo build --quiet --release --target "$target" </dev/null)
  release="$dir/target/$target/release"
  case $abi in
    # A library is built as <name, with _ for ->.wasm.
    string | numeric) [[ $name == "${name//-/_}" ]] || cp "$release/${name//-/_}.wasm" "$release/$name.wasm" ;;
    wasi) ;; # a binary is already named <name>.wasm
  esac
  printf '%-22s %-24s %-8s %8d bytes  %s\n' "$name" "$target" "$abi" \
    "$(stat -c %s "$release/$name.wasm")" "${release#"$here/"}/$name.wasm"
done < <(example_apps)

# Native builds of the examples that answer with bytes, which the tests
# (tests/binary_output.rs) compare with their wasm byte for byte; the C one,
# gzip-c, is built natively by c/build.sh. They land at
# application/<name>/target/native/release/<name>.
for name in thumbnail; do
  dir="$here/application/$name"
  (cd "$dir" && cargo build --quiet --release --target-dir target/native </dev/null)
  printf '%-22s %-24s %-8s %8d bytes  %s\n' "$name (native)" "$(rustc -vV | sed -n 's/^host: //p')" "native" \
    "$(stat -c %s "$dir/target/native/release/$name")" "application/$name/target/native/release/$name"
done

# Stock builds: the same sources with the toolchain's default linker settings
# (Rust's 1 MiB shadow stack, so 17 initial pages instead of 2), as most
# modules users bring are built. Empty RUSTFLAGS overrides the 64 KiB stack of
# application/.cargo/config.toml. They land at
# application/<name>/target/stock/<target>/release/<name>.wasm.
stock=(
  "authentication wasm32-unknown-unknown string"
  "authentication-wasi wasm32-wasip1 wasi"
)
for app in "${stock[@]}"; do
  read -r name target abi <<<"$app"
  dir="$here/application/$name"
  (cd "$dir" && RUSTFLAGS="" cargo build --quiet --release --target "$target" --target-dir target/stock)
  release="$dir/target/stock/$target/release"
  case $abi in
    string | wasi) ;; # names without '-': already <name>.wasm
  esac
  printf '%-22s %-24s %-8s %8d bytes  %s\n' "$name (stock)" "$target" "$abi" \
    "$(stat -c %s "$release/$name.wasm")" "${release#"$here/"}/$name.wasm"
done
