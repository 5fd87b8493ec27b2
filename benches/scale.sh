#!/usr/bin/env bash
# scale.sh: what grows with the number of deployed functions (a benchmark,
# not a test; docs/performance.md records its output).
#
# For each count in COUNTS (default "10 100 1000"), on a fresh data
# directory: deploys that many copies of the small `gcd` example (numeric
# ABI, 165 bytes) under their own names, then reports
#   - RSS of the engine idle, after the deploys (no call yet) and after one
#     call of each function, and the growth per function;
#   - list and query latency (median of 21 curl requests);
#   - invoke throughput of one function (wrk -t2 -c50, DURATION seconds);
#   - restart: SIGTERM, start again, time until /readyz answers 200, the
#     RSS then, and the first invoke's latency;
#   - the data directory's size.
#
# Then, as a single wrk run per count is at the mercy of the machine's
# neighbours, THROUGHPUT_ROUNDS (default 5) interleaved rounds of the invoke
# throughput with the smallest and the largest count deployed, both engines
# running side by side (idle while the other is measured).
#
# Environment: COUNTS, DURATION (default 5), THROUGHPUT_ROUNDS (0 skips
# them), ENGINE (the binary, default the release build), KEEP=1 (leave the
# work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

counts=${COUNTS:-10 100 1000}
duration=${DURATION:-5}
work=$(mktemp -d /tmp/wasmengine-scale.XXXXXX)
on_exit_remove "$work"
for tool in docker-registry curl wrk python3; do
  command -v "$tool" >/dev/null || { echo "scale.sh: $tool is missing (make load installs it)" >&2; exit 1; }
done

echo "== building (release engine, examples)"
[ -z "${ENGINE:-}" ] && cargo build --quiet --release
engine=${ENGINE:-target/release/wasm_engine}
gcd=experiments/application/gcd/target/wasm32-unknown-unknown/release/gcd.wasm
[ -f "$gcd" ] || experiments/build-apps.sh >/dev/null

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"

# One small module per function (a function's name must be its export's):
# `add_NNNNN(i32, i32) -> i32`, 60 bytes each, pushed as its own image.
max=$(echo "$counts" | tr ' ' '\n' | sort -n | tail -1)
echo "== pushing $max one-function images"
benches/push_add_modules.sh "$engine" "$registry" "$work/modules" "$max"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
median_ms() { # curl arguments...: median time_total of 21 requests, in ms
  for _ in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "$@"; done |
    sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[11] * 1000 }'
}
now_ns() { date +%s%N; }
start_engine() { # data_dir port
  RUST_LOG=off "$engine" --listen "127.0.0.1:$2" --data-dir "$1" >>"$work/engine.log" 2>&1 &
  engine_pid=$!
  on_exit_kill "$engine_pid"
}
post() { curl -s -o /dev/null -w '%{http_code}' -X POST "$url/function/$1" -d "$2"; }

printf '\n%9s %9s %12s %10s %9s %8s %8s %9s %10s %11s %10s %9s\n' \
  functions idle_KiB deployed_KiB called_KiB KiB/func list_ms query_ms invoke/s restart_ms restart_KiB first_ms data_KiB
for count in $counts; do
  data=$work/data-$count
  port=$(free_port)
  url=http://127.0.0.1:$port
  start_engine "$data" "$port"
  wait_for 30 "the engine" curl -fs "$url/readyz"
  idle=$(rss_kib "$engine_pid")
  for i in $(seq -f '%05g' "$count"); do
    status=$(post deploy "{\"function_name\": \"add_$i\", \"function_image\": \"$registry/add-$i:v1\"}")
    [ "$status" = 200 ] || { echo "deploy of add_$i answered $status" >&2; exit 1; }
  done
  deployed=$(rss_kib "$engine_pid")
  for i in $(seq -f '%05g' "$count"); do
    status=$(post invoke "{\"function_name\": \"add_$i\", \"args\": {\"a\": \"1\", \"b\": \"2\"}}")
    [ "$status" = 200 ] || { echo "invoke of add_$i answered $status" >&2; exit 1; }
  done
  called=$(rss_kib "$engine_pid")
  list_ms=$(median_ms "$url/function/list")
  query_ms=$(median_ms -X POST "$url/function/query" -d '{"function_name": "add_00001"}')
  body=$work/invoke.lua
  printf 'wrk.method = "POST"\nwrk.body = [[{"function_name": "add_00001", "args": {"a": "1", "b": "2"}}]]\n' >"$body"
  rate=$(wrk -t2 -c50 -d"${duration}s" -s "$body" "$url/function/invoke" | awk '/Requests\/sec/ { printf "%d", $2 }')
  kill "$engine_pid"; wait "$engine_pid" 2>/dev/null || true

  started=$(now_ns)
  start_engine "$data" "$port"
  wait_for 60 "the restarted engine" curl -fs "$url/readyz"
  restart_ms=$(awk -v a="$started" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
  restart_rss=$(rss_kib "$engine_pid")
  first_ms=$(curl -s -o /dev/null -w '%{time_total}' -X POST "$url/function/invoke" \
    -d '{"function_name": "add_00001", "args": {"a": "1", "b": "2"}}' | awk '{ printf "%.2f", $1 * 1000 }')
  kill "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
  data_kib=$(du -sk "$data" | cut -f1)
  per=$(awk -v a="$idle" -v b="$deployed" -v n="$count" 'BEGIN { printf "%.1f", (b - a) / n }')
  printf '%9s %9s %12s %10s %9s %8s %8s %9s %10s %11s %10s %9s\n' \
    "$count" "$idle" "$deployed" "$called" "$per" "$list_ms" "$query_ms" "$rate" "$restart_ms" "$restart_rss" "$first_ms" "$data_kib"
done

rounds=${THROUGHPUT_ROUNDS:-5}
smallest=$(echo "$counts" | tr ' ' '\n' | sort -n | head -1)
if [ "$rounds" -gt 0 ] && [ "$smallest" != "$max" ]; then
  echo
  echo "== invoke throughput, $smallest vs $max deployed, interleaved: $rounds rounds of wrk -t2 -c50 -d${duration}s"
  few_port=$(free_port)
  start_engine "$work/data-$smallest" "$few_port"
  few_pid=$engine_pid
  many_port=$(free_port)
  start_engine "$work/data-$max" "$many_port"
  many_pid=$engine_pid
  for port in "$few_port" "$many_port"; do
    wait_for 60 "the engine" curl -fs "http://127.0.0.1:$port/readyz"
    url=http://127.0.0.1:$port
    post invoke '{"function_name": "add_00001", "args": {"a": "1", "b": "2"}}' >/dev/null
  done
  rate() { wrk -t2 -c50 -d"${duration}s" -s "$body" "http://127.0.0.1:$1/function/invoke" | awk '/Requests\/sec/ { printf "%d", $2 }'; }
  ratios=()
  for round in $(seq "$rounds"); do
    few=$(rate "$few_port")
    many=$(rate "$many_port")
    ratios+=("$(awk -v a="$many" -v b="$few" 'BEGIN { printf "%.1f", 100 * a / b }')")
    printf 'round %s: %s deployed %9s   %s deployed %9s invoke/s   %s = %s%% of %s\n' \
      "$round" "$smallest" "$few" "$max" "$many" "$max" "${ratios[-1]}" "$smallest"
  done
  printf 'median: %s deployed = %s%% of %s deployed (goal: within 5%%)\n' "$max" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" "$smallest"
  kill "$few_pid" "$many_pid"; wait "$few_pid" "$many_pid" 2>/dev/null || true
fi
