#!/usr/bin/env bash
# build-demo-apps.sh: builds only the two example functions the README's
# walkthrough deploys (authentication and hello), for `make demo` and
# `make demo-apps`; `make apps` (experiments/build-apps.sh) builds every
# example and the third-party programs the tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
for app in "authentication wasm32-unknown-unknown" "hello wasm32-wasip1"; do
  read -r name target <<<"$app"
  if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
    rustup target list --installed | grep -qx "$target" || {
      echo "build-demo-apps: cannot install the Rust target $target" >&2
      exit 1
    }
  fi
  (cd "experiments/application/$name" && cargo build --quiet --release --target "$target" </dev/null)
  wasm="experiments/application/$name/target/$target/release/$name.wasm"
  printf '%-16s %8d bytes  %s\n' "$name" "$(stat -c %s "$wasm")" "$wasm"
done
