#!/usr/bin/env bash
# load.sh: end-to-end measurements over HTTP (a benchmark, not a test).
#
# Starts a registry and the release engine (logging off), deploys the
# examples, and drives POST /function/invoke with wrk (-t2 -c50) and hey
# (-c 1), next to a bare tiny_http server answering a fixed body, built and
# run in the same run on the same machine. Then measures cold start: deploy
# time and first invoke for a small and a ~2.5 MB module, and the time from
# the engine's start to the first invoke's answer.
#
# Environment: DURATION (wrk seconds, default 15), HEY_REQUESTS (default 5000),
# WORKERS (engine and bare-server workers, default: number of CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-15}
hey_requests=${HEY_REQUESTS:-5000}
workers=${WORKERS:-$(nproc)}
work=$(mktemp -d /tmp/wasmengine-load.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk hey docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (make load installs it)" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1000000 }'; }

echo "== building (release engine, bare server, examples, a large unstripped module)"
cargo build --release --quiet --bin wasm_engine --example bare_server
experiments/build-apps.sh >/dev/null
(cd experiments/application/authentication-wasi &&
  cargo build --quiet --target wasm32-wasip1 --target-dir "$work/big")
big_wasm="$work/big/wasm32-wasip1/debug/authentication-wasi.wasm"
# A 2.0 MB one: the unstripped debug build of authentication's string-ABI core
# (before wrap-string-abi.sh), deployable under its export name with the
# numeric ABI (authentication_impl(ptr, len) -> i64).
(cd experiments/application/authentication &&
  cargo build --quiet --target wasm32-unknown-unknown --target-dir "$work/big2")
big2_wasm="$work/big2/wasm32-unknown-unknown/debug/authentication_impl.wasm"
engine=target/release/wasm_engine

registry_port=$(free_port)
registry=127.0.0.1:$registry_port
source scripts/registry.sh
start_registry "$registry" "$work/registry"

app=experiments/application
push() { "$engine" push "$1" "$registry/$2" >/dev/null; }
push $app/authentication/target/wasm32-unknown-unknown/release/authentication.wasm authentication-wasm:v1
push $app/authentication-wasi/target/wasm32-wasip1/release/authentication-wasi.wasm authentication-wasi-wasm:v1
push $app/gcd/target/wasm32-unknown-unknown/release/gcd.wasm gcd-wasm:v1
push $app/hello/target/wasm32-wasip1/release/hello.wasm hello-wasm:v1
cp "$big_wasm" "$work/big.wasm"
push "$work/big.wasm" big-wasm:v1
cp "$big2_wasm" "$work/big2.wasm"
push "$work/big2.wasm" big2-wasm:v1

start_engine() { # data dir [port]; sets engine_url and engine_pid
  local port=${2:-$(free_port)}
  RUST_LOG=off "$engine" --listen "127.0.0.1:$port" --data-dir "$1" --workers "$workers" &
  engine_pid=$!
  pids+=("$engine_pid")
  engine_url=http://127.0.0.1:$port
}
wait_ready() { for _ in $(seq 500); do curl -fs "$engine_url/function/list" >/dev/null && return; sleep 0.01; done; }

start_engine "$work/data"
wait_ready
deploy() { # name image wasi_cap
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$engine_url/function/deploy" \
    -d "{\"function_name\": \"$1\", \"function_image\": \"$registry/$2\", \"wasi_cap\": $3}"
}
deploy authentication authentication-wasm:v1 false >/dev/null
deploy authentication-wasi authentication-wasi-wasm:v1 true >/dev/null
deploy gcd gcd-wasm:v1 false >/dev/null

auth_body='{"function_name": "authentication", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
auth_wasi_body='{"function_name": "authentication-wasi", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
gcd_body='{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}'
curl -fs -X POST "$engine_url/function/invoke" -d "$auth_body" | grep -q "Auth Forbidden" || { echo "authentication does not answer" >&2; exit 1; }

bare_port=$(free_port)
target/release/examples/bare_server "127.0.0.1:$bare_port" "$workers" >/dev/null &
pids+=($!)
sleep 0.3

wrk_run() { # label url body
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$3'
wrk.headers["Content-Type"] = "application/json"
LUA
  local out
  out=$(wrk -t2 -c50 -d"${duration}s" -s "$work/post.lua" "$2")
  local rate errors non2xx
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  errors=$(awk '/Socket errors/ {print $0}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-34s %12s req/s   non-2xx: %-6s %s\n' "$1" "$rate" "${non2xx:-0}" "${errors:-socket errors: none}"
}
hey_run() { # label url body
  local out
  out=$(hey -n "$hey_requests" -c 1 -m POST -T application/json -d "$3" "$2")
  printf '%-34s %10s req/s   p50 %s s   p99 %s s   statuses: %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $3}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $3}' <<<"$out")" \
    "$(awk '/^ *\[[0-9]+\][ \t]+[0-9]+ responses/ {printf "%s %s ", $1, $2}' <<<"$out")"
}

echo
echo "== throughput: wrk -t2 -c50 -d${duration}s (engine and bare server: $workers workers)"
wrk_run "bare tiny_http (fixed body)" "http://127.0.0.1:$bare_port/" "$gcd_body"
wrk_run "invoke gcd" "$engine_url/function/invoke" "$gcd_body"
wrk_run "invoke authentication" "$engine_url/function/invoke" "$auth_body"
wrk_run "invoke authentication-wasi" "$engine_url/function/invoke" "$auth_wasi_body"

echo
echo "== latency: hey -n $hey_requests -c 1"
hey_run "bare tiny_http (fixed body)" "http://127.0.0.1:$bare_port/" "$gcd_body"
hey_run "invoke gcd" "$engine_url/function/invoke" "$gcd_body"
hey_run "invoke authentication" "$engine_url/function/invoke" "$auth_body"
hey_run "invoke authentication-wasi" "$engine_url/function/invoke" "$auth_wasi_body"

echo
echo "== cold start (loopback registry)"
printf '%-46s %s\n' "module" "deploy answered (s) / first invoke answered (s)"
first_invoke() { curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "$engine_url/function/invoke" -d "$1"; }
small=$(deploy hello hello-wasm:v1 true)
small_invoke=$(first_invoke '{"function_name": "hello", "args": {"name": "edge"}}')
printf '%-46s %s / %s\n' "hello ($(stat -c %s $app/hello/target/wasm32-wasip1/release/hello.wasm) bytes)" "$small" "$small_invoke"
big=$(deploy big big-wasm:v1 true)
big_invoke=$(first_invoke "{\"function_name\": \"big\", \"args\": {\"arg_uri\": \"yes\", \"arg_body\": \"yes\", \"arg_secret\": \"12345\"}}")
printf '%-46s %s / %s\n' "big: unstripped debug build ($(stat -c %s "$work/big.wasm") bytes)" "$big" "$big_invoke"
big2=$(deploy authentication_impl big2-wasm:v1 false)
big2_invoke=$(first_invoke '{"function_name": "authentication_impl", "args": {"ptr": "0", "len": "0"}}')
printf '%-46s %s / %s\n' "big2: unstripped debug build ($(stat -c %s "$work/big2.wasm") bytes)" "$big2" "$big2_invoke"

kill "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
restart_port=$(free_port)
started=$(now_ns)
start_engine "$work/data" "$restart_port"
until curl -fs -o /dev/null -X POST "$engine_url/function/invoke" \
  -d "{\"function_name\": \"big\", \"args\": {\"arg_uri\": \"yes\", \"arg_body\": \"yes\", \"arg_secret\": \"12345\"}}"; do
  sleep 0.001
done
echo "restart (7 functions restored, incl. big and big2) to first invoke of big answered: $(ms_since "$started") ms (includes curl retries every 1 ms)"
echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%d)"
