#!/usr/bin/env bash
# cross/rss.sh [TARGET]: idle resident memory of the running engine, right
# after start and after deploying the example functions (a measurement, not a
# test). Without TARGET it measures the native release binary; with one, the
# cross binary under qemu-user (whose RSS includes qemu's own).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-}
if [[ -n $target ]]; then
  source cross/targets.sh
  binary=target/$target/release/wasm_engine
  runner=$qemu
else
  cargo build --release --quiet --bin wasm_engine
  binary=target/release/wasm_engine
  runner=""
fi
[[ -x $binary ]] || { echo "build $binary first (cross/build $target)" >&2; exit 1; }
work=$(mktemp -d /tmp/wasmengine-rss.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"

engine_port=$(free_port)
# shellcheck disable=SC2086
RUST_LOG=warn $runner "$binary" --listen "127.0.0.1:$engine_port" --data-dir "$work/data" &
engine_pid=$!
on_exit_kill "$engine_pid"
wait_for 60 "the engine" curl -fs "http://127.0.0.1:$engine_port/function/list"
# Settling, not ordering: RSS is read after the start has quietened.
sleep 1
echo "after start:                     $(rss_kb "$engine_pid") KiB"

app=experiments/application
count=0
while read -r name wasm_target _ wasi calls; do
  count=$((count + 1))
  target/release/wasm_engine push "$app/$name/target/$wasm_target/release/$name.wasm" "$registry/$name:v1" >/dev/null 2>&1 ||
    cargo run --release --quiet --bin wasm_engine -- push "$app/$name/target/$wasm_target/release/$name.wasm" "$registry/$name:v1" >/dev/null
  curl -fs -o /dev/null -X POST "http://127.0.0.1:$engine_port/function/deploy" \
    -d "{\"function_name\": \"$name\", \"function_image\": \"$registry/$name:v1\", \"wasi_cap\": $wasi${calls:+, \"calls\": [\"${calls//,/\", \"}\"]}}"
done < <(example_apps)
sleep 1
echo "after deploying the $count examples:  $(rss_kb "$engine_pid") KiB"
curl -fs -o /dev/null -X POST "http://127.0.0.1:$engine_port/function/invoke" \
  -d '{"function_name": "authentication-wasi", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
echo "after one invoke (WASI):         $(rss_kb "$engine_pid") KiB"
