#!/usr/bin/env bash
# load.sh: end-to-end measurements over HTTP (a benchmark, not a test).
#
# Starts a registry and the release engine (logging off), deploys the
# examples, and drives POST /function/invoke with wrk (-t2 -c50) and hey
# (-c 1), next to a bare tiny_http server answering a fixed body, built and
# run in the same run on the same machine. Then runs benches/cold_start.sh:
# deploy and first-invoke latency for a small, a 2.0 MB and a 2.56 MB module
# over repeated rounds, and restart to the first invoke's answer.
#
# Issue 14's comparison: the stock build of `authentication` (default
# linker settings: 17 initial pages) against its small build (2 pages) and
# the bare server, interleaved, each on its own engine (a function is
# deployed under its export's name); and the stock build on an engine
# without the pool of linear memories (WASM_ENGINE_MEMORY_POOL=off).
#
# The static musl build (the kind boards run) is measured too when it has
# been built (cross/build x86_64-unknown-linux-musl), or given as MUSL_ENGINE:
# gcd and the stock authentication on an engine of its own.
#
# Environment: DURATION (wrk seconds, default 15), HEY_REQUESTS (default 5000),
# WORKERS (engine and bare-server workers, default: number of CPUs),
# COMPARE_ROUNDS (interleaved 5 s bare/gcd pairs, and bare/small/stock/stock
# without pool quadruples, default 5), ROUNDS (cold-start rounds, default
# 20), COLD_START (0 skips benches/cold_start.sh, default 1), CPU_ONLY (1
# stops after the CPU per request section), ENGINE_ENV (assignments every
# engine is started with, such as WASM_ENGINE_MEMORY_POOL=off).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-15}
hey_requests=${HEY_REQUESTS:-5000}
compare_rounds=${COMPARE_ROUNDS:-5}
workers=${WORKERS:-$(nproc)}
work=$(mktemp -d /tmp/wasmengine-load.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

for tool in wrk hey docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (make load installs it)" >&2; exit 1; }
done

echo "== building (release engine, bare server, examples)"
cargo build --release --quiet --bin wasm_engine --example bare_server
experiments/build-apps.sh >/dev/null
engine=target/release/wasm_engine

registry_port=$(free_port)
registry=127.0.0.1:$registry_port
start_registry "$registry" "$work/registry"

app=experiments/application
push() { "$engine" push "$1" "$registry/$2" >/dev/null; }
push $app/authentication/target/wasm32-unknown-unknown/release/authentication.wasm authentication-wasm:v1
push $app/authentication-wasi/target/wasm32-wasip1/release/authentication-wasi.wasm authentication-wasi-wasm:v1
push $app/gcd/target/wasm32-unknown-unknown/release/gcd.wasm gcd-wasm:v1
push $app/authentication/target/stock/wasm32-unknown-unknown/release/authentication.wasm authentication-stock-wasm:v1
push $app/authentication-wasi/target/stock/wasm32-wasip1/release/authentication-wasi.wasm authentication-wasi-stock-wasm:v1

start_engine() { # data-dir, then env assignments; sets started_pid and started_url
  local data=$1 port
  shift
  port=$(free_port)
  env RUST_LOG=off ${ENGINE_ENV:-} "$@" "$engine" --listen "127.0.0.1:$port" --data-dir "$data" --workers "$workers" &
  started_pid=$!
  started_url=http://127.0.0.1:$port
  on_exit_kill "$started_pid"
}
start_engine "$work/data"
engine_pid=$started_pid engine_url=$started_url
wait_for 30 "the engine" curl -fs "$engine_url/function/list"
deploy() { # name image wasi_cap [engine url]
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "${4:-$engine_url}/function/deploy" \
    -d "{\"function_name\": \"$1\", \"function_image\": \"$registry/$2\", \"wasi_cap\": $3}"
}
deploy authentication authentication-wasm:v1 false >/dev/null
deploy authentication-wasi authentication-wasi-wasm:v1 true >/dev/null
deploy gcd gcd-wasm:v1 false >/dev/null
# The stock build answers as `authentication` too: on engines of its own.
start_engine "$work/data-stock"
stock_pid=$started_pid stock_url=$started_url
start_engine "$work/data-nopool" WASM_ENGINE_MEMORY_POOL=off
nopool_pid=$started_pid nopool_url=$started_url
for url in "$stock_url" "$nopool_url"; do
  wait_for 30 "the engine" curl -fs "$url/function/list"
  deploy authentication authentication-stock-wasm:v1 false "$url" >/dev/null
done
deploy authentication-wasi authentication-wasi-stock-wasm:v1 true "$stock_url" >/dev/null

auth_body='{"function_name": "authentication", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
auth_wasi_body='{"function_name": "authentication-wasi", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
gcd_body='{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}'
curl -fs -X POST "$engine_url/function/invoke" -d "$auth_body" | grep -q "Auth Forbidden" || { echo "authentication does not answer" >&2; exit 1; }

bare_port=$(free_port)
target/release/examples/bare_server "127.0.0.1:$bare_port" "$workers" >/dev/null &
bare_pid=$!
on_exit_kill $bare_pid
wait_for 30 "the bare server" curl -fs -X POST -d x "http://127.0.0.1:$bare_port/"

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
post_lua() { # body: the wrk script posting it
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$1'
wrk.headers["Content-Type"] = "application/json"
LUA
}
wrk_run() { # label url body
  post_lua "$3"
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

# Issue 29's measure: CPU per request over HTTP against the sum of its parts
# (the same call in process, plus the bare server's CPU per request), each
# process's user + system time from /proc over a wrk run, divided by the
# requests wrk completed. Rounds interleaved; medians.
echo
echo "== CPU per request: $compare_rounds interleaved rounds of wrk -t2 -c50 -d5s (process CPU time / requests)"
ticks=$(getconf CLK_TCK)
cpu_per_request() { # pid url body: prints microseconds of the process's CPU per request
  post_lua "$3"
  local before after requests
  before=$(awk '{print $14 + $15}' "/proc/$1/stat")
  requests=$(wrk -t2 -c50 -d5s -s "$work/post.lua" "$2" | awk '/requests in/ {print $1}')
  after=$(awk '{print $14 + $15}' "/proc/$1/stat")
  awk -v t=$((after - before)) -v n="$requests" -v hz="$ticks" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }'
}
cpu_bare=() cpu_gcd=() cpu_auth=() cpu_wasi=()
for round in $(seq "$compare_rounds"); do
  cpu_bare+=("$(cpu_per_request "$bare_pid" "http://127.0.0.1:$bare_port/" "$gcd_body")")
  cpu_gcd+=("$(cpu_per_request "$engine_pid" "$engine_url/function/invoke" "$gcd_body")")
  cpu_auth+=("$(cpu_per_request "$stock_pid" "$stock_url/function/invoke" "$auth_body")")
  cpu_wasi+=("$(cpu_per_request "$stock_pid" "$stock_url/function/invoke" "$auth_wasi_body")")
  printf 'round %s: bare %6s   gcd %6s   authentication (stock) %6s   authentication-wasi (stock) %6s µs/request\n' \
    "$round" "${cpu_bare[-1]}" "${cpu_gcd[-1]}" "${cpu_auth[-1]}" "${cpu_wasi[-1]}"
done
# The same calls in process: the thread's CPU time per call (criterion).
in_process=$(INVOKE_CPU_TIME=1 cargo bench --quiet --bench invoke -- --noplot --warm-up-time 1 --measurement-time 3 \
  '^invoke/(gcd_app|authentication_stock|authentication-wasi_stock)$' 2>/dev/null |
  awk '/^invoke\// { name = $1 } /time:/ {
         value = $(NF - 3); unit = $(NF - 2)
         if (unit == "ns") value /= 1000; else if (unit == "ms") value *= 1000
         sub(/^invoke\//, "", name); printf "%s=%.2f\n", name, value }')
part() { awk -F= -v k="$1" '$1 == k {print $2}' <<<"$in_process"; }
bare_median=$(median "${cpu_bare[@]}")
echo "in process (cargo bench --bench invoke, INVOKE_CPU_TIME=1): gcd_app $(part gcd_app) µs, authentication_stock $(part authentication_stock) µs, authentication-wasi_stock $(part authentication-wasi_stock) µs"
ratio_line() { # label over-http-median in-process
  awk -v l="$1" -v h="$2" -v p="$3" -v b="$bare_median" \
    'BEGIN { printf "%-30s over HTTP %6.1f µs = %.2fx the sum of its parts (%.1f in process + %.1f bare) (goal <= 2x)\n", l, h, h / (p + b), p, b }'
}
ratio_line "gcd" "$(median "${cpu_gcd[@]}")" "$(part gcd_app)"
ratio_line "authentication (stock)" "$(median "${cpu_auth[@]}")" "$(part authentication_stock)"
ratio_line "authentication-wasi (stock)" "$(median "${cpu_wasi[@]}")" "$(part authentication-wasi_stock)"
[ "${CPU_ONLY:-0}" = 1 ] && exit 0

echo
echo "== throughput: wrk -t2 -c50 -d${duration}s (engine and bare server: $workers workers)"
wrk_run "bare tiny_http (fixed body)" "http://127.0.0.1:$bare_port/" "$gcd_body"
wrk_run "invoke gcd" "$engine_url/function/invoke" "$gcd_body"
wrk_run "invoke authentication" "$engine_url/function/invoke" "$auth_body"
wrk_run "invoke authentication (stock build)" "$stock_url/function/invoke" "$auth_body"
wrk_run "invoke authentication-wasi" "$engine_url/function/invoke" "$auth_wasi_body"
musl_engine=${MUSL_ENGINE:-target/x86_64-unknown-linux-musl/release/wasm_engine}
if [[ -x $musl_engine ]]; then
  engine=$musl_engine start_engine "$work/data-musl"
  musl_url=$started_url
  wait_for 30 "the musl engine" curl -fs "$musl_url/function/list"
  deploy gcd gcd-wasm:v1 false "$musl_url" >/dev/null
  deploy authentication authentication-stock-wasm:v1 false "$musl_url" >/dev/null
  wrk_run "invoke gcd (static musl build)" "$musl_url/function/invoke" "$gcd_body"
  wrk_run "invoke authentication (stock, musl)" "$musl_url/function/invoke" "$auth_body"
  kill "$started_pid"
else
  echo "(no static musl build at $musl_engine: cross/build x86_64-unknown-linux-musl measures it too)"
fi

# One pair of runs is at the mercy of the machine's neighbours (the bare
# server alone has given 36k to 64k req/s here): alternate short runs.
echo
echo "== gcd against bare, interleaved: $compare_rounds rounds of wrk -t2 -c50 -d5s each"
post_lua "$gcd_body"
wrk_rate() { wrk -t2 -c50 -d5s -s "$work/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'; }
ratios=()
for round in $(seq "$compare_rounds"); do
  bare_rate=$(wrk_rate "http://127.0.0.1:$bare_port/")
  gcd_rate=$(wrk_rate "$engine_url/function/invoke")
  ratio=$(awk -v g="$gcd_rate" -v b="$bare_rate" 'BEGIN { printf "%.1f", 100 * g / b }')
  ratios+=("$ratio")
  printf 'round %s: bare %10s   gcd %10s req/s   gcd = %s%% of bare\n' "$round" "$bare_rate" "$gcd_rate" "$ratio"
done
printf 'median: gcd = %s%% of bare\n' "$(median "${ratios[@]}")"

echo
echo "== authentication, stock build (17 pages) against small (2 pages) and bare, interleaved: $compare_rounds rounds of wrk -t2 -c50 -d5s each"
post_lua "$auth_body"
percent() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
stock_of_bare=() stock_of_small=() nopool_of_bare=()
for round in $(seq "$compare_rounds"); do
  bare_rate=$(wrk_rate "http://127.0.0.1:$bare_port/")
  small_rate=$(wrk_rate "$engine_url/function/invoke")
  stock_rate=$(wrk_rate "$stock_url/function/invoke")
  nopool_rate=$(wrk_rate "$nopool_url/function/invoke")
  stock_of_bare+=("$(percent "$stock_rate" "$bare_rate")")
  stock_of_small+=("$(percent "$stock_rate" "$small_rate")")
  nopool_of_bare+=("$(percent "$nopool_rate" "$bare_rate")")
  printf 'round %s: bare %9s   small %9s   stock %9s   stock without pool %9s req/s   stock = %s%% of bare, %s%% of small\n' \
    "$round" "$bare_rate" "$small_rate" "$stock_rate" "$nopool_rate" "${stock_of_bare[-1]}" "${stock_of_small[-1]}"
done
printf 'median: stock = %s%% of bare (goal >= 60%%), %s%% of small; stock without pool = %s%% of bare\n' \
  "$(median "${stock_of_bare[@]}")" "$(median "${stock_of_small[@]}")" "$(median "${nopool_of_bare[@]}")"

echo
echo "== latency: hey -n $hey_requests -c 1"
hey_run "bare tiny_http (fixed body)" "http://127.0.0.1:$bare_port/" "$gcd_body"
hey_run "invoke gcd" "$engine_url/function/invoke" "$gcd_body"
hey_run "invoke authentication" "$engine_url/function/invoke" "$auth_body"
hey_run "invoke authentication-wasi" "$engine_url/function/invoke" "$auth_wasi_body"

kill "$engine_pid" "$stock_pid" "$nopool_pid"; wait "$engine_pid" "$stock_pid" "$nopool_pid" 2>/dev/null || true

if [ "${COLD_START:-1}" != 0 ]; then
  echo
  benches/cold_start.sh | sed -n '/^== [0-9]/,/^restart/p'
fi
echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%d)"
