#!/usr/bin/env bash
# ab.sh ENGINE_A ENGINE_B: two engine builds against the bare tiny_http
# server, invoking gcd (benches/gcd.wat, or the module WASM) with wrk -t2 -c50 in interleaved
# rounds (the order rotates each round), for before/after comparisons of one
# change on a machine shared with other work. Reports each run's req/s, the
# ratios, and the engine's own CPU time per request (utime + stime from
# /proc/PID/stat over the run), which neighbours disturb less than req/s.
#
# Environment: ROUNDS (default 5), SECONDS_PER_RUN (default 5), WORKERS
# (default: number of CPUs); WASM, NAME and ARGS to invoke another
# non-WASI module (a .wasm file, its export, its args as a JSON object), e.g.
#   WASM=experiments/application/authentication/target/stock/wasm32-unknown-unknown/release/authentication.wasm \
#   NAME=authentication ARGS='{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}'
# Needs wrk, docker-registry, wat2wasm, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
engine_a=$(realpath "${1:?usage: benches/ab.sh ENGINE_A ENGINE_B}")
engine_b=$(realpath "${2:?usage: benches/ab.sh ENGINE_A ENGINE_B}")
rounds=${ROUNDS:-5}
secs=${SECONDS_PER_RUN:-5}
workers=${WORKERS:-$(nproc)}
work=$(mktemp -d /tmp/wasmengine-ab.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

cargo build --release --quiet --example bare_server
registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
name=${NAME:-gcd}
args=${ARGS:-'{"a": "1071", "b": "462"}'}
if [[ -n ${WASM:-} ]]; then
  cp "$WASM" "$work/function.wasm"
else
  wat2wasm benches/gcd.wat -o "$work/function.wasm"
fi
"$engine_b" push "$work/function.wasm" "$registry/function-wasm:v1" >/dev/null

declare -A url pid
for variant in a b; do
  binary=$engine_a; [[ $variant == b ]] && binary=$engine_b
  port=$(free_port)
  RUST_LOG=off "$binary" --listen "127.0.0.1:$port" --data-dir "$work/data-$variant" --workers "$workers" &
  on_exit_kill $!; pid[$variant]=$!
  wait_for 30 "engine $variant" curl -fs "http://127.0.0.1:$port/function/list"
  curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/function/deploy" \
    -d "{\"function_name\": \"$name\", \"function_image\": \"$registry/function-wasm:v1\"}"
  url[$variant]="http://127.0.0.1:$port/function/invoke"
done
bare_port=$(free_port)
target/release/examples/bare_server "127.0.0.1:$bare_port" "$workers" >/dev/null &
on_exit_kill $!; pid[bare]=$!
url[bare]="http://127.0.0.1:$bare_port/"
wait_for 30 "the bare server" port_in_use "$bare_port"

body="{\"function_name\": \"$name\", \"args\": $args}"
curl -fs -X POST "${url[a]}" -d "$body" >/dev/null || { echo "ab.sh: $name does not answer on A" >&2; exit 1; }
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One wrk run against a variant: "req/s cpu-microseconds-per-request".
run() {
  local before after out
  before=$(ticks "${pid[$1]}")
  out=$(wrk -t2 -c50 -d"${secs}s" -s "$work/post.lua" "${url[$1]}")
  after=$(ticks "${pid[$1]}")
  # /proc times are in USER_HZ (100 per second on Linux): 10,000 us a tick.
  awk -v b="$before" -v a="$after" '/Requests\/sec/ {r=$2} / requests in / {n=$1} END {printf "%s %.2f", r, (a-b)*10000/n}' <<<"$out"
}
echo "function: $name (${WASM:-benches/gcd.wat})"
echo "A = $engine_a"
echo "B = $engine_b"
printf 'round  %10s %10s %10s   A/bare   B/bare     B/A   CPU us/request: bare A B\n' bare A B
orders=("bare a b" "b bare a" "a b bare")
for round in $(seq "$rounds"); do
  declare -A rate=() cpu=()
  for variant in ${orders[$(( (round - 1) % 3 ))]}; do
    read -r "rate[$variant]" "cpu[$variant]" <<<"$(run "$variant")"
  done
  awk -v n="$round" -v r0="${rate[bare]}" -v ra="${rate[a]}" -v rb="${rate[b]}" \
      -v c0="${cpu[bare]}" -v ca="${cpu[a]}" -v cb="${cpu[b]}" \
    'BEGIN { printf "%5s  %10s %10s %10s   %5.1f%%  %5.1f%%  %5.1f%%   %6s %6s %6s\n", n, r0, ra, rb, 100*ra/r0, 100*rb/r0, 100*rb/ra, c0, ca, cb }'
done
