#!/usr/bin/env bash
# load_check.sh [ENGINE_BINARY]: a bounded load test that counts, never times.
#
# Starts a registry and the engine (default: target/debug/wasm_engine), deploys
# the gcd example, then sends a few thousand requests with hey at concurrency
# 10 and 50 to invoke, list and query, and checks that every single request
# was answered with the expected status: no stalls (hey's 20 s client
# timeout), no connection errors, no unexpected statuses. `make test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${1:-target/debug/wasm_engine}
requests=${LOAD_CHECK_REQUESTS:-3000}
for tool in hey docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "load_check: $tool is missing (scripts/install-deps.sh $tool)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/wasmengine-load-check.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
gcd=experiments/application/gcd/target/wasm32-unknown-unknown/release/gcd.wasm
[[ -f $gcd ]] || { echo "load_check: $gcd is missing (make apps)" >&2; exit 1; }
$engine push "$gcd" "$registry/gcd-wasm:v1" >/dev/null

port=$(free_port)
RUST_LOG=warn $engine --listen "127.0.0.1:$port" --data-dir "$work/data" --workers 4 --max-queue 256 \
  2>"$work/engine.log" &
on_exit_kill $!
url=http://127.0.0.1:$port
wait_for 60 "the engine" curl -fs "$url/function/list"
curl -fs -X POST "$url/function/deploy" \
  -d "{\"function_name\": \"gcd\", \"function_image\": \"$registry/gcd-wasm:v1\"}" >/dev/null

failures=0
check() { # label concurrency expected-status hey-arguments...
  local label=$1 concurrency=$2 expected=$3
  shift 3
  local out answered
  out=$(hey -n "$requests" -c "$concurrency" -t 20 "$@" 2>&1)
  answered=$(awk -v code="[$expected]" '$1 == code {print $2}' <<<"$out")
  local errors
  errors=$(sed -n '/Error distribution/,$p' <<<"$out" | grep -c '^\s*\[' || true)
  local others
  others=$(sed -n '/Status code distribution/,/^$/p' <<<"$out" | grep '^\s*\[' | grep -v "\[$expected\]" || true)
  if [[ ${answered:-0} -eq $requests && $errors -eq 0 && -z $others ]]; then
    printf 'ok    %-28s c=%-3s %s x %s\n' "$label" "$concurrency" "$requests" "$expected"
  else
    printf 'FAIL  %-28s c=%-3s expected %s x %s, got %s; other statuses: %s\n' \
      "$label" "$concurrency" "$requests" "$expected" "${answered:-0}" "${others:-none}"
    sed -n '/Error distribution/,$p' <<<"$out" | head -5
    failures=$((failures + 1))
  fi
}
for concurrency in 10 50; do
  check "invoke gcd" "$concurrency" 200 -m POST -d '{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}' "$url/function/invoke"
  check "list" "$concurrency" 200 "$url/function/list"
  check "query gcd" "$concurrency" 200 -m POST -d '{"function_name": "gcd"}' "$url/function/query"
  check "invoke a missing function" "$concurrency" 404 -m POST -d '{"function_name": "nope", "args": {}}' "$url/function/invoke"
done
if [[ $failures -ne 0 ]]; then
  echo "load_check: $failures check(s) failed; engine log:" >&2
  tail -20 "$work/engine.log" >&2
  exit 1
fi
echo "load_check: every request answered with its expected status"
